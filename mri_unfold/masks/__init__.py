"""k-space sampling masks for MRI: fastMRI Cartesian columns, 2-D random / variable density,
pseudo-radial and Poisson disc; loading, layout conversion and design diagnostics.

Every mask is a ``float32`` numpy array of 0/1 with shape ``(H, W)`` in the **centred** layout
(DC at ``(H // 2, W // 2)``, fastMRI's convention); :func:`to_unshifted` gives the DC-at-``[0, 0]``
layout.

Example:
    >>> from mri_unfold.masks import make_mask
    >>> res = make_mask("radial", (256, 256), acceleration=5)
    >>> res.mask.shape, round(res.ratio, 2)
    ((256, 256), 0.2)
"""
from __future__ import annotations

from ..errors import InvalidValue
from ..memory import require_memory
from .cartesian import make_cartesian
from .design import mask_stats, peak_sidelobe_ratio, psf
from .io import (LAYOUTS, MaskKeyError, MaskLayoutError, check_centred, load_mask, save_mask, to_centered,
                 to_unshifted)
from .radial import make_radial
from .result import MaskResult, check_shape, resolve_ratio
from .twod import make_gaussian2d, make_poisson, make_random2d

__all__ = ["KINDS", "LAYOUTS", "MaskResult", "make_mask", "load_mask", "save_mask", "to_centered",
           "to_unshifted", "mask_stats", "psf", "peak_sidelobe_ratio", "MaskLayoutError",
           "MaskKeyError", "check_centred"]

#: (H, W) float64 arrays the mask builders hold at once at most (the memory guard's estimate).
MASK_WORK_ARRAYS = 6

_BUILDERS = {
    "random": lambda *a, **k: make_cartesian("random", *a, **k),
    "equispaced": lambda *a, **k: make_cartesian("equispaced", *a, **k),
    "magic": lambda *a, **k: make_cartesian("magic", *a, **k),
    "random2d": make_random2d,
    "gaussian2d": make_gaussian2d,
    "radial": make_radial,
    "poisson": make_poisson,
}

#: Valid values of ``kind`` for :func:`make_mask`.
KINDS = tuple(_BUILDERS)


def make_mask(kind: str, shape, *, acceleration=None, ratio=None, center_fraction=None,
              seed=None, **kind_options) -> MaskResult:
    """Make a sampling mask.

    Args:
        kind: one of :data:`KINDS`: ``"random"``, ``"equispaced"``, ``"magic"`` (fastMRI 1-D
            column masks, see :mod:`mri_unfold.masks.cartesian`), ``"random2d"``,
            ``"gaussian2d"``, ``"poisson"`` (2-D with a fully sampled centre, see
            :mod:`mri_unfold.masks.twod`), ``"radial"`` (pseudo-radial lines,
            :mod:`mri_unfold.masks.radial`).
        shape: ``(H, W)`` of k-space.
        acceleration: undersampling factor ``>= 1``; or give ``ratio`` instead (exactly one).
        ratio: sampling ratio in ``(0, 1]`` (= ``1 / acceleration``).
        center_fraction: fraction of each axis fully sampled at the centre (fastMRI's
            ``center_fractions``); default ``0.32 / acceleration`` (see the kind's module).
            Not accepted by ``"radial"``.
        seed: integer seed; the same seed gives the same mask.  ``None`` draws one from OS
            entropy and records it in the result.  The global NumPy/torch RNGs are never used.
        **kind_options: ``center_shape`` ("square"/"disc": random2d, gaussian2d), ``sigma``
            (gaussian2d), ``golden_angle``/``n_lines`` (radial), ``crop_corner``/
            ``max_attempts``/``tol`` (poisson).

    Returns:
        :class:`MaskResult` whose ``mask`` is ``float32`` 0/1 of shape ``(H, W)``, centred.

    Raises:
        ValueError: unknown kind (the message lists the valid kinds), bad acceleration/ratio
            (both or neither given, ``acceleration < 1``, ``ratio`` outside ``(0, 1]``), shape too
            small for the centre, centre larger than the sampling budget.
        TypeError: an option the kind does not accept.
        InsufficientMemory: a shape whose mask would not fit in memory.
    """
    if kind not in _BUILDERS:
        raise InvalidValue(f"unknown mask kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    r = resolve_ratio(acceleration, ratio)
    hw = check_shape(shape)
    # the builders hold a few float64 (H, W) working arrays
    require_memory(MASK_WORK_ARRAYS * 8 * hw[0] * hw[1], f"a {hw[0]} x {hw[1]} {kind!r} mask")
    return _BUILDERS[kind](hw, r, center_fraction, seed, **kind_options)
