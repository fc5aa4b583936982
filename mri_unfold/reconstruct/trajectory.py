"""How to sample non-Cartesian k-space in a simulated reconstruction: :class:`TrajectorySpec`.

A spec names a trajectory (``radial``, ``golden-radial``, ``spiral`` or a ``.npy`` /
ISMRMRD file, :func:`mri_unfold.trajectories.make_trajectory`), its acceleration relative to
Nyquist and DCF, and builds it for the slice size; :meth:`TrajectorySpec.of_operator` takes
the trajectory stored in a checkpoint's :class:`~mri_unfold.operators.NonCartesianFourier`
(the one the network was trained with) and :meth:`TrajectorySpec.of_checkpoint` also its
settings, so that slices of another size get the same kind of trajectory made for their
size.  Errors name the spec's fields, never a flag.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from ..operators import NonCartesianFourier
from ..trajectories import TRAJECTORY_KINDS, Trajectory, make_trajectory

__all__ = ["TrajectorySpec"]


@dataclass(frozen=True)
class TrajectorySpec:
    """``kind`` + ``acceleration`` (+ ``readout``, ``dcf``), or a fixed ``trajectory``, or
    both: the fixed one for slices of its size, the kind made for any other size."""

    kind: str | None = None
    acceleration: float | None = None
    readout: int | None = None
    dcf: str = "auto"
    trajectory: Trajectory | None = None

    def __post_init__(self):
        if self.kind is None and self.trajectory is None:
            raise UserError("a trajectory spec needs a kind (with an acceleration) or a fixed "
                            "trajectory")
        if self.kind is not None and self.acceleration is None:
            raise UserError(f"trajectory {self.kind!r}: needs an acceleration (relative to "
                            "Nyquist)")

    @property
    def label(self) -> str:
        if self.kind is None:
            return self.trajectory.kind
        return f"{self.kind} R={self.acceleration:g}"

    @classmethod
    def of_operator(cls, op: NonCartesianFourier) -> "TrajectorySpec":
        """The trajectory and DCF of a (checkpoint's) operator with one shared trajectory."""
        if op.traj.shape[0] != 1:
            raise UserError("the stored operator has one trajectory per sample; give a "
                            "trajectory kind and acceleration")
        dcf = None if op.dcf is None else op.dcf[0].double().cpu().numpy()
        traj = Trajectory(op.traj[0].double().cpu().numpy(), dcf, "the checkpoint's trajectory",
                          {"image_size": op.image_shape})
        return cls(trajectory=traj)

    @classmethod
    def of_checkpoint(cls, operator_cfg: dict, op: NonCartesianFourier) -> "TrajectorySpec":
        """:meth:`of_operator`, plus the checkpoint's trajectory settings (``trajectory``,
        ``acceleration``, ``readout``, ``dcf`` of ``operator.kind = "noncartesian"``) when
        they name a kind: slices of another size than the training images get that kind of
        trajectory made for their size."""
        fixed = cls.of_operator(op)
        kind = operator_cfg.get("trajectory")
        if kind not in TRAJECTORY_KINDS or operator_cfg.get("acceleration") is None:
            return fixed
        stored = dataclasses.replace(fixed.trajectory, kind=f"{kind} (the checkpoint's)")
        return cls(kind=kind, acceleration=float(operator_cfg["acceleration"]),
                   readout=int(operator_cfg.get("readout") or 0) or None,
                   dcf=str(operator_cfg.get("dcf") or "auto"), trajectory=stored)

    def make(self, shape: tuple[int, int]) -> Trajectory:
        """The trajectory for ``(H, W)`` slices.

        Raises:
            UserError: unusable settings, or a fixed trajectory made for another image size.
        """
        if self.trajectory is not None:
            size = self.trajectory.info.get("image_size")
            fits = size is None or tuple(np.atleast_1d(size)) in (tuple(shape), (max(shape),))
            if fits:
                return self.trajectory
            if self.kind is None:
                raise UserError(f"{self.trajectory.kind} was made for {tuple(size)} images, the "
                                f"slices are {tuple(shape)}")
        try:
            return make_trajectory(self.kind, max(int(s) for s in shape),
                                   acceleration=float(self.acceleration),
                                   readout=self.readout, dcf=self.dcf)
        except (ValueError, FileNotFoundError) as e:
            raise UserError(f"trajectory {self.kind!r}: {e}") from e
