"""3-D trajectories: radial "kooshball" spokes and stack-of-stars, with their density
compensation.

* :func:`kooshball_trajectory` — ``P`` full-diameter spokes through the k-space centre of an
  ``N³`` volume, each of ``M`` samples ``ω_m = 2π (m − M/2) / M`` (``M = 2 N``: 2× readout
  oversampling) along a direction ``u_p`` on the unit half-sphere: the 2-D golden means
  (Chan et al., MRM 61:354, 2009; ``φ₁ ≈ 0.4656``, ``φ₂ ≈ 0.6823``: ``z_p = frac(p φ₁)``,
  azimuth ``2π frac(p φ₂)``) — any run of consecutive spokes covers the sphere almost
  uniformly — or a uniform spiral on the half-sphere.  Nyquist needs ``π/2 · N²`` spokes
  (the outer sphere's area ``π N²`` over two crossings per spoke):
  :func:`kooshball_spokes` gives ``ceil(π/2 · N² / R)``;
* :func:`kooshball_dcf` — the analytic 3-D ramp ``|κ|²`` (the sample density of spokes falls
  as ``1/|κ|²``), the shared centre sample weighted by the volume of its ``Δκ/2`` ball,
  rescaled to a unit-norm operator (:func:`~mri_unfold.trajectories.normalize_dcf`);
* :func:`stack_of_stars_trajectory` — the in-plane radial trajectory ``(P · M, 2)`` of a
  stack of stars (every partition, or rotated by the golden angle from one partition to
  the next: ``(Z, P · M, 2)``), for :class:`~mri_unfold.operators.StackOfStarsFourier`.

Trajectories are float64 radians, spoke-major.
"""
from __future__ import annotations

import math

import numpy as np

from .density import normalize_dcf
from .radial import GOLDEN_ANGLE, radial_trajectory

__all__ = ["GOLDEN_MEANS", "kooshball_spokes", "kooshball_trajectory", "kooshball_dcf",
           "stack_of_stars_trajectory"]

#: The 2-D golden means (the eigenvector of the Fibonacci-like recurrence matrix).
GOLDEN_MEANS = (0.465571231876768, 0.682327803828019)


def kooshball_spokes(n: int, acceleration: float) -> int:
    """``ceil(π/2 · N² / R)`` full spokes for an ``N³`` volume at acceleration ``R``.

    Raises:
        ValueError: ``n < 1`` or ``acceleration <= 0``.
    """
    if n < 1 or not (math.isfinite(acceleration) and acceleration > 0):
        raise ValueError(f"need n >= 1 and a finite acceleration > 0, got {n}, {acceleration}")
    return max(1, math.ceil(math.pi / 2 * n * n / acceleration - 1e-9))


def kooshball_trajectory(image_size: int, *, num_spokes: int | None = None,
                         acceleration: float | None = None, readout: int | None = None,
                         ordering: str = "golden") -> np.ndarray:
    """A 3-D radial trajectory ``(P · M, 3)`` float64 radians (module doc).

    Args:
        image_size: ``N`` of the ``N³`` volume.
        num_spokes / acceleration: exactly one (``P``, or ``R`` relative to Nyquist).
        readout: samples per spoke (default ``2 N``); even.
        ordering: ``"golden"`` (golden means) or ``"uniform"`` (a spiral on the half-sphere).
    Raises:
        ValueError: neither or both of ``num_spokes``/``acceleration``, a bad readout or
            ordering.
    """
    if (num_spokes is None) == (acceleration is None):
        raise ValueError("kooshball_trajectory needs exactly one of num_spokes or acceleration")
    p = kooshball_spokes(image_size, acceleration) if num_spokes is None else int(num_spokes)
    m = 2 * int(image_size) if readout is None else int(readout)
    if m < 2 or m % 2 or p < 1:
        raise ValueError(f"need an even readout >= 2 and >= 1 spoke, got {m}, {p}")
    i = np.arange(p, dtype=np.float64)
    if ordering == "golden":
        z, az = np.mod(i * GOLDEN_MEANS[0], 1.0), 2 * math.pi * np.mod(i * GOLDEN_MEANS[1], 1.0)
    elif ordering == "uniform":                 # a spiral of equal-area steps
        z = (i + 0.5) / p
        az = np.mod(i * math.sqrt(math.pi * p), 2 * math.pi)
    else:
        raise ValueError(f"ordering must be 'golden' or 'uniform', got {ordering!r}")
    s = np.sqrt(1 - z * z)
    u = np.stack([s * np.cos(az), s * np.sin(az), z], -1)            # (P, 3)
    r = 2 * math.pi * (np.arange(m) - m / 2) / m
    return (r[None, :, None] * u[:, None, :]).reshape(-1, 3)


def kooshball_dcf(traj: np.ndarray, image_shape, *, normalize: bool = True) -> np.ndarray:
    """The 3-D radial ramp DCF ``(K,)`` float64 of a kooshball ``(K, 3)`` (module doc)."""
    t = np.asarray(traj, np.float64)
    kappa = np.linalg.norm(t * np.asarray(image_shape, np.float64) / (2 * math.pi), axis=-1)
    centre = kappa < 1e-9
    w = kappa ** 2
    if centre.any():
        step = kappa[~centre].min()
        w[centre] = (4 / 3) * math.pi * (step / 2) ** 3 / centre.sum() / max(step, 1e-12)
    return normalize_dcf(t, w, tuple(image_shape)) if normalize else w


def stack_of_stars_trajectory(image_size: int, partitions: int, *,
                              num_spokes: int | None = None, acceleration: float | None = None,
                              readout: int | None = None, rotate: bool = False) -> np.ndarray:
    """In-plane golden-angle radial spokes of a stack of stars: ``(P · M, 2)`` for every
    partition, or ``(Z, P · M, 2)`` rotated by the golden angle per partition
    (``rotate=True``).  Arguments as :func:`~mri_unfold.trajectories.radial_trajectory`."""
    if not rotate:
        return radial_trajectory(image_size, num_spokes=num_spokes, acceleration=acceleration,
                                 readout=readout)
    base = radial_trajectory(image_size, num_spokes=num_spokes, acceleration=acceleration,
                             readout=readout)
    out = []
    for z in range(int(partitions)):
        a = z * GOLDEN_ANGLE
        rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        out.append(base @ rot.T)
    return np.clip(np.stack(out), -math.pi, math.pi)
