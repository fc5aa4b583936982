"""Recognising file formats by content (magic bytes, HDF5 layout), not by name alone."""
from __future__ import annotations

import gzip
from pathlib import Path

import h5py

__all__ = ["hdf5_keys", "is_nifti"]

_NIFTI_MAGIC = (b"n+1\x00", b"ni1\x00", b"n+2\x00", b"ni2\x00")


def hdf5_keys(path: Path) -> set[str] | None:
    """Top-level names of an HDF5 file, or ``None`` when ``path`` is not a readable HDF5 file."""
    try:
        if not Path(path).is_file() or not h5py.is_hdf5(path):
            return None
        with h5py.File(path, "r") as f:
            return set(f.keys())
    except OSError:
        return None


def _head(path: Path, n: int) -> bytes:
    with open(path, "rb") as f:
        start = f.read(2)
        f.seek(0)
        if start == b"\x1f\x8b":  # gzip
            with gzip.open(f) as g:
                return g.read(n)
        return f.read(n)


def is_nifti(path: Path) -> bool:
    """Whether ``path`` (plain or gzip-compressed) starts with a NIfTI-1/2 header: the magic
    string at byte 344 (NIfTI-1) or 4 (NIfTI-2)."""
    try:
        if not Path(path).is_file():
            return False
        head = _head(Path(path), 352)
    except (OSError, EOFError, gzip.BadGzipFile):
        return False
    return head[344:348] in _NIFTI_MAGIC[:2] or head[4:8] in _NIFTI_MAGIC[2:]
