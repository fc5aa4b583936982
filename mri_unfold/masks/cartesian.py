"""fastMRI 1-D Cartesian column masks, produced through ``fastmri.data.subsample``.

Kinds and the fastMRI class behind each:

* ``"random"``     -> :class:`fastmri.data.subsample.RandomMaskFunc` (each outer column kept with
  probability ``(W/acc - n_low) / (W - n_low)``, so the ratio is only right on average);
* ``"equispaced"`` -> :class:`fastmri.data.subsample.EquispacedMaskFractionFunc` (the variant that
  matches the requested acceleration after counting the centre; the integer-step
  ``EquiSpacedMaskFunc`` overshoots the acceleration and cannot take fractional ones);
* ``"magic"``      -> :class:`fastmri.data.subsample.MagicMaskFractionFunc` (Defazio 2019 offset
  sampling, acceleration matched the same way).

Each column mask is computed for the k-space shape ``(1, H, W, 2)`` and the mask function is
called with ``seed=seed``, exactly like ``fastmri.data.transforms.apply_mask``, so for the same
``center_fraction``, ``acceleration`` and ``seed`` the columns are identical to fastMRI's.
fastMRI keeps its own :class:`numpy.random.RandomState`; the global RNG is not touched.

When ``center_fraction`` is not given, ``"random"`` uses fastMRI's convention ``0.32 / acc``
(8 % at 4x, 4 % at 8x).  ``"equispaced"`` and ``"magic"`` quantise the outer columns on an integer
grid, which can miss the requested ratio by several columns; for them the default centre size is
the one closest to ``0.32 / acc`` among those whose achieved column count is as close as possible
(within half a column) to ``ratio * W`` — a pure choice of ``center_fraction``, the mask itself is
still fastMRI's.
"""
from __future__ import annotations

import numpy as np
from fastmri.data import subsample

from ..errors import InvalidValue
from .result import (MaskResult, center_count, reject_options, resolve_center_fraction,
                     resolve_seed)

#: mask kind -> fastMRI mask-function class.
FASTMRI_CLASSES = {
    "random": subsample.RandomMaskFunc,
    "equispaced": subsample.EquispacedMaskFractionFunc,
    "magic": subsample.MagicMaskFractionFunc,
}


def fastmri_columns(kind: str, num_cols: int, center_fraction: float, acceleration: float,
                    seed: int) -> tuple[np.ndarray, int]:
    """Call the fastMRI mask function of ``kind`` once.

    Args:
        kind: ``"random"``, ``"equispaced"`` or ``"magic"``.
        num_cols: number of k-space columns ``W``.
        center_fraction, acceleration: passed as one-element lists to the fastMRI class.
        seed: passed to the mask function call (``mask_func(shape, seed=seed)``).

    Returns:
        (columns, num_low_frequencies): ``float32`` 0/1 array of shape ``(W,)`` and fastMRI's
        number of centre columns.
    """
    func = FASTMRI_CLASSES[kind]([center_fraction], [acceleration])
    mask, num_low = func((1, 1, num_cols, 2), seed=seed)
    return mask.numpy().reshape(num_cols).astype(np.float32), int(num_low)


def make_cartesian(kind: str, shape: tuple[int, int], ratio: float, center_fraction, seed,
                   **options) -> MaskResult:
    """Build a fastMRI column mask broadcast to ``shape`` (see the module docstring).

    Returns:
        MaskResult with a ``float32`` ``(H, W)`` mask, constant along each column.
    """
    reject_options(kind, options)
    h, w = shape
    seed = resolve_seed(seed)
    if seed >= 2**32:
        raise InvalidValue(f"seed for fastMRI masks must be < 2**32, got {seed}")
    acceleration = 1.0 / ratio
    max_low = max_low_frequencies(kind, w, ratio)
    if center_fraction is not None or kind == "random":
        cf = resolve_center_fraction(center_fraction, ratio)
        n_low = center_count(w, cf, "columns", shape)
        if n_low > max_low:
            raise InvalidValue(f"center_fraction={cf:g} gives {n_low} centre columns on width {w}; "
                             f"mask kind {kind!r} at ratio={ratio:g} allows at most {max_low}; "
                             "lower center_fraction")
    else:
        if max_low < 1:
            raise InvalidValue(f"shape {tuple(shape)} is too small for a {kind!r} mask at "
                             f"ratio={ratio:g}: no room for a centre column")
        cf = _choose_center_fraction(kind, w, ratio, seed, max_low)
    cols, num_low = fastmri_columns(kind, w, cf, acceleration, seed)
    mask = np.ascontiguousarray(np.broadcast_to(cols[None, :], (h, w)), dtype=np.float32)
    return MaskResult(mask=mask, num_low_frequencies=num_low, kind=kind, seed=seed,
                      requested_ratio=ratio, center_fraction=cf)


def max_low_frequencies(kind: str, w: int, ratio: float) -> int:
    """Largest number of centre columns fastMRI's ``kind`` handles at this ratio.

    ``random``: ``n_low <= ratio W`` (else a negative probability); ``equispaced``:
    ``n_low < ratio W`` (fastMRI divides by ``n_low acc - W``); ``magic``:
    ``n_low < round(ratio W)`` (else fastMRI draws an offset from an empty range).
    """
    target = ratio * w
    if kind == "random":
        return int(np.floor(target + 1e-9))
    if kind == "equispaced":
        return w - 1 if ratio == 1 else int(np.ceil(target - 1e-9)) - 1
    return round(target) - 1


def _choose_center_fraction(kind: str, w: int, ratio: float, seed: int, max_low: int) -> float:
    """Centre fraction closest to fastMRI's default among those hitting ``ratio * W`` best."""
    default_low = round(w * resolve_center_fraction(None, ratio))
    target = ratio * w
    candidates = []
    for n_low in range(1, max_low + 1):
        cf = (n_low + 0.25) / w  # round(w * cf) == n_low without float ties
        cols, _ = fastmri_columns(kind, w, cf, 1.0 / ratio, seed)
        candidates.append((abs(cols.sum() - target), abs(n_low - default_low), cf))
    best = min(c[0] for c in candidates)
    ok = [c for c in candidates if c[0] <= best + 0.5]
    return min(ok, key=lambda c: (c[1], c[0]))[2]
