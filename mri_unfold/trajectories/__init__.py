"""Non-Cartesian k-space trajectories and their density compensation.

* :mod:`.radial` — uniform and golden-angle radial spokes, spokes from an acceleration
  relative to Nyquist (``π/2 · N`` spokes);
* :mod:`.spiral` — variable-density spirals;
* :mod:`.radial3d` — 3-D radial (kooshball, golden means) and stack-of-stars, 3-D ramp DCF;
* :mod:`.io` — trajectories from ``.npy`` and ISMRMRD files;
* :mod:`.density` — analytic radial ramp and iterative Pipe–Menon DCFs;
* :mod:`.describe` — the Cartesian cells a trajectory hits, radial spokes and acceleration;
* :func:`make_trajectory` — one entry point by name (``radial``, ``golden-radial``,
  ``spiral``), with the matching DCF.

Every trajectory is in radians (``[-π, π]``, :class:`mri_unfold.operators.NonCartesianFourier`'s
default units), ``(K, 2)`` float64, deterministic, and seeded (private generator) where a
random rotation is asked for.
"""
from .density import (normalize_dcf, operator_norm, pipe_menon_dcf, radial_ramp_dcf,
                      ramp_from_trajectory)
from .describe import describe_sampling
from .io import LoadedTrajectory, load_trajectory
from .make import TRAJECTORY_KINDS, Trajectory, make_trajectory
from .radial import (GOLDEN_ANGLE, nyquist_spokes, radial_trajectory, spoke_angles,
                     spokes_for_acceleration)
from .spiral import spiral_trajectory
from .radial3d import (kooshball_dcf, kooshball_spokes, kooshball_trajectory,
                       stack_of_stars_trajectory)

__all__ = ["GOLDEN_ANGLE", "nyquist_spokes", "spokes_for_acceleration", "spoke_angles",
           "radial_trajectory", "spiral_trajectory", "radial_ramp_dcf", "pipe_menon_dcf",
           "normalize_dcf", "operator_norm", "ramp_from_trajectory",
           "load_trajectory", "LoadedTrajectory", "make_trajectory", "Trajectory",
           "TRAJECTORY_KINDS", "describe_sampling", "kooshball_trajectory", "kooshball_spokes",
           "kooshball_dcf", "stack_of_stars_trajectory"]
