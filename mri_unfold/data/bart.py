"""BART's ``.cfl``/``.hdr`` files: a complex array in BART's dimension order.

A BART array ``name`` is two files: ``name.hdr``, text ``# Dimensions`` followed by one
line of sizes, and ``name.cfl``, the complex64 samples (interleaved float32 real/imag,
little-endian) in **column-major** (Fortran) order — the first dimension varies fastest.
BART's dimensions (``misc/mri.h``), the first 16:

====  ==========  =========================================
 0    READ        readout (frequency encoding)
 1    PHS1        phase encoding
 2    PHS2        second phase encoding / partitions (3-D)
 3    COIL        receive channels
 4    MAPS        ESPIRiT map sets
 5    TE          echoes
 6-9  COEFF, COEFF2, ITER, CSHIFT
10    TIME        repetitions / frames
11    TIME2
12    LEVEL
13    SLICE       slices
14    AVG         averages
15    BATCH
====  ==========  =========================================

BART's k-space is centred (DC at index ``n // 2``, its ``fftmod`` convention) — the same
layout as :mod:`mri_unfold.fft`.  :func:`read_cfl` / :func:`write_cfl` read and write any
array; :func:`kspace_to_bart` / :func:`bart_to_kspace` convert between BART k-space and
our ``(S, C, H, W)`` slices (``H`` = READ, ``W`` = PHS1, ``C`` = COIL, ``S`` = SLICE, with
any other non-singleton dimensions flattened into ``S``; 3-D data are transformed along
PHS2 so each partition becomes a slice).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_output
from .errors import DataFileError

__all__ = ["read_cfl", "write_cfl", "bart_stem", "bart_to_kspace", "kspace_to_bart",
           "BART_DIMS", "READ", "PHS1", "PHS2", "COIL", "SLICE"]

READ, PHS1, PHS2, COIL, SLICE = 0, 1, 2, 3, 13
#: BART's dimension names, by index.
BART_DIMS = ("READ", "PHS1", "PHS2", "COIL", "MAPS", "TE", "COEFF", "COEFF2", "ITER", "CSHIFT",
             "TIME", "TIME2", "LEVEL", "SLICE", "AVG", "BATCH")
_MAGIC = b"# Dimensions"


def bart_stem(path: str | os.PathLike) -> Path:
    """``a/b.cfl`` or ``a/b.hdr`` -> ``a/b``."""
    p = Path(path)
    return p.with_suffix("") if p.suffix.lower() in (".cfl", ".hdr") else p


def read_header(stem: Path) -> list[int] | None:
    """The dimensions in ``stem.hdr``, or None when it is not a BART header."""
    try:
        with open(stem.with_suffix(".hdr"), "rb") as f:
            text = f.read(4096)
    except OSError:
        return None
    if not text.startswith(_MAGIC):
        return None
    lines = text.decode("ascii", "replace").splitlines()
    try:
        dims = [int(v) for v in lines[1].split()]
    except (IndexError, ValueError):
        return None
    return dims if dims and all(d >= 1 for d in dims) else None


def read_cfl(path: str | os.PathLike) -> np.ndarray:
    """The complex64 array of ``path`` (``.cfl``, ``.hdr`` or the stem), in BART's
    dimension order (trailing singleton dimensions kept as in the header).

    Raises:
        DataFileError: missing/invalid header, a ``.cfl`` of the wrong size.
    """
    stem = bart_stem(path)
    dims = read_header(stem)
    if dims is None:
        raise DataFileError(f"{stem}.hdr: not a BART header (expected '# Dimensions' and a "
                            "line of sizes)")
    cfl = stem.with_suffix(".cfl")
    need = int(np.prod(dims)) * 8
    have = cfl.stat().st_size if cfl.is_file() else -1
    if have != need:
        raise DataFileError(f"{cfl}: holds {max(have, 0)} bytes, the header's dimensions "
                            f"{dims} need {need}" + (" (missing file)" if have < 0 else ""))
    data = np.fromfile(cfl, dtype="<c8", count=need // 8)
    return data.reshape(dims, order="F")


def write_cfl(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write ``array`` (BART dimension order) as ``stem.hdr`` + ``stem.cfl``, atomically."""
    stem = bart_stem(path)
    a = np.asarray(array, np.complex64)
    dims = list(a.shape) + [1] * max(0, 16 - a.ndim)
    with atomic_output(stem.with_suffix(".hdr")) as tmp:
        Path(tmp).write_text("# Dimensions\n" + " ".join(str(d) for d in dims) + "\n")
    with atomic_output(stem.with_suffix(".cfl")) as tmp:
        a.astype("<c8").ravel(order="F").tofile(tmp)
    return stem.with_suffix(".cfl")


def bart_to_kspace(array: np.ndarray) -> np.ndarray:
    """BART k-space (module doc) -> ``(S, C, H, W)`` complex64 slices."""
    a = np.asarray(array, np.complex64)
    a = a.reshape(a.shape + (1,) * max(0, 16 - a.ndim))
    rest = [d for d in range(a.ndim) if d not in (READ, PHS1, PHS2, COIL)]
    order = rest[::-1] + [PHS2, COIL, READ, PHS1]  # slowest first: extra dims, slice, ...
    t = np.transpose(a, [SLICE] + [d for d in order if d != SLICE])
    t = t.reshape(-1, *t.shape[-4:])              # (S', Z, C, H, W)
    if t.shape[1] > 1:                            # 3-D: partitions become slices
        z = torch.from_numpy(np.ascontiguousarray(t))
        z = torch.fft.fftshift(torch.fft.ifft(torch.fft.ifftshift(z, dim=1), dim=1,
                                              norm="ortho"), dim=1)
        t = z.numpy()
    return np.ascontiguousarray(t.reshape(-1, *t.shape[-3:]))


def kspace_to_bart(kspace: np.ndarray) -> np.ndarray:
    """``(S, C, H, W)`` slices -> BART k-space ``(H, W, 1, C, 1, ..., S)`` (16 dims)."""
    k = np.asarray(kspace, np.complex64)
    s, c, h, w = k.shape
    out = np.zeros((h, w, 1, c) + (1,) * 9 + (s,), np.complex64)
    out[:, :, 0, :, *([0] * 9), :] = np.transpose(k, (2, 3, 1, 0))
    return out
