"""How much of k-space a non-Cartesian trajectory samples, in numbers a reader can check.

:func:`describe_sampling` — for a trajectory ``(K, 2)`` (radians) and its ``(H, W)`` image:

* ``cells_hit`` — the fraction of the ``H × W`` Cartesian k-space cells (Nyquist cells)
  holding at least one sample: the non-Cartesian counterpart of a Cartesian mask's sampled
  fraction (8× golden-angle radial at 256 × 256 hits about 20 % of them, full Nyquist radial
  about 80 %: the corners are outside the disc);
* for radial trajectories (``radial=True``): ``spokes`` (distinct spoke angles),
  ``nyquist_spokes`` ``= π/2 · N`` and ``acceleration`` ``= nyquist_spokes / spokes``
  (the convention of :func:`~mri_unfold.trajectories.spokes_for_acceleration`).
"""
from __future__ import annotations

import math

import numpy as np

from ..operators.noncartesian import to_radians
from .radial import nyquist_spokes

__all__ = ["describe_sampling", "count_spokes"]

#: Angles closer than this (radians) belong to one spoke.
SPOKE_ANGLE_TOLERANCE = 1e-4


def count_spokes(kappa: np.ndarray) -> int:
    """Distinct spoke directions (modulo π) of radial samples ``kappa`` ``(K, 2)`` in cycles;
    samples within one cycle of the centre are ignored (their angle is imprecise)."""
    far = kappa[np.linalg.norm(kappa, axis=1) > 1.0]
    if far.size == 0:
        return 0
    theta = np.sort(np.mod(np.arctan2(far[:, 1], far[:, 0]), math.pi))
    gaps = np.diff(theta) > SPOKE_ANGLE_TOLERANCE
    spokes = int(gaps.sum()) + 1
    if theta[-1] - theta[0] > math.pi - SPOKE_ANGLE_TOLERANCE:  # the first spoke wraps around
        spokes -= 1
    return max(spokes, 1)


def describe_sampling(traj, image_shape: tuple[int, int], *, radial: bool = False,
                      mask=None) -> dict:
    """The module doc's numbers for ``traj`` ``(K, 2)`` in radians (optionally only the
    samples where ``mask`` ``(K,)`` is non-zero).

    Returns:
        ``{"samples", "cells_hit"}`` plus, with ``radial``, ``{"spokes", "nyquist_spokes",
        "acceleration"}``.
    """
    hw = tuple(int(s) for s in image_shape)
    om = to_radians(np.asarray(traj, np.float64), hw).numpy()
    if mask is not None:
        om = om[np.asarray(mask).reshape(-1) != 0]
    kappa = om * np.asarray(hw, np.float64) / (2 * math.pi)
    cells = np.floor(kappa + 0.5).astype(np.int64) + np.asarray(hw) // 2
    inside = ((cells >= 0) & (cells < np.asarray(hw))).all(axis=1)
    hit = np.unique(cells[inside, 0] * hw[1] + cells[inside, 1]).size
    out = {"samples": int(len(om)), "cells_hit": hit / float(hw[0] * hw[1])}
    if radial:
        spokes = count_spokes(kappa)
        nyquist = nyquist_spokes(max(hw))
        out.update(spokes=spokes, nyquist_spokes=nyquist,
                   acceleration=nyquist / spokes if spokes else float("inf"))
    return out
