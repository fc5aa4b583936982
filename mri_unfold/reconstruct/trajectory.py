"""How to sample non-Cartesian k-space in a simulated reconstruction: :class:`TrajectorySpec`.

A spec names a trajectory (``radial``, ``golden-radial``, ``spiral`` or a ``.npy`` /
ISMRMRD file, :func:`mri_unfold.trajectories.make_trajectory`), its acceleration relative to
Nyquist and DCF, and builds it for the slice size; :meth:`TrajectorySpec.of_operator` takes
the trajectory stored in a checkpoint's :class:`~mri_unfold.operators.NonCartesianFourier`
(the one the network was trained with).  Errors name the spec's fields, never a flag.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from ..operators import NonCartesianFourier
from ..trajectories import Trajectory, make_trajectory

__all__ = ["TrajectorySpec"]


@dataclass(frozen=True)
class TrajectorySpec:
    """``kind`` + ``acceleration`` (+ ``readout``, ``dcf``), or a fixed ``trajectory``."""

    kind: str | None = None
    acceleration: float | None = None
    readout: int | None = None
    dcf: str = "auto"
    trajectory: Trajectory | None = None

    def __post_init__(self):
        if (self.kind is None) == (self.trajectory is None):
            raise UserError("a trajectory spec needs either a kind (with an acceleration) or "
                            "a fixed trajectory")
        if self.kind is not None and self.acceleration is None:
            raise UserError(f"trajectory {self.kind!r}: needs an acceleration (relative to "
                            "Nyquist)")

    @property
    def label(self) -> str:
        if self.trajectory is not None:
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

    def make(self, shape: tuple[int, int]) -> Trajectory:
        """The trajectory for ``(H, W)`` slices.

        Raises:
            UserError: unusable settings, or a fixed trajectory made for another image size.
        """
        if self.trajectory is not None:
            size = self.trajectory.info.get("image_size")
            if size is not None and tuple(np.atleast_1d(size)) not in (tuple(shape),
                                                                       (max(shape),)):
                raise UserError(f"{self.trajectory.kind} was made for {tuple(size)} images, the "
                                f"slices are {tuple(shape)}")
            return self.trajectory
        try:
            return make_trajectory(self.kind, max(int(s) for s in shape),
                                   acceleration=float(self.acceleration),
                                   readout=self.readout, dcf=self.dcf)
        except (ValueError, FileNotFoundError) as e:
            raise UserError(f"trajectory {self.kind!r}: {e}") from e
