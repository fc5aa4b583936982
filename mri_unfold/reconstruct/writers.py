"""Writing reconstructions: fastMRI-style ``.h5``, NIfTI (like an input volume, or plain),
``.npy``.

Every writer goes through :func:`mri_unfold.atomic.atomic_output`: a failed write leaves no
partial file and the previous file (if any) untouched.
"""
from __future__ import annotations

import os
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np

from ..atomic import atomic_output
from ..data.nifti import save_like
from ..outputs import check_output_path

__all__ = ["check_output_path", "write_fastmri_h5", "write_nifti_like", "write_plain_nifti",
           "write_volume_nifti", "write_npy", "output_format", "with_tag"]

#: File name endings of the output formats.
_SUFFIXES = {".nii.gz": "nifti", ".nii": "nifti", ".hdf5": "h5", ".h5": "h5", ".npy": "npy"}


def output_format(path: str | os.PathLike) -> str | None:
    """``"h5"``, ``"nifti"`` or ``"npy"`` from a file name, or None for other names."""
    name = Path(path).name.lower()
    for suffix, kind in _SUFFIXES.items():
        if name.endswith(suffix):
            return kind
    return None


def with_tag(path: Path, tag: str) -> Path:
    """``a/b.nii.gz`` + ``_recon`` -> ``a/b_recon.nii.gz`` (the tag goes before the format's
    suffix; other names get it appended)."""
    name = path.name
    for ext in _SUFFIXES:
        if name.lower().endswith(ext):
            return path.with_name(name[: -len(ext)] + tag + name[-len(ext):])
    return path.with_name(name + tag)


def write_fastmri_h5(recon: np.ndarray, out: str | os.PathLike, attrs: dict | None = None) -> Path:
    """Write ``recon`` ``(S, H, W)`` as float32 dataset ``reconstruction`` (fastMRI submission
    layout), atomically."""
    recon = np.asarray(recon, dtype=np.float32)
    if recon.ndim != 3:
        raise ValueError(f"reconstruction must be (slices, H, W), got shape {recon.shape}")
    with atomic_output(out) as tmp:
        with h5py.File(tmp, "w") as hf:
            hf.create_dataset("reconstruction", data=recon)
            for k, v in (attrs or {}).items():
                hf.attrs[k] = v
    return Path(out)


def write_nifti_like(stack: np.ndarray, source, out: str | os.PathLike,
                     keep_dtype: bool = False) -> Path:
    """Write a slice stack ``(S, H, W)`` back in the layout of ``source`` (a
    :class:`mri_unfold.data.NiftiVolume`): same shape, affine, header and orientation
    (:func:`mri_unfold.data.save_like`, atomic); float32 values, or the input's on-disk
    data type (rounded and clipped for integer types) with ``keep_dtype``."""
    full = source.volume_from_slices(stack)
    if len(source.shape) == 4:
        full = full[..., None]
    return save_like(full, source, out, dtype=None if keep_dtype else np.float32)


def write_plain_nifti(stack: np.ndarray, out: str | os.PathLike,
                      affine: np.ndarray | None = None) -> Path:
    """Write ``(S, H, W)`` as a float32 NIfTI volume ``(H, W, S)`` (slices along the last
    axis) with ``affine`` (identity by default), atomically."""
    vol = np.ascontiguousarray(np.moveaxis(np.asarray(stack, np.float32), 0, -1))
    with atomic_output(out) as tmp:
        nib.save(nib.Nifti1Image(vol, np.eye(4) if affine is None else affine), tmp)
    return Path(out)


def write_volume_nifti(volume: np.ndarray, out: str | os.PathLike,
                       affine: np.ndarray | None = None) -> Path:
    """Write a 3-D volume ``(X, Y, Z)`` as NIfTI in that voxel order with ``affine`` (identity
    by default), atomically: float32 magnitude, or complex64 for a complex volume."""
    vol = np.asarray(volume)
    vol = np.ascontiguousarray(vol, np.complex64 if np.iscomplexobj(vol) else np.float32)
    with atomic_output(out) as tmp:
        nib.save(nib.Nifti1Image(vol, np.eye(4) if affine is None else affine), tmp)
    return Path(out)


def write_npy(stack: np.ndarray, out: str | os.PathLike) -> Path:
    """Write ``(S, H, W)`` float32 as ``.npy`` (no pickled objects), atomically."""
    with atomic_output(out) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(stack, dtype=np.float32), allow_pickle=False)
    return Path(out)
