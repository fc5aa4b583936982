"""The mask container and the argument checks shared by every mask kind.

Conventions used throughout :mod:`mri_unfold.masks`:

* masks are ``float32`` numpy arrays of 0/1 with shape exactly ``(H, W)``;
* the layout is **centred** (fastMRI): the k-space DC sample sits at ``(H // 2, W // 2)``;
* a centred window of ``s`` samples along an axis of length ``n`` is
  ``[(n - s + 1) // 2, (n - s + 1) // 2 + s)`` — the formula of
  ``fastmri.data.subsample.MaskFunc.calculate_center_mask`` — and always contains the DC index.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real

import numpy as np
from ..errors import InvalidValue


#: Relative difference between the achieved and the requested acceleration above which
#: :meth:`MaskResult.shortfall` reports it.
ACCELERATION_TOLERANCE = 0.25

#: fastMRI pairs 8 % of centre columns with 4x and 4 % with 8x: centre fraction = 0.32 / acceleration.
CENTER_FRACTION_TIMES_ACCELERATION = 0.32


@dataclass(frozen=True, eq=False)
class MaskResult:
    """A sampling mask and how it was made.

    Attributes:
        mask: ``float32`` array of 0/1, shape ``(H, W)``, centred layout (DC at ``(H//2, W//2)``).
        num_low_frequencies: fully sampled centre. For the fastMRI column kinds it is the number
            of centre columns fastMRI returns; for 2-D kinds the number of k-space points of the
            fully sampled centre region (0 for ``"radial"``, which has no separate centre).
        kind: the mask kind given to :func:`mri_unfold.masks.make_mask`.
        seed: the integer seed actually used (drawn from OS entropy when ``seed=None`` was
            passed, so every mask can be reproduced); ``None`` for deterministic kinds.
        requested_ratio: the requested sampling ratio (``1 / acceleration``).
        center_fraction: the centre fraction actually used (``None`` when not applicable).
    """

    mask: np.ndarray
    num_low_frequencies: int
    kind: str
    seed: int | None
    requested_ratio: float
    center_fraction: float | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)`` of the mask."""
        return tuple(self.mask.shape)

    @property
    def ratio(self) -> float:
        """Achieved sampling ratio: sampled points / all points."""
        return float(self.mask.mean())

    @property
    def acceleration(self) -> float:
        """Achieved acceleration ``1 / ratio`` (``inf`` for an empty mask)."""
        r = self.ratio
        return math.inf if r == 0 else 1.0 / r

    def shortfall(self, tolerance: float = ACCELERATION_TOLERANCE) -> str | None:
        """``None`` when the achieved acceleration is within ``tolerance`` (relative) of the
        requested one, else what was asked and achieved, e.g. ``"asked for 12x, achieved
        32.0x (1 of 32 columns)"`` — small masks cannot always reach the request (whole
        columns, a fully sampled centre larger than the budget)."""
        asked = 1.0 / self.requested_ratio
        got = self.acceleration
        if abs(got / asked - 1.0) <= tolerance:
            return None
        cols = self.mask.any(axis=0)
        what = (f"{int(cols.sum())} of {cols.size} columns" if (self.mask == cols).all() else
                f"{int(self.mask.sum())} of {self.mask.size} points")
        return f"asked for {asked:g}x, achieved {got:.1f}x ({what})"


def resolve_ratio(acceleration, ratio) -> float:
    """Return the sampling ratio from exactly one of ``acceleration`` / ``ratio``.

    Raises:
        ValueError: both or neither given, ``acceleration < 1``, ``ratio`` outside ``(0, 1]``.
    """
    if acceleration is None and ratio is None:
        raise InvalidValue("give either acceleration (>= 1) or ratio (in (0, 1]); "
                         "ratio = 1 / acceleration")
    if acceleration is not None and ratio is not None:
        raise InvalidValue(f"give acceleration or ratio, not both (got acceleration={acceleration!r}, "
                         f"ratio={ratio!r}); ratio = 1 / acceleration")
    if acceleration is not None:
        if not _is_real(acceleration) or not math.isfinite(acceleration) or acceleration < 1:
            raise InvalidValue(f"acceleration must be a finite number >= 1, got {acceleration!r}")
        return 1.0 / float(acceleration)
    if not _is_real(ratio) or not (0 < ratio <= 1):
        raise InvalidValue(f"ratio must be a number in (0, 1], got {ratio!r}")
    return float(ratio)


def check_shape(shape) -> tuple[int, int]:
    """Validate a 2-D k-space shape ``(H, W)`` of positive integers and return it as a tuple."""
    try:
        h, w = (int(s) for s in shape)
        ok = all(int(s) == s for s in shape)
    except (TypeError, ValueError):
        ok = False
    if not ok or h < 1 or w < 1:
        raise InvalidValue(f"shape must be two positive integers (H, W), got {shape!r}")
    return h, w


def resolve_center_fraction(center_fraction, ratio: float) -> float:
    """Default ``0.32 * ratio`` (fastMRI: 0.08 at 4x, 0.04 at 8x); else check ``(0, 1)``."""
    if center_fraction is None:
        return CENTER_FRACTION_TIMES_ACCELERATION * ratio
    if not _is_real(center_fraction) or not (0 < center_fraction < 1):
        raise InvalidValue(f"center_fraction must be a number in (0, 1), got {center_fraction!r}")
    return float(center_fraction)


def center_count(n: int, center_fraction: float, axis_name: str, shape) -> int:
    """Number of centre samples ``round(n * center_fraction)``; error when it is 0."""
    c = round(n * center_fraction)
    if c < 1:
        raise InvalidValue(f"shape {tuple(shape)} is too small for center_fraction="
                         f"{center_fraction:g}: the fully sampled centre would have 0 {axis_name} "
                         f"(round({n} * {center_fraction:g}) = 0); use a larger shape or "
                         "center_fraction")
    return c


def center_window(n: int, s: int) -> slice:
    """Centred window of ``s`` samples on an axis of length ``n`` (fastMRI's formula)."""
    start = (n - s + 1) // 2
    return slice(start, start + s)


def resolve_seed(seed) -> int:
    """Return ``seed`` as an int, or a fresh one from OS entropy when ``None``.

    Uses its own :class:`numpy.random.Generator`, never the global RNG.
    """
    if seed is None:
        return int(np.random.default_rng().integers(0, 2**31 - 1))
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidValue(f"seed must be a non-negative integer or None, got {seed!r}")
    return int(seed)


def reject_options(kind: str, options: dict, allowed: tuple[str, ...] = ()) -> None:
    """Raise ``TypeError`` naming any option that ``kind`` does not accept."""
    bad = sorted(set(options) - set(allowed))
    if bad:
        raise TypeError(f"mask kind {kind!r} does not accept option(s) {bad}; "
                        f"accepted: {list(allowed) or 'none'}")


def _is_real(x) -> bool:
    return isinstance(x, Real) and not isinstance(x, (bool, np.bool_))
