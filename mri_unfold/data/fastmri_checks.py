"""Checks of a fastMRI file's declared sizes and values, before any slice is read.

A header or dataset may declare what the data cannot be: a recon matrix of 0, -20 or
30000 x 30000 pixels, a sampling mask holding 0.5 or NaN, a reference image of another shape
than the recon matrix.  Each is a :class:`~mri_unfold.data.errors.DataFileError` naming the
file and the dataset or header entry.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .errors import DataFileError

__all__ = ["check_binary_columns", "check_header_sizes", "MAX_RECON_OVER_KSPACE"]

#: The recon matrix may exceed the k-space matrix (fastMRI's FLAIR 203 files: the image is
#: narrower than 320) by at most this factor; more is a corrupt or forged header.
MAX_RECON_OVER_KSPACE = 2


def check_binary_columns(fname: Path, mask: np.ndarray) -> None:
    """A fastMRI ``mask`` dataset holds one 0/1 (or boolean) value per k-space column.

    Raises:
        DataFileError: other values (0.5, NaN, 2 ...), naming the first one.
    """
    values = np.asarray(mask).reshape(-1)
    if values.dtype == bool:
        return
    if not np.issubdtype(values.dtype, np.number):
        raise DataFileError(f"{fname}: the 'mask' dataset has data type {values.dtype}; expected "
                            "0/1 values")
    bad = ~np.isin(values, (0, 1))
    if bad.any():
        raise DataFileError(f"{fname}: the 'mask' dataset must hold only 0 and 1, found "
                            f"{values[bad][0].item()!r} ({int(bad.sum())} such values)")


def check_header_sizes(fname: Path, metadata: dict, kspace_shape: tuple[int, ...],
                       target_shape: tuple[int, ...] | None) -> None:
    """The header's encoded and recon matrices against the data.

    Args:
        metadata: fastMRI's ``SliceDataset`` metadata (``encoding_size``, ``recon_size``).
        kspace_shape: shape of the ``kspace`` dataset (``(slices, [coils,] H, W)``).
        target_shape: shape of the reference dataset, or None.
    Raises:
        DataFileError: a matrix size below 1, a recon matrix more than
            :data:`MAX_RECON_OVER_KSPACE` times the k-space matrix, or a reference image
            whose size is not the recon matrix.  A recon matrix larger than the k-space
            matrix (up to that factor) is cropped to it, with a warning.
    """
    h, w = (int(n) for n in kspace_shape[-2:])
    for key, label in (("encoding_size", "encoded"), ("recon_size", "recon")):
        size = metadata.get(key)
        if size is None:
            continue
        x, y = int(size[0]), int(size[1])
        if x < 1 or y < 1:
            raise DataFileError(f"{fname}: the ismrmrd_header's {label} matrix {x} x {y} must be "
                                "positive")
    rx, ry = (int(n) for n in metadata.get("recon_size", (h, w))[:2])
    if rx > MAX_RECON_OVER_KSPACE * h or ry > MAX_RECON_OVER_KSPACE * w:
        raise DataFileError(f"{fname}: the ismrmrd_header's recon matrix {rx} x {ry} does not fit "
                            f"the k-space matrix {h} x {w} (corrupt header?)")
    if rx > h or ry > w:
        warnings.warn(f"{fname}: the recon matrix {rx} x {ry} is larger than the k-space matrix "
                      f"{h} x {w}; the images are cropped to {min(rx, h)} x {min(ry, w)}",
                      stacklevel=2)
    if target_shape is not None and tuple(int(n) for n in target_shape[1:]) != (rx, ry):
        raise DataFileError(f"{fname}: the reference image is {tuple(target_shape[1:])} per "
                            f"slice, the ismrmrd_header's recon matrix is ({rx}, {ry})")
