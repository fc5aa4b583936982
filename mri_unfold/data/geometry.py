"""Slice geometry of raw data: scanner directions and positions -> a NIfTI affine.

Scanners (ISMRMRD acquisition headers, Siemens twix slice data) give, per slice, the
readout, phase-encode and slice-normal unit vectors and the centre position, in the
patient coordinate system **LPS** (x to the patient's left, y posterior, z superior; mm).
NIfTI uses **RAS**: the first two world axes change sign.

Our image arrays are ``(H, W)`` with rows along the readout and columns along the phase
encoding (:mod:`mri_unfold.data.sampling`), and the centred FFT puts the slice centre at
pixel ``(H // 2, W // 2)``; ``mri-unfold recon`` writes NIfTI volumes ``(H, W, S)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SliceGeometry", "stack_affine", "LPS_TO_RAS"]

#: LPS -> RAS for positions and directions.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


@dataclass(frozen=True)
class SliceGeometry:
    """One slice's orientation in LPS (unit vectors) and its centre (mm).

    ``read_dir``, ``phase_dir``, ``slice_dir``, ``position``: ``(3,)`` float64 each.
    """

    read_dir: tuple[float, float, float]
    phase_dir: tuple[float, float, float]
    slice_dir: tuple[float, float, float]
    position: tuple[float, float, float]

    @classmethod
    def from_arrays(cls, read_dir, phase_dir, slice_dir, position) -> "SliceGeometry":
        as3 = lambda v: tuple(float(x) for x in np.asarray(v, np.float64).reshape(3))  # noqa: E731
        return cls(as3(read_dir), as3(phase_dir), as3(slice_dir), as3(position))

    @property
    def known(self) -> bool:
        """Whether the directions are usable (non-zero read and phase vectors)."""
        return bool(np.linalg.norm(self.read_dir) > 0.5 and np.linalg.norm(self.phase_dir) > 0.5)


def stack_affine(geometries: list[SliceGeometry], voxel_mm, matrix) -> np.ndarray | None:
    """The 4x4 RAS affine of a slice stack ``(H, W, S)``.

    Column 0 steps along the readout by ``voxel_mm[0]``, column 1 along the phase encoding by
    ``voxel_mm[1]``, column 2 from one slice centre to the next (``slice_dir * voxel_mm[2]``
    for a single slice); the origin puts pixel ``(H // 2, W // 2)`` of slice 0 at its centre
    position.

    Args:
        geometries: one :class:`SliceGeometry` per slice, in stack order.
        voxel_mm: ``(dx, dy, dz)`` in mm.
        matrix: ``(H, W)``.
    Returns:
        ``(4, 4)`` float64, or ``None`` when the header gave no orientation.
    """
    if not geometries or not all(g.known for g in geometries):
        return None
    g0 = geometries[0]
    cols = [np.asarray(g0.read_dir) * float(voxel_mm[0]),
            np.asarray(g0.phase_dir) * float(voxel_mm[1])]
    if len(geometries) > 1:
        cols.append(np.asarray(geometries[1].position) - np.asarray(g0.position))
    else:
        cols.append(np.asarray(g0.slice_dir) * float(voxel_mm[2]))
    rot = LPS_TO_RAS @ np.stack(cols, axis=1)
    centre = LPS_TO_RAS @ np.asarray(g0.position)
    h, w = int(matrix[0]), int(matrix[1])
    affine = np.eye(4)
    affine[:3, :3] = rot
    affine[:3, 3] = centre - rot[:, 0] * (h // 2) - rot[:, 1] * (w // 2)
    return affine
