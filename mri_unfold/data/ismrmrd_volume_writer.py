"""Writing a 3-D Cartesian scan as an ISMRMRD/MRD file (what a scanner converter writes for
a 3-D sequence): an XML header with one 3-D encoding — encoded and recon matrix
``X × Y × Z`` and field of view, encoding limits of ``kspace_encode_step_1`` (``ky``) and
``kspace_encode_step_2`` (``kz``) — and one acquisition per sampled ``(ky, kz)`` line: the
whole readout ``(C, X)`` centred at ``X // 2``, the slab's centre position and directions
(LPS) from the volume's affine.

Reading the file back with :func:`~mri_unfold.data.sources.ismrmrd_source.read_ismrmrd_volumes`
gives the same k-space, ky–kz mask and affine (tested).  Written atomically.
"""
from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import torch

from ..atomic import atomic_output
from ..errors import UserError
from .geometry import LPS_TO_RAS
from .ismrmrd_writer import header_with

__all__ = ["write_ismrmrd_volume"]

_FIRST_IN_SLICE, _LAST_IN_SLICE, _LAST_IN_MEASUREMENT = 7, 8, 25


def _header_xml(c: int, shape, fov) -> str:
    from ismrmrd import xsd

    x, y, z = (int(s) for s in shape)
    space = xsd.encodingSpaceType(matrixSize=xsd.matrixSizeType(x=x, y=y, z=z),
                                  fieldOfView_mm=xsd.fieldOfViewMm(x=fov[0], y=fov[1], z=fov[2]))
    limit = lambda n: xsd.limitType(minimum=0, maximum=n - 1, center=n // 2)  # noqa: E731
    zero = xsd.limitType(minimum=0, maximum=0, center=0)
    enc = xsd.encodingType(
        encodedSpace=space, reconSpace=space,
        encodingLimits=xsd.encodingLimitsType(
            kspace_encoding_step_0=limit(x), kspace_encoding_step_1=limit(y),
            kspace_encoding_step_2=limit(z), slice=zero, contrast=zero, repetition=zero,
            average=zero, phase=zero, set=zero, segment=zero),
        trajectory=xsd.trajectoryType.CARTESIAN)
    return header_with(enc, c)


def write_ismrmrd_volume(kspace, out: str | os.PathLike, *, fov_mm=None,
                         affine=None) -> Path:
    """Write 3-D k-space ``(C, X, Y, Z)`` (centred, ``X`` the readout; unsampled ``(ky, kz)``
    lines all zero) to ``out`` (module doc).

    Args:
        fov_mm: the field of view ``(x, y, z)`` in mm (default: the affine's voxel sizes ×
            the matrix, else 1 mm voxels).
        affine: the ``(4, 4)`` RAS affine of the ``(X, Y, Z)`` image (default: none stored).
    Raises:
        UserError: not ``(C, X, Y, Z)`` complex, or nothing sampled.
    """
    from ismrmrd.hdf5 import acquisition_dtype

    k = torch.as_tensor(kspace).detach().cpu()
    if k.ndim != 4 or not k.is_complex():
        raise UserError(f"{out}: a 3-D scan needs complex k-space (C, X, Y, Z), got "
                        f"{k.dtype} {tuple(k.shape)}")
    k = k.numpy().astype(np.complex64)
    c, x, y, z = k.shape
    lines = np.argwhere((k != 0).any(axis=(0, 1)))            # (n, 2): (ky, kz)
    if len(lines) == 0:
        raise UserError(f"{out}: the 3-D k-space holds no samples")
    a = None if affine is None else np.asarray(affine, np.float64)
    if fov_mm is None:
        vox = np.ones(3) if a is None else np.linalg.norm(a[:3, :3], axis=0)
        fov_mm = tuple(float(v * n) for v, n in zip(vox, (x, y, z)))
    table = np.zeros(len(lines), acquisition_dtype)
    hd = table["head"]
    hd["version"], hd["scan_counter"] = 1, np.arange(len(table))
    hd["number_of_samples"], hd["active_channels"], hd["available_channels"] = x, c, c
    hd["center_sample"] = x // 2
    hd["channel_mask"][:, 0] = np.uint64((1 << c) - 1) if c < 64 else ~np.uint64(0)
    if a is not None:
        cols = [LPS_TO_RAS @ a[:3, i] for i in range(3)]
        unit = [v / max(np.linalg.norm(v), 1e-12) for v in cols]
        hd["read_dir"], hd["phase_dir"], hd["slice_dir"] = unit
        hd["position"] = LPS_TO_RAS @ (a[:3, :3] @ np.array([x // 2, y // 2, z // 2]) + a[:3, 3])
    hd["idx"]["kspace_encode_step_1"], hd["idx"]["kspace_encode_step_2"] = lines[:, 0], lines[:, 1]
    hd["flags"][0] |= np.uint64(1 << (_FIRST_IN_SLICE - 1))
    hd["flags"][-1] |= np.uint64((1 << (_LAST_IN_SLICE - 1)) | (1 << (_LAST_IN_MEASUREMENT - 1)))
    for i, (j, m) in enumerate(lines):
        table["traj"][i] = np.zeros(0, np.float32)
        table["data"][i] = np.ascontiguousarray(k[:, :, j, m]).view(np.float32).ravel()
    with atomic_output(out) as tmp:
        with h5py.File(tmp, "w") as f:
            g = f.create_group("dataset")
            xml = g.create_dataset("xml", shape=(1,), dtype=h5py.special_dtype(vlen=bytes))
            xml[0] = _header_xml(c, (x, y, z), fov_mm).encode()
            g.create_dataset("data", data=table, maxshape=(None,), chunks=True)
    return Path(out)
