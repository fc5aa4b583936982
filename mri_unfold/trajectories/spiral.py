"""Variable-density spiral trajectories (Archimedean spirals with a power-law radius).

Interleaf ``i`` of ``I`` follows ``κ(t) = κ_max t^α exp(i (2π n t + 2π i / I + θ₀))`` for
``t ∈ [0, 1]`` (cycles per FOV, ``κ_max = N/2``; real part along the rows):

* ``α = 1`` — a uniform-density Archimedean spiral, ``α > 1`` — denser near the centre;
* ``n`` turns per interleaf: ``n = N / (2 I R)`` puts adjacent arms ``R`` Nyquist
  spacings apart at the edge (``R = acceleration``; the centre is sampled more densely
  when ``α > 1``);
* samples per interleaf: the arc length in cycles times ``oversampling`` (default 2),
  so consecutive readout samples are at most half a Nyquist step apart at the edge.

Returned in radians ``ω = 2π κ / N``, shape ``(I · M, 2)`` float64, interleaf-major.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["spiral_trajectory"]


def spiral_trajectory(image_size: int, *, interleaves: int = 16, acceleration: float = 1.0,
                      alpha: float = 1.5, oversampling: float = 2.0,
                      samples: int | None = None, seed: int | None = None) -> np.ndarray:
    """A variable-density spiral ``(I · M, 2)`` float64 in radians (module doc).

    Args:
        image_size: ``N`` of the ``N × N`` image.
        interleaves: ``I >= 1`` interleaves, rotated by ``2π / I``.
        acceleration: ``R > 0`` (arm spacing at the edge, in Nyquist steps).
        alpha: density exponent ``α >= 1``.
        oversampling: readout samples per cycle of arc length (default 2).
        samples: samples per interleaf ``M`` (default from ``oversampling``).
        seed: ``None``, or an int rotating the whole trajectory by an angle drawn from a
            private generator.
    Raises:
        ValueError: each argument outside its range, naming it.
    """
    n = int(image_size)
    if n < 2:
        raise ValueError(f"image_size must be >= 2, got {image_size}")
    if interleaves < 1:
        raise ValueError(f"interleaves must be >= 1, got {interleaves}")
    if not (math.isfinite(acceleration) and acceleration > 0):
        raise ValueError(f"acceleration must be a finite number > 0, got {acceleration}")
    if not alpha >= 1:
        raise ValueError(f"alpha must be >= 1 (1 = uniform density), got {alpha}")
    if not oversampling > 0:
        raise ValueError(f"oversampling must be > 0, got {oversampling}")
    kmax = n / 2
    turns = n / (2 * interleaves * acceleration)
    if samples is None:
        arc = math.pi * kmax * turns + kmax          # ≈ length of one arm, in cycles
        samples = max(8, math.ceil(oversampling * arc))
    t = np.linspace(0.0, 1.0, int(samples))
    rot = 0.0 if seed is None else np.random.default_rng(seed).uniform(0, 2 * math.pi)
    phi0 = 2 * math.pi * np.arange(interleaves)[:, None] / interleaves + rot
    k = kmax * t[None] ** alpha * np.exp(1j * (2 * math.pi * turns * t[None] + phi0))
    omega = 2 * math.pi * k / n
    traj = np.stack([omega.real, omega.imag], -1).reshape(-1, 2)
    return np.clip(traj, -math.pi, math.pi)
