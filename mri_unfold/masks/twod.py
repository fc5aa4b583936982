"""2-D (non-Cartesian-line) sampling masks with a fully sampled centre.

* ``"random2d"``   — uniform random points without replacement outside the centre;
* ``"gaussian2d"`` — variable density: points outside the centre drawn without replacement with
  probability proportional to ``exp(-ky**2 / (2 (sigma H)**2) - kx**2 / (2 (sigma W)**2))``
  (exact weighted sampling without replacement by exponential keys, Efraimidis & Spirakis 2006);
* ``"poisson"``    — variable-density Poisson disc drawn by sigpy's sampler (the one behind
  :func:`sigpy.mri.poisson`), with the calibration (centre) region ``round(cf H) x round(cf W)``.

``random2d`` and ``gaussian2d`` sample exactly ``round(ratio H W)`` points; ``poisson`` stops when
the achieved acceleration is within ``tol`` of the request.  The centre region
(``center_shape="square"``: ``round(cf H) x round(cf W)`` box; ``"disc"``: the ellipse inscribed in
it) is fully sampled; ``num_low_frequencies`` counts its points.

RNG: ``random2d``/``gaussian2d`` use ``numpy.random.default_rng(seed)``.  sigpy's sampler seeds
numba's own RNG (separate from NumPy's global RNG); NumPy's global state is saved and restored
around it anyway.
"""
from __future__ import annotations

import numpy as np

from ..errors import InvalidValue
from .result import (MaskResult, center_count, center_window, reject_options,
                     resolve_center_fraction, resolve_seed)

CENTER_SHAPES = ("square", "disc")


def center_region(shape: tuple[int, int], center_fraction: float,
                  center_shape: str = "square") -> np.ndarray:
    """Boolean ``(H, W)`` array marking the fully sampled centre (centred layout).

    Raises:
        ValueError: unknown ``center_shape`` or a centre of 0 rows/columns.
    """
    if center_shape not in CENTER_SHAPES:
        raise InvalidValue(f"center_shape must be one of {CENTER_SHAPES}, got {center_shape!r}")
    h, w = shape
    ch = center_count(h, center_fraction, "rows", shape)
    cw = center_count(w, center_fraction, "columns", shape)
    region = np.zeros((h, w), dtype=bool)
    rows, cols = center_window(h, ch), center_window(w, cw)
    if center_shape == "square":
        region[rows, cols] = True
        return region
    # ellipse inscribed in the box, measured from the box centre (pixel centres)
    ky = np.arange(rows.start, rows.stop) - (rows.start + rows.stop - 1) / 2
    kx = np.arange(cols.start, cols.stop) - (cols.start + cols.stop - 1) / 2
    inside = (ky[:, None] / (ch / 2)) ** 2 + (kx[None, :] / (cw / 2)) ** 2 <= 1.0
    region[rows, cols] = inside
    region[h // 2, w // 2] = True  # DC is always sampled
    return region


def _budget(shape, ratio: float, region: np.ndarray, cf: float) -> int:
    total = int(round(ratio * shape[0] * shape[1]))
    n_center = int(region.sum())
    if n_center > total:
        raise InvalidValue(f"the fully sampled centre ({n_center} points for center_fraction={cf:g} "
                         f"on shape {tuple(shape)}) exceeds the {total} points allowed by "
                         f"ratio={ratio:g}; lower center_fraction")
    return total - n_center


def make_random2d(shape, ratio: float, center_fraction, seed, center_shape: str = "square",
                  **options) -> MaskResult:
    """Uniform random points plus a fully sampled centre; exactly ``round(ratio H W)`` points."""
    reject_options("random2d", options)
    return _make_keyed("random2d", shape, ratio, center_fraction, seed, center_shape, None)


def make_gaussian2d(shape, ratio: float, center_fraction, seed, center_shape: str = "square",
                    sigma: float = 0.25, **options) -> MaskResult:
    """Variable-density Gaussian sampling without replacement plus a fully sampled centre.

    Args:
        sigma: standard deviation of the density as a fraction of ``H`` (rows) and ``W``
            (columns); must be > 0.
    """
    reject_options("gaussian2d", options)
    if not isinstance(sigma, (int, float)) or isinstance(sigma, bool) or not sigma > 0:
        raise InvalidValue(f"sigma must be a positive number (fraction of the image size), "
                         f"got {sigma!r}")
    h, w = shape
    ky = (np.arange(h) - h // 2) / (sigma * h)
    kx = (np.arange(w) - w // 2) / (sigma * w)
    log_density = -0.5 * (ky[:, None] ** 2 + kx[None, :] ** 2)
    return _make_keyed("gaussian2d", shape, ratio, center_fraction, seed, center_shape,
                       log_density)


def _make_keyed(kind, shape, ratio, center_fraction, seed, center_shape, log_density):
    seed = resolve_seed(seed)
    cf = resolve_center_fraction(center_fraction, ratio)
    region = center_region(shape, cf, center_shape)
    k = _budget(shape, ratio, region, cf)
    rng = np.random.default_rng(seed)
    outside = np.flatnonzero(~region.ravel())
    if log_density is None:
        picked = rng.choice(outside, size=k, replace=False)
    else:
        # the k smallest keys log(E) - log p, E ~ Exp(1), are a weighted sample w/o replacement
        keys = np.log(rng.standard_exponential(outside.size)) - log_density.ravel()[outside]
        picked = outside[np.argpartition(keys, k - 1)[:k]] if k > 0 else outside[:0]
    mask = region.astype(np.float32).ravel()
    mask[picked] = 1.0
    return MaskResult(mask=mask.reshape(shape), num_low_frequencies=int(region.sum()), kind=kind,
                      seed=seed, requested_ratio=ratio, center_fraction=cf)


def make_poisson(shape, ratio: float, center_fraction, seed, crop_corner: bool = True,
                 max_attempts: int = 30, tol: float | None = None, max_iter: int = 48,
                 **options) -> MaskResult:
    """Variable-density Poisson-disc mask sampled by sigpy's Poisson-disc sampler.

    The density slope is found by the bisection of :func:`sigpy.mri.poisson` (same density
    ``1 / (1 + s |r|)``, same update rule and stopping test ``|acc_achieved - acc| < tol``, so the
    mask equals ``sigpy.mri.poisson(shape, acc, calib, seed=seed, tol=tol)`` whenever that call
    returns), but bounded to ``max_iter`` steps: sigpy's own loop can spin forever when ``tol``
    is not reachable.  After ``max_iter`` steps the closest mask is kept if it is within 2
    percentage points of the request.

    Args:
        crop_corner: zero the k-space corners outside the inscribed ellipse (sigpy's option;
            limits the ratio to about pi/4).
        max_attempts: sigpy's rejection attempts per active point.
        tol: tolerance on the *acceleration*; default ``min(0.1, 0.015 acc**2)``, i.e. about
            1.5 percentage points of ratio at most.
        max_iter: bisection steps.
    """
    reject_options("poisson", options)
    seed = resolve_seed(seed)
    if seed >= 2**32:
        raise InvalidValue(f"seed for poisson masks must be < 2**32, got {seed}")
    cf = resolve_center_fraction(center_fraction, ratio)
    _budget(shape, ratio, center_region(shape, cf, "square"), cf)
    calib = (center_count(shape[0], cf, "rows", shape), center_count(shape[1], cf, "columns", shape))
    if ratio == 1.0:
        mask = np.ones(shape, dtype=np.float32)
    else:
        accel = 1.0 / ratio
        tol = min(0.1, 0.015 * accel**2) if tol is None else float(tol)
        state = np.random.get_state()
        try:
            mask = _poisson_bisect(shape, accel, calib, bool(crop_corner), int(max_attempts),
                                   tol, int(max_iter), seed)
        finally:
            np.random.set_state(state)
        if abs(mask.mean() - ratio) > 0.02:
            raise InvalidValue(f"poisson mask: cannot reach ratio={ratio:g} on shape {tuple(shape)} "
                             f"(closest {mask.mean():.4f}); with crop_corner=True at most about "
                             "pi/4 of k-space can be sampled")
    return MaskResult(mask=mask, num_low_frequencies=calib[0] * calib[1], kind="poisson",
                      seed=seed, requested_ratio=ratio, center_fraction=cf)


def _poisson_bisect(shape, accel, calib, crop_corner, max_attempts, tol, max_iter, seed,
                    allowed=None, always=None):
    """The bisection of :func:`make_poisson`.  ``allowed`` (bool ``(H, W)`` or None) zeroes
    the samples outside it; ``always`` (bool ``(H, W)`` or None) is sampled in any case and
    replaces sigpy's own calibration block (the density stays flat over ``calib``): sigpy's
    sampler can stall on its pre-filled block (its first point falls inside and no
    candidate around it is accepted: only the block comes back)."""
    from sigpy.mri.samp import _poisson  # sigpy's numba Poisson-disc sampler

    ny, nx = shape
    y, x = np.mgrid[:ny, :nx].astype(np.float64)
    x = np.maximum(abs(x - nx / 2) - calib[-1] / 2, 0)
    x /= max(x.max(), 1e-12)
    y = np.maximum(abs(y - ny / 2) - calib[-2] / 2, 0)
    y /= max(y.max(), 1e-12)
    r = np.sqrt(x**2 + y**2)
    lo, hi = 0.0, float(max(nx, ny))
    best, best_err = None, np.inf
    for _ in range(max_iter):
        if not lo < hi:
            break
        slope = (hi + lo) / 2
        radius_x = np.clip((1 + r * slope) * nx / max(nx, ny), 1, None)
        radius_y = np.clip((1 + r * slope) * ny / max(nx, ny), 1, None)
        mask = _poisson(nx, ny, max_attempts, radius_x, radius_y,
                        calib if always is None else (0, 0), seed)
        if crop_corner:
            mask *= r < 1
        if allowed is not None:
            mask *= allowed.reshape(mask.shape)
        if always is not None:
            mask = np.maximum(mask, always.reshape(mask.shape))
        achieved = nx * ny / max(mask.sum(), 1)
        if abs(achieved - accel) < best_err:
            best, best_err = mask, abs(achieved - accel)
        if best_err < tol:
            break
        if achieved < accel:
            lo = slope
        else:
            hi = slope
    return best.reshape(shape).astype(np.float32)
