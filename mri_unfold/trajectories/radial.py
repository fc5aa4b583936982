"""Radial trajectories: uniform and golden-angle spokes through the k-space centre.

A spoke is a full diameter at angle ``θ`` with ``M`` readout samples
``κ_m = (m - M/2) · N / M`` cycles per FOV (``m = 0 .. M-1``; ``M = 2 N`` is 2× readout
oversampling), i.e. ``ω_m = 2π (m - M/2) / M`` radians, always inside ``[-π, π)``.
Point ``(p, m)`` is at ``ω_m · (cos θ_p, sin θ_p)`` — rows (first coordinate) along
``cos θ``.

* uniform: ``θ_p = π p / P``;
* golden angle: ``θ_p = p · π / φ`` (≈ 111.246°, ``φ`` the golden ratio), so any run of
  consecutive spokes covers k-space almost uniformly.

Nyquist: a radial acquisition of an ``N × N`` image needs ``π/2 · N`` spokes (the outer
circle's circumference ``π N`` cycles divided by two samples per spoke crossing);
:func:`spokes_for_acceleration` gives ``ceil(π/2 · N / R)`` for an acceleration ``R``.

Shapes: ``(P · M, 2)`` float64 radians, spoke-major (reshape to ``(P, M, 2)``).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["GOLDEN_ANGLE", "ORDERINGS", "nyquist_spokes", "spokes_for_acceleration",
           "radial_trajectory", "spoke_angles"]

#: The golden angle for full-diameter spokes, π / φ radians (≈ 111.246°).
GOLDEN_ANGLE = math.pi * 2 / (1 + math.sqrt(5))
#: Spoke orderings of :func:`radial_trajectory`.
ORDERINGS = ("uniform", "golden")


def nyquist_spokes(n: int) -> float:
    """``π/2 · N``: the number of spokes that samples an ``N × N`` image at Nyquist."""
    if n < 1:
        raise ValueError(f"image size must be >= 1, got {n}")
    return math.pi / 2 * n


def spokes_for_acceleration(n: int, acceleration: float) -> int:
    """``ceil(π/2 · N / R)`` spokes for acceleration ``R`` relative to Nyquist (``R >= 1``
    undersamples; ``R < 1`` oversamples).

    Raises:
        ValueError: ``acceleration <= 0`` or not finite.
    """
    if not (math.isfinite(acceleration) and acceleration > 0):
        raise ValueError(f"acceleration must be a finite number > 0, got {acceleration}")
    return max(1, math.ceil(nyquist_spokes(n) / acceleration - 1e-9))


def spoke_angles(num_spokes: int, ordering: str = "golden", *, start: int = 0,
                 seed: int | None = None) -> np.ndarray:
    """Spoke angles ``(P,)`` float64 in radians.

    Args:
        ordering: ``"uniform"`` (``π p / P``) or ``"golden"`` (``(start + p) π / φ``).
        start: index of the first golden-angle spoke (e.g. the frame of a sliding window).
        seed: ``None`` = no rotation; an int rotates all spokes by one angle drawn from a
            private :class:`numpy.random.Generator` seeded with it (e.g. a different
            trajectory per training sample).
    Raises:
        ValueError: unknown ordering, ``num_spokes < 1``.
    """
    if ordering not in ORDERINGS:
        raise ValueError(f"ordering must be one of {', '.join(ORDERINGS)}, got {ordering!r}")
    if num_spokes < 1:
        raise ValueError(f"num_spokes must be >= 1, got {num_spokes}")
    p = np.arange(num_spokes, dtype=np.float64)
    theta = p * math.pi / num_spokes if ordering == "uniform" else (p + start) * GOLDEN_ANGLE
    if seed is not None:
        theta = theta + np.random.default_rng(seed).uniform(0, math.pi)
    return np.mod(theta, 2 * math.pi)


def radial_trajectory(image_size: int, *, num_spokes: int | None = None,
                      acceleration: float | None = None, readout: int | None = None,
                      ordering: str = "golden", start: int = 0,
                      seed: int | None = None) -> np.ndarray:
    """A 2-D radial trajectory ``(P · M, 2)`` float64 in radians (module doc).

    Args:
        image_size: ``N`` of the ``N × N`` image.
        num_spokes / acceleration: exactly one of them (``P``, or ``R`` relative to Nyquist,
            :func:`spokes_for_acceleration`).
        readout: samples per spoke ``M`` (default ``2 N``: 2× readout oversampling); even.
        ordering / start / seed: see :func:`spoke_angles`.
    Raises:
        ValueError: neither or both of ``num_spokes`` / ``acceleration``, an odd or too
            small ``readout``.
    """
    if (num_spokes is None) == (acceleration is None):
        raise ValueError("radial_trajectory needs exactly one of num_spokes or acceleration")
    p = spokes_for_acceleration(image_size, acceleration) if num_spokes is None else num_spokes
    m = 2 * int(image_size) if readout is None else int(readout)
    if m < 2 or m % 2:
        raise ValueError(f"readout must be an even number >= 2 of samples per spoke, got {m}")
    theta = spoke_angles(int(p), ordering, start=start, seed=seed)
    r = 2 * math.pi * (np.arange(m) - m / 2) / m
    traj = np.stack([r[None] * np.cos(theta)[:, None], r[None] * np.sin(theta)[:, None]], -1)
    return traj.reshape(-1, 2)
