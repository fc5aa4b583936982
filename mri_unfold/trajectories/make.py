"""One entry point for trajectories by name, with their density compensation.

``make_trajectory(kind, image_size, acceleration=...)`` for the kinds of
:data:`TRAJECTORY_KINDS` — the names ``operator.trajectory`` of the protocols and
``mri-unfold recon --trajectory`` accept:

* ``radial`` — uniformly spaced spokes; ``golden-radial`` — golden-angle spokes; both with
  ``ceil(π/2 · N / R)`` spokes of ``readout`` samples (default ``2 N``);
* ``spiral`` — variable-density spiral (``interleaves``, density exponent ``alpha``);
* a path to a ``.npy`` or ISMRMRD file (:func:`~mri_unfold.trajectories.load_trajectory`).

DCF (``dcf=``): ``"auto"`` (the analytic ramp for radial kinds, Pipe–Menon otherwise),
``"ramp"`` (radial only), ``"pipe-menon"``, ``"none"``; rescaled to a unit-norm operator
unless ``normalize=False``.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..operators.noncartesian import to_radians
from .density import normalize_dcf, pipe_menon_dcf, radial_ramp_dcf
from .io import load_trajectory
from .radial import radial_trajectory, spokes_for_acceleration
from .spiral import spiral_trajectory

__all__ = ["TRAJECTORY_KINDS", "DCF_METHODS", "Trajectory", "make_trajectory"]

#: Named trajectory kinds (anything else is read as a file path).
TRAJECTORY_KINDS = ("radial", "golden-radial", "spiral")
#: Density compensation choices.
DCF_METHODS = ("auto", "ramp", "pipe-menon", "none")


@dataclasses.dataclass(frozen=True)
class Trajectory:
    """A trajectory with its density compensation.

    Attributes:
        traj: ``(K, 2)`` float64 radians.
        dcf: ``(K,)`` float64 in Nyquist cells, or ``None``.
        kind: the name or file it came from; ``info``: spokes, readout, interleaves, ...
    """

    traj: np.ndarray
    dcf: np.ndarray | None
    kind: str
    info: dict

    @property
    def num_samples(self) -> int:
        return int(self.traj.shape[0])


def make_trajectory(kind: str, image_size: int, *, acceleration: float = 1.0,
                    readout: int | None = None, dcf: str = "auto", seed: int | None = None,
                    interleaves: int = 16, alpha: float = 1.5, units: str = "radians",
                    normalize: bool = True) -> Trajectory:
    """The trajectory ``kind`` for an ``N × N`` image (module doc).

    Args:
        kind: ``radial``, ``golden-radial``, ``spiral`` or a trajectory file.
        image_size: ``N``.
        acceleration: ``R`` relative to Nyquist (radial spokes, spiral arm spacing).
        readout: samples per spoke (radial; default ``2 N``).
        dcf: see :data:`DCF_METHODS`.
        seed: ``None``, or an int for a random rotation (private generator).
        interleaves / alpha: spiral parameters.
        units: units of a ``.npy`` file.
        normalize: rescale the DCF to a unit-norm density-weighted NUFFT
            (:func:`~mri_unfold.trajectories.normalize_dcf`; ``info["dcf_scale"]`` keeps
            the factor); ``False`` keeps Nyquist-cell units.
    Raises:
        ValueError: an unknown dcf method, ``"ramp"`` for a non-radial trajectory, bad
            parameters (naming them).  FileNotFoundError / DataFileError: a bad file.
    """
    if dcf not in DCF_METHODS:
        raise ValueError(f"dcf must be one of {', '.join(DCF_METHODS)}, got {dcf!r}")
    n = int(image_size)
    info: dict = {"image_size": n, "acceleration": acceleration}
    if kind in ("radial", "golden-radial"):
        spokes = spokes_for_acceleration(n, acceleration)
        m = 2 * n if readout is None else int(readout)
        traj = radial_trajectory(n, num_spokes=spokes, readout=m, seed=seed,
                                 ordering="uniform" if kind == "radial" else "golden")
        info.update(spokes=spokes, readout=m, nyquist_spokes=math.pi / 2 * n)
    elif kind == "spiral":
        traj = spiral_trajectory(n, interleaves=interleaves, acceleration=acceleration,
                                 alpha=alpha, seed=seed)
        info.update(interleaves=interleaves, alpha=alpha)
    else:
        loaded = load_trajectory(kind, units=units)
        traj = to_radians(loaded.traj, (n, n), loaded.units).numpy().astype(np.float64)
        info.update(file=str(kind))
    method = dcf if dcf != "auto" else ("ramp" if kind in ("radial", "golden-radial")
                                        else "pipe-menon")
    if method == "ramp" and kind not in ("radial", "golden-radial"):
        raise ValueError(f"dcf='ramp' is the radial ramp; trajectory {kind!r} needs "
                         "'pipe-menon' (or 'none')")
    weights = None
    if method == "ramp":
        weights = radial_ramp_dcf(info["spokes"], info["readout"], n)
    elif method == "pipe-menon":
        weights = pipe_menon_dcf(traj, (n, n))
    info["dcf"] = method
    if weights is not None and normalize:
        scaled = normalize_dcf(traj, weights, (n, n))
        info["dcf_scale"] = float(scaled[0] / weights[0]) if weights[0] else None
        weights = scaled
    return Trajectory(traj, weights, str(kind), info)
