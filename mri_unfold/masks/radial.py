"""Pseudo-radial Cartesian masks: straight lines through the k-space centre.

Line ``k`` of ``n`` has angle ``theta_k = k * pi / n`` (evenly spaced over 180 degrees) or, with
``golden_angle=True``, ``theta_k = k * 180 / phi`` degrees (about 111.246 degrees, the golden-angle
ordering of Winkelmann et al. 2007).  Each line is rasterised on the grid by sampling it every half
pixel from the centre ``(H // 2, W // 2)`` out to the corners and rounding to the nearest grid
point.  The number of lines is the one whose achieved ratio is closest to the request (a
bisection on ``n`` followed by a check of the neighbours); the mask is deterministic.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import InvalidValue
from .result import MaskResult, reject_options

GOLDEN_ANGLE = math.pi / ((1 + math.sqrt(5)) / 2)  # radians, ~111.246 degrees


def radial_lines(shape: tuple[int, int], n_lines: int, golden_angle: bool = False) -> np.ndarray:
    """Rasterise ``n_lines`` lines through the centre.

    Returns:
        ``float32`` 0/1 array of ``shape`` (centred layout).
    """
    h, w = shape
    cy, cx = h // 2, w // 2
    step = GOLDEN_ANGLE if golden_angle else math.pi / max(n_lines, 1)
    theta = (np.arange(n_lines) * step) % math.pi
    reach = math.hypot(h, w) / 2 + 1
    t = np.arange(-reach, reach + 0.25, 0.5)
    ys = np.floor(cy + np.sin(theta)[:, None] * t[None, :] + 0.5).astype(np.int64).ravel()
    xs = np.floor(cx + np.cos(theta)[:, None] * t[None, :] + 0.5).astype(np.int64).ravel()
    keep = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
    mask = np.zeros((h, w), dtype=np.float32)
    mask[ys[keep], xs[keep]] = 1.0
    return mask


def make_radial(shape, ratio: float, center_fraction, seed, golden_angle: bool = False,
                n_lines: int | None = None, **options) -> MaskResult:
    """Pseudo-radial mask with the number of lines chosen to match ``ratio``.

    Args:
        golden_angle: golden-angle instead of evenly spaced angles.
        n_lines: force the number of lines (then ``ratio`` is only recorded).
        center_fraction: must be ``None`` (radial lines sample the centre densely anyway).
        seed: ignored (the mask is deterministic); the result records ``seed=None``.

    Raises:
        ValueError: ``center_fraction`` given, or the ratio cannot be reached within 2
            percentage points.
    """
    reject_options("radial", options)
    if center_fraction is not None:
        raise InvalidValue("mask kind 'radial' has no separate fully sampled centre: do not pass "
                         "center_fraction")
    golden_angle = bool(golden_angle)
    if n_lines is not None:
        if isinstance(n_lines, bool) or not isinstance(n_lines, (int, np.integer)) or n_lines < 1:
            raise InvalidValue(f"n_lines must be a positive integer, got {n_lines!r}")
        mask = radial_lines(shape, int(n_lines), golden_angle)
    else:
        mask = _search_lines(shape, ratio, golden_angle)
    return MaskResult(mask=mask, num_low_frequencies=0, kind="radial", seed=None,
                      requested_ratio=ratio, center_fraction=None)


def _search_lines(shape, ratio: float, golden_angle: bool) -> np.ndarray:
    cache: dict[int, np.ndarray] = {}

    def achieved(n: int) -> float:
        if n not in cache:
            cache[n] = radial_lines(shape, n, golden_angle)
        return float(cache[n].mean())

    lo, hi = 1, 4 * (shape[0] + shape[1])
    while lo < hi:  # smallest n with achieved(n) >= ratio (achieved is nearly monotone)
        mid = (lo + hi) // 2
        if achieved(mid) >= ratio:
            hi = mid
        else:
            lo = mid + 1
    best = min((n for n in (lo - 2, lo - 1, lo, lo + 1) if n >= 1),
               key=lambda n: (abs(achieved(n) - ratio), n))
    if abs(achieved(best) - ratio) > 0.02:
        raise InvalidValue(f"radial mask: cannot reach ratio={ratio:g} on shape {tuple(shape)} "
                         f"(closest: {achieved(best):.4f} with {best} lines)")
    return cache[best]
