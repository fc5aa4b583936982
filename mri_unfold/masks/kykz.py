"""ky–kz sampling masks of 3-D scans, all with a fully sampled ACS block.

A 3-D Cartesian scan samples the phase-encoding plane ``(KY, KZ)`` (the readout ``kx`` is
always complete), so its mask is 2-D: :func:`make_kykz_mask` makes it with

* ``kind`` — ``"poisson"`` (variable-density Poisson disc, sigpy's sampler as
  :func:`~mri_unfold.masks.twod.make_poisson`, its slope bisected to the acceleration, the
  density flat over the ACS block, which is added afterwards),
  ``"gaussian2d"`` (variable-density Gaussian sampling without replacement, exact count),
  ``"random2d"`` (uniform, exact count) or ``"caipi"`` (the 2-D CAIPIRINHA lattice
  ``ry × rz`` with the shift ``Δ``: ``(ky, kz)`` relative to DC is sampled when
  ``kz ≡ 0 (mod rz)`` and ``ky − Δ·kz/rz ≡ 0 (mod ry)``);
* ``acs`` — the ``(ACS_Y, ACS_Z)`` block around DC (fastMRI's centred window per axis),
  always sampled (coil calibration, ESPIRiT);
* ``elliptical`` — elliptical scanning: nothing outside the ellipse inscribed in the
  ``KY × KZ`` grid (pixel centres relative to DC);
* ``partial_fourier`` — the fraction ``f ∈ [0.5, 1]`` of ``kz`` acquired: the first
  ``KZ − round(f·KZ)`` partitions are skipped (the ACS must stay inside).

Accelerations are relative to the full ``KY × KZ`` grid.  The random kinds sample
``round(KY·KZ / R)`` points in all (ACS included) inside the allowed region; ``caipi`` uses the
lattice ``ry·rz = R`` (``R`` an integer; factorised as evenly as possible, ``Δ = ry // rz``
unless given) and elliptical scanning, partial Fourier and the ACS change its achieved
acceleration (reported by :class:`~mri_unfold.masks.MaskResult`); its seed picks one of the
lattice's ``ry·rz`` offsets (seed 0: the lattice through DC).

Masks are ``float32`` 0/1 ``(KY, KZ)`` in the centred layout.  RNG: as the 2-D kinds
(``numpy.random.default_rng(seed)``, sigpy's numba RNG for Poisson; the global state is
never changed).
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import InvalidValue
from .result import MaskResult, center_window, reject_options, resolve_seed
from .twod import _poisson_bisect

__all__ = ["KYKZ_KINDS", "make_kykz_mask", "acs_block", "allowed_region", "caipi_factors"]

#: Kinds :func:`make_kykz_mask` makes.
KYKZ_KINDS = ("poisson", "gaussian2d", "random2d", "caipi")


def acs_block(shape, acs) -> np.ndarray:
    """Bool ``(KY, KZ)``: the centred ``acs`` ``(ACS_Y, ACS_Z)`` block.

    Raises:
        InvalidValue: an ACS that is not two integers in ``[1, KY]`` / ``[1, KZ]``.
    """
    try:
        ay, az = (int(a) for a in acs)
        ok = all(int(a) == a for a in acs) and len(tuple(acs)) == 2
    except (TypeError, ValueError):
        ok = False
    if not ok or not (1 <= ay <= shape[0] and 1 <= az <= shape[1]):
        raise InvalidValue(f"acs must be two integers (ACS_Y, ACS_Z) within the ky-kz grid "
                           f"{tuple(shape)}, got {acs!r}")
    region = np.zeros(shape, bool)
    region[center_window(shape[0], ay), center_window(shape[1], az)] = True
    return region


def allowed_region(shape, elliptical: bool = False, partial_fourier: float = 1.0) -> np.ndarray:
    """Bool ``(KY, KZ)``: where samples may be taken (elliptical scanning, partial Fourier).

    Raises:
        InvalidValue: ``partial_fourier`` outside ``[0.5, 1]``.
    """
    h, w = shape
    if not isinstance(partial_fourier, (int, float)) or not 0.5 <= partial_fourier <= 1:
        raise InvalidValue(f"partial_fourier must be in [0.5, 1] (the fraction of kz "
                           f"acquired), got {partial_fourier!r}")
    ok = np.ones(shape, bool)
    if elliptical:
        ky = (np.arange(h) - h // 2) / (h / 2)
        kz = (np.arange(w) - w // 2) / (w / 2)
        ok &= ky[:, None] ** 2 + kz[None, :] ** 2 <= 1.0
    ok[:, : w - int(round(partial_fourier * w))] = False
    return ok


def caipi_factors(acceleration: float) -> tuple[int, int]:
    """``(ry, rz)`` with ``ry·rz = R`` and ``ry >= rz`` as close as possible (4 -> 2×2,
    8 -> 4×2, 12 -> 4×3).

    Raises:
        InvalidValue: ``R`` not an integer >= 1.
    """
    r = round(acceleration)
    if abs(acceleration - r) > 1e-9 or r < 1:
        raise InvalidValue(f"a caipi mask needs an integer acceleration (ry x rz), got "
                           f"{acceleration:g}")
    rz = max(d for d in range(1, int(math.isqrt(r)) + 1) if r % d == 0)
    return r // rz, rz


def _caipi(shape, acceleration, seed, ry=None, rz=None, shift=None) -> np.ndarray:
    if ry is None and rz is None:
        ry, rz = caipi_factors(acceleration)
    elif ry is None or rz is None:
        raise InvalidValue("caipi: give both caipi_ry and caipi_rz (or neither)")
    ry, rz = int(ry), int(rz)
    if ry < 1 or rz < 1:
        raise InvalidValue(f"caipi: ry and rz must be >= 1, got {ry}, {rz}")
    shift = (ry // rz if rz > 1 else 0) if shift is None else int(shift)
    h, w = shape
    offset = seed % (ry * rz)
    dy = np.arange(h)[:, None] - h // 2 - offset % ry
    dz = np.arange(w)[None, :] - w // 2 - offset // ry
    return (dz % rz == 0) & ((dy - shift * (dz // rz)) % ry == 0)


def _keyed(shape, budget, free, log_density, seed) -> np.ndarray:
    """``budget`` points of ``free`` drawn without replacement, weights ``exp(log_density)``
    (uniform when None): the smallest keys ``log E − log p``, ``E ~ Exp(1)``."""
    rng = np.random.default_rng(seed)
    cand = np.flatnonzero(free.ravel())
    out = np.zeros(free.size, bool)
    if budget <= 0:
        return out.reshape(shape)
    keys = np.log(rng.standard_exponential(cand.size))
    if log_density is not None:
        keys = keys - log_density.ravel()[cand]
    out[cand[np.argpartition(keys, budget - 1)[:budget]]] = True
    return out.reshape(shape)


def make_kykz_mask(kind: str, shape, *, acceleration: float, acs=(24, 24),
                   elliptical: bool = False, partial_fourier: float = 1.0, seed=0,
                   **options) -> MaskResult:
    """A ky–kz mask (module doc).

    Args:
        kind: one of :data:`KYKZ_KINDS`.
        shape: ``(KY, KZ)``.
        acceleration: ``R >= 1`` relative to the full grid (``caipi``: an integer, the lattice).
        acs: the fully sampled ``(ACS_Y, ACS_Z)`` block.
        elliptical / partial_fourier: the allowed region (module doc).
        seed: integer seed (``None``: drawn from OS entropy and recorded).
        **options: ``sigma`` (gaussian2d, default 0.25 of each axis), ``caipi_ry``,
            ``caipi_rz``, ``caipi_shift`` (caipi), ``max_attempts``, ``tol``, ``max_iter``
            (poisson).
    Returns:
        :class:`~mri_unfold.masks.MaskResult` (``num_low_frequencies`` = ACS points,
        ``center_fraction`` None).
    Raises:
        InvalidValue: an unknown kind, bad sizes, an ACS outside the allowed region, a budget
            smaller than the ACS or larger than the allowed region.
        TypeError: an option the kind does not take.
    """
    if kind not in KYKZ_KINDS:
        raise InvalidValue(f"unknown ky-kz mask kind {kind!r}; valid kinds: "
                           f"{', '.join(KYKZ_KINDS)}")
    if not isinstance(acceleration, (int, float)) or not acceleration >= 1:
        raise InvalidValue(f"acceleration must be a number >= 1, got {acceleration!r}")
    h, w = (int(s) for s in shape)
    seed = resolve_seed(seed)
    acs_region = acs_block((h, w), acs)
    allowed = allowed_region((h, w), elliptical, partial_fourier)
    if not allowed[acs_region].all():
        raise InvalidValue(f"the {int(acs_region.sum())}-point ACS block {tuple(acs)} reaches "
                           "outside the sampled region (partial Fourier or elliptical "
                           "scanning); use a smaller ACS or a larger partial_fourier")
    budget = int(round(h * w / float(acceleration)))
    if kind == "caipi":
        reject_options(kind, options, ("caipi_ry", "caipi_rz", "caipi_shift"))
        mask = _caipi((h, w), acceleration, seed, options.get("caipi_ry"),
                      options.get("caipi_rz"), options.get("caipi_shift")) & allowed
    else:
        extra = ("sigma",) if kind == "gaussian2d" else \
            ("max_attempts", "tol", "max_iter") if kind == "poisson" else ()
        reject_options(kind, options, extra)
        room = int((allowed & ~acs_region).sum())
        free_budget = budget - int(acs_region.sum())
        if free_budget < 0 or free_budget > room:
            raise InvalidValue(f"{kind} ky-kz mask {h}x{w} at {acceleration:g}x: the budget of "
                               f"{budget} points does not fit between the "
                               f"{int(acs_region.sum())}-point ACS and the {room + int(acs_region.sum())}"
                               " points of the allowed region")
        if kind == "poisson":
            mask = _poisson_mask((h, w), float(acceleration), acs, allowed, seed, options)
        else:
            log_density = None
            if kind == "gaussian2d":
                sigma = float(options.get("sigma", 0.25))
                if not sigma > 0:
                    raise InvalidValue(f"sigma must be > 0, got {sigma!r}")
                ky = (np.arange(h) - h // 2) / (sigma * h)
                kz = (np.arange(w) - w // 2) / (sigma * w)
                log_density = -0.5 * (ky[:, None] ** 2 + kz[None, :] ** 2)
            mask = _keyed((h, w), free_budget, allowed & ~acs_region, log_density, seed)
    mask = (mask | acs_region).astype(np.float32)
    return MaskResult(mask=mask, num_low_frequencies=int(acs_region.sum()), kind=kind,
                      seed=seed, requested_ratio=1.0 / float(acceleration), center_fraction=None)


def _poisson_mask(shape, accel, acs, allowed, seed, options) -> np.ndarray:
    if seed >= 2**32:
        raise InvalidValue(f"seed for poisson masks must be < 2**32, got {seed}")
    if accel == 1.0:
        return allowed.copy()
    tol = options.get("tol")
    tol = min(0.1, 0.015 * accel**2) if tol is None else float(tol)
    state = np.random.get_state()
    try:
        mask = _poisson_bisect(shape, accel, tuple(int(a) for a in acs), False,
                               int(options.get("max_attempts", 30)), tol,
                               int(options.get("max_iter", 48)), seed, allowed=allowed,
                               always=acs_block(shape, acs))
    finally:
        np.random.set_state(state)
    if abs(mask.mean() - 1 / accel) > 0.02:
        raise InvalidValue(f"poisson ky-kz mask: cannot reach {accel:g}x on {tuple(shape)} "
                           f"(closest {1 / max(mask.mean(), 1e-12):.2f}x) in the allowed region")
    return mask > 0
