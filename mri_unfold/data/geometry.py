"""Slice geometry of raw data: scanner directions and positions -> a NIfTI affine.

Scanners (ISMRMRD acquisition headers, Siemens twix slice data) give, per slice, the
readout, phase-encode and slice-normal unit vectors and the centre position, in the
patient coordinate system **LPS** (x to the patient's left, y posterior, z superior; mm).
NIfTI uses **RAS**: the first two world axes change sign.

Our image arrays are ``(H, W)`` with rows along the readout and columns along the phase
encoding (:mod:`mri_unfold.data.sampling`), and the centred FFT puts the slice centre at
pixel ``(H // 2, W // 2)``; ``mri-unfold recon`` writes NIfTI volumes ``(H, W, S)``.

DICOM images (also LPS) give the position of their first pixel and the row and column
directions; an ``(H, W)`` DICOM image is ``Rows x Columns``, so row index ``i`` runs along the
*column* direction and column index ``j`` along the *row* direction
(:func:`dicom_slice_geometry`, :func:`image_planes`).  The same ``(H, W, S)`` affine describes
raw data, DICOM input and DICOM output.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import DataFileError

import numpy as np

__all__ = ["SliceGeometry", "stack_affine", "LPS_TO_RAS", "dicom_slice_geometry",
           "ImagePlanes", "image_planes", "crop_affine"]

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


def dicom_slice_geometry(position, orientation, pixel_spacing, matrix) -> SliceGeometry:
    """The :class:`SliceGeometry` of a DICOM image of ``matrix`` ``(Rows, Columns)``:
    ``position`` is ``ImagePositionPatient`` (first pixel, LPS), ``orientation``
    ``ImageOrientationPatient`` (row direction, column direction), ``pixel_spacing``
    ``(between rows, between columns)``.  Its ``read_dir`` is the column direction (rows of
    the array), ``phase_dir`` the row direction, ``position`` pixel ``(H // 2, W // 2)``."""
    ori = np.asarray(orientation, np.float64).reshape(6)
    row_dir, col_dir = ori[:3], ori[3:]
    h, w = int(matrix[0]), int(matrix[1])
    centre = (np.asarray(position, np.float64) + col_dir * float(pixel_spacing[0]) * (h // 2)
              + row_dir * float(pixel_spacing[1]) * (w // 2))
    return SliceGeometry.from_arrays(col_dir, row_dir, np.cross(row_dir, col_dir), centre)


@dataclass(frozen=True)
class ImagePlanes:
    """The DICOM image plane of every slice of an ``(H, W, S)`` stack.

    ``orientation`` ``(6,)`` (``ImageOrientationPatient``: row then column direction, LPS),
    ``pixel_spacing`` ``(between rows, between columns)`` mm, ``positions`` ``(S, 3)``
    (``ImagePositionPatient`` of each slice, LPS, mm), ``slice_spacing`` mm (distance between
    neighbouring slice centres), ``normal`` ``(3,)`` (row × column direction).
    """

    orientation: np.ndarray
    pixel_spacing: tuple[float, float]
    positions: np.ndarray
    slice_spacing: float
    normal: np.ndarray


def image_planes(affine, num_slices: int) -> ImagePlanes:
    """The DICOM image planes of a stack ``(H, W, S)`` with the RAS ``affine`` (the inverse of
    :func:`dicom_slice_geometry` + :func:`stack_affine`).

    Raises:
        DataFileError: a singular affine, or one whose in-plane axes are not orthogonal or
            whose slice axis is not perpendicular to the slices (shear: not representable as
            DICOM image planes).
    """
    a = np.asarray(affine, np.float64)
    if a.shape != (4, 4) or not np.isfinite(a).all():
        raise DataFileError(f"the affine must be a finite 4x4 matrix, got shape {a.shape}")
    m = LPS_TO_RAS @ a[:3, :3]
    steps = np.linalg.norm(m, axis=0)
    if (steps < 1e-9).any():
        raise DataFileError(f"the affine has a zero-length axis (voxel sizes {steps.tolist()})")
    u = m / steps
    if abs(u[:, 0] @ u[:, 1]) > 1e-4:
        raise DataFileError("the affine's in-plane axes are not orthogonal (sheared pixels); "
                            "cannot write DICOM image planes")
    normal = np.cross(u[:, 1], u[:, 0])
    if num_slices > 1 and abs(abs(u[:, 2] @ normal) - 1) > 1e-4:
        raise DataFileError("the affine's slice axis is not perpendicular to the slices "
                            "(sheared stack); cannot write DICOM image planes")
    origin = LPS_TO_RAS @ a[:3, 3]
    positions = origin[None] + np.arange(num_slices)[:, None] * m[:, 2][None]
    return ImagePlanes(orientation=np.concatenate([u[:, 1], u[:, 0]]),
                       pixel_spacing=(float(steps[0]), float(steps[1])), positions=positions,
                       slice_spacing=float(steps[2]), normal=normal)


def crop_affine(affine, full, crop) -> np.ndarray:
    """The affine of the centre crop ``crop`` ``(h, w)`` of an ``(H, W, S)`` stack ``full``
    ``(H, W)`` (the crop of :func:`mri_unfold.image_ops.center_crop`: it starts at
    ``((H - h) // 2, (W - w) // 2)``)."""
    a = np.array(affine, np.float64)
    a[:3, 3] += a[:3, 0] * ((int(full[0]) - int(crop[0])) // 2) \
        + a[:3, 1] * ((int(full[1]) - int(crop[1])) // 2)
    return a
