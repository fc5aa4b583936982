"""3-D raw scans: which files hold one, and their volumes.

A raw k-space file is a 3-D scan when its encoding says so — ISMRMRD: an encoded matrix
with ``z > 1`` (``kspace_encode_step_2``); Siemens twix: ``sKSpace.ucDimension = 4``
(partitions); BART: a ``PHS2`` dimension above 1.  :func:`read_volumes` returns its
:class:`~mri_unfold.data.volume3d.KSpaceVolume` slabs (k-space ``(C, X, Y, Z)``, readout
first, with geometry where the format has it).  Plain arrays (``array``) and fastMRI files
are 2-D.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .bart import COIL, PHS1, PHS2, READ, bart_stem, read_cfl, read_header
from .errors import DataFileError
from .samples import SampleMetadata
from .sources.ismrmrd_source import is_3d_ismrmrd, read_ismrmrd_volumes
from .sources.twix import is_3d_twix, read_twix_volumes
from .volume3d import KSpaceVolume

__all__ = ["is_3d_scan", "read_volumes", "VOLUME_KINDS"]

#: Raw sources that can hold 3-D scans.
VOLUME_KINDS = ("ismrmrd", "twix", "bart")

def is_3d_scan(kind: str, path: str | Path) -> bool:
    """Whether the ``kind`` file ``path`` holds a 3-D encoding (module doc); reads headers
    only where the format allows."""
    if kind == "ismrmrd":
        return is_3d_ismrmrd(path)
    if kind == "twix":
        return is_3d_twix(path)
    if kind == "bart":
        dims = read_header(bart_stem(path))
        return dims is not None and len(dims) > PHS2 and dims[PHS2] > 1
    return False


def _bart_volumes(path) -> list[KSpaceVolume]:
    stem = bart_stem(path)
    a = np.asarray(read_cfl(stem), np.complex64)
    a = a.reshape(a.shape + (1,) * max(0, 16 - a.ndim))
    extra = [d for d in range(a.ndim) if d not in (READ, PHS1, PHS2, COIL)]
    t = np.transpose(a, extra[::-1] + [COIL, READ, PHS1, PHS2])
    t = t.reshape(-1, *t.shape[-4:])                       # (S, C, X, Y, Z)
    out = []
    for k in range(t.shape[0]):
        meta = SampleMetadata(fname=stem.with_suffix(".cfl").name, slice=k,
                              extras={"path": str(stem.with_suffix(".cfl")), "format": "bart"})
        out.append(KSpaceVolume(torch.from_numpy(np.ascontiguousarray(t[k])), meta))
    return out


def read_volumes(kind: str, path: str | Path, prewhiten: bool = True) -> list[KSpaceVolume]:
    """The 3-D volumes (slabs) of a raw ``kind`` file.

    Raises:
        DataFileError naming the file: a format without 3-D scans, a 2-D encoding, and the
            readers' own errors (inconsistent encodings, counters outside the matrix, an
            undersampled readout, NaN/Inf).
    """
    if kind == "ismrmrd":
        return read_ismrmrd_volumes(path, prewhiten)
    if kind == "twix":
        return read_twix_volumes(path, prewhiten)
    if kind == "bart":
        if not is_3d_scan(kind, path):
            raise DataFileError(f"{path}: not a 3-D scan (BART PHS2 dimension is 1)")
        return _bart_volumes(path)
    raise DataFileError(f"{path}: {kind} files hold 2-D slices; 3-D scans come as "
                        f"{', '.join(VOLUME_KINDS)}")
