"""Placing raw readouts into k-space by their encoding counters (ISMRMRD, Siemens twix).

A scanner stores k-space as a list of readouts (one phase-encode line of every coil), each
with counters: phase-encode line (``kspace_encode_step_1`` / twix ``Lin``), partition
(``step_2`` / ``Par``), slice, contrast (echo), repetition, average, and the index of the
k-space centre sample in the readout.  :func:`assemble` turns :class:`Readouts` of the image
scan into one ``(C, H, W)`` k-space per (repetition, contrast, slice, partition):

* line ``l`` goes to column ``l - center_line + lines // 2`` (partial Fourier: the
  unacquired lines stay zero, so the encoded matrix is zero-filled);
* a readout of ``n`` samples with centre sample ``c`` goes to rows ``[full // 2 - c,
  full // 2 - c + n)`` of the full readout (an asymmetric echo is zero-filled);
  reversed readouts (``ACQ_IS_REVERSE`` / twix ``REFLECT``) are flipped first;
* repeated averages are averaged;
* readout oversampling is removed by cropping the centre ``readout_keep`` pixels of the
  readout in image space (centred FFT, :mod:`mri_unfold.fft`);
* 3-D data (``partitions > 1``, fully sampled along the partitions) are transformed along
  the partition axis: each partition becomes one slice; :func:`assemble_volumes` keeps them
  as 3-D k-space instead (any ky–kz sampling, partial Fourier in kz), one volume per slab.

Counters outside the header's encoding limits are a :class:`DataFileError` naming the file,
the acquisition and the counter.  The result is exactly what is stored: no scaling.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..memory import require_memory
from .errors import DataFileError

__all__ = ["Readouts", "Encoding", "assemble", "assemble_volumes", "check_readouts", "COUNTERS"]

#: Counter names, in the order of :class:`Readouts` fields.
COUNTERS = ("line", "partition", "slice", "contrast", "repetition", "average")


@dataclass
class Readouts:
    """``N`` readouts of ``C`` coils.

    Attributes:
        data: ``(N, C, n)`` complex64 samples (all readouts the same length ``n``) — or a
            list of ``(C, n_i)`` arrays when lengths differ.
        line, partition, slice, contrast, repetition, average: ``(N,)`` int counters.
        center_sample: ``(N,)`` int, index of the k-space centre within each readout.
        reverse: ``(N,)`` bool, readout acquired in reverse order.
        number: ``(N,)`` int, the acquisition's index in the file (for error messages).
    """

    data: np.ndarray | list
    line: np.ndarray
    partition: np.ndarray
    slice: np.ndarray
    contrast: np.ndarray
    repetition: np.ndarray
    average: np.ndarray
    center_sample: np.ndarray
    reverse: np.ndarray
    number: np.ndarray

    def __len__(self) -> int:
        return len(self.line)


@dataclass
class Encoding:
    """The encoded k-space matrix (from the file header).

    Attributes:
        readout_full: samples of a full symmetric readout, oversampling included.
        readout_keep: image pixels kept along the readout (``readout_full`` / oversampling).
        lines / center_line: phase-encode matrix size and the centre line's counter.
        partitions / center_partition: the same along the second phase encoding (1 / 0 in 2-D).
        limits: ``{counter: (min, max)}`` the header allows (counters not named are free).
    """

    readout_full: int
    readout_keep: int
    lines: int
    center_line: int
    partitions: int = 1
    center_partition: int = 0
    limits: dict[str, tuple[int, int]] = field(default_factory=dict)


def _centred_dft(t: torch.Tensor, dim: int, inverse: bool) -> torch.Tensor:
    """Orthonormal 1-D DFT along ``dim`` in the centred layout (``ifftshift -> fft ->
    fftshift``, the convention of :mod:`mri_unfold.fft`)."""
    f = torch.fft.ifft if inverse else torch.fft.fft
    return torch.fft.fftshift(f(torch.fft.ifftshift(t, dim=dim), dim=dim, norm="ortho"), dim=dim)


def _check_limits(r: Readouts, enc: Encoding, where: str) -> None:
    for name, (lo, hi) in enc.limits.items():
        values = np.asarray(getattr(r, name))
        bad = np.flatnonzero((values < lo) | (values > hi))
        if bad.size:
            i = bad[0]
            raise DataFileError(
                f"{where}: acquisition {int(r.number[i])} has {name} counter {int(values[i])}, "
                f"outside the header's encoding limits [{lo}, {hi}] ({bad.size} acquisitions "
                "out of range)")


def _placement(r: Readouts, enc: Encoding, where: str):
    col = np.asarray(r.line, np.int64) - enc.center_line + enc.lines // 2
    par = np.asarray(r.partition, np.int64) - enc.center_partition + enc.partitions // 2
    for pos, size, name in ((col, enc.lines, "line"), (par, enc.partitions, "partition")):
        bad = np.flatnonzero((pos < 0) | (pos >= size))
        if bad.size:
            i = bad[0]
            raise DataFileError(
                f"{where}: acquisition {int(r.number[i])} has {name} counter "
                f"{int(getattr(r, name)[i])}, outside the encoded matrix ({size} {name}s)")
    return col, par


def _readout_rows(r: Readouts, i: int, n: int, enc: Encoding, where: str) -> int:
    start = enc.readout_full // 2 - int(r.center_sample[i])
    if start < 0 or start + n > enc.readout_full:
        raise DataFileError(f"{where}: acquisition {int(r.number[i])} has {n} samples centred "
                            f"at {int(r.center_sample[i])}, which do not fit the encoded "
                            f"readout of {enc.readout_full} samples")
    return start


def check_readouts(r: Readouts, enc: Encoding, where: str, placement: bool = True) -> None:
    """The checks :func:`assemble` makes of each readout, on their own (a streaming server
    makes them as each acquisition arrives): counters inside the header's limits and, with
    ``placement`` (Cartesian data), inside the encoded matrix, samples inside the encoded
    readout.

    Raises:
        DataFileError naming ``where`` and the acquisition (``r.number``).
    """
    _check_limits(r, enc, where)
    if not placement:
        return
    _placement(r, enc, where)
    for i in range(len(r)):
        n = (r.data[i] if isinstance(r.data, list) else r.data[i]).shape[-1]
        _readout_rows(r, i, n, enc, where)


def _accumulate(r: Readouts, enc: Encoding, where: str):
    """Readouts placed and averaged: ``(vol (S, C, Z, X, Y), count (S, Z, Y), uniq, kidx)``
    with one entry per (repetition, contrast, slice) in ``uniq`` and ``kidx`` the entry of
    each readout.  The declared size is checked against the memory first."""
    if len(r) == 0:
        raise DataFileError(f"{where}: no image readouts")
    _check_limits(r, enc, where)
    col, par = _placement(r, enc, where)
    rows = [np.asarray(d) for d in r.data] if isinstance(r.data, list) else None
    coils = {d.shape[0] for d in rows} if rows is not None else {r.data.shape[1]}
    if len(coils) != 1:
        raise DataFileError(f"{where}: readouts have different coil counts {sorted(coils)}")
    ncoil = coils.pop()
    keys = np.stack([np.asarray(r.repetition), np.asarray(r.contrast), np.asarray(r.slice)], 1)
    uniq, kidx = np.unique(keys, axis=0, return_inverse=True)
    kidx = kidx.reshape(-1)
    shape = (len(uniq), ncoil, enc.partitions, enc.readout_full, enc.lines)
    require_memory(3 * 8 * float(np.prod(shape, dtype=np.float64)),  # k-space + averages
                   f"{where}: k-space of the encoded matrix {enc.readout_full} x {enc.lines} x "
                   f"{enc.partitions} ({len(uniq)} slices, {ncoil} coils)")
    vol = np.zeros(shape, np.complex64)
    count = np.zeros((len(uniq), enc.partitions, enc.lines), np.int32)
    avg = np.asarray(r.average)
    for a in np.unique(avg):
        sel = np.flatnonzero(avg == a)
        part = np.zeros_like(vol) if len(np.unique(avg)) > 1 else vol
        for i in sel:
            d = rows[i] if rows is not None else r.data[i]
            if r.reverse[i]:
                d = d[:, ::-1]
            start = _readout_rows(r, i, d.shape[-1], enc, where)
            part[kidx[i], :, par[i], start:start + d.shape[-1], col[i]] = d
        seen = np.zeros_like(count)
        seen[kidx[sel], par[sel], col[sel]] = 1
        count += seen
        if part is not vol:
            vol += part
    if len(np.unique(avg)) > 1:
        vol /= np.maximum(count, 1)[:, None, :, None, :].astype(np.float32)
    return vol, count, uniq, kidx


def _remove_oversampling(t: torch.Tensor, enc: Encoding) -> torch.Tensor:
    """``(C, Z, X, Y)`` k-space with the readout cropped to ``readout_keep`` image pixels."""
    if enc.readout_keep >= enc.readout_full:
        return t
    lo = enc.readout_full // 2 - enc.readout_keep // 2
    img = _centred_dft(t, 2, inverse=True)[:, :, lo:lo + enc.readout_keep]
    return _centred_dft(img, 2, inverse=False)


def assemble(r: Readouts, enc: Encoding, where: str) -> list[dict]:
    """Place readouts into k-space (module doc).

    Args:
        r: the image scan's readouts.
        enc: the encoded matrix.
        where: the file name, for error messages.
    Returns:
        One dict per image slice, ordered by (repetition, contrast, slice, partition):
        ``kspace`` ``(C, readout_keep, lines)`` complex64 numpy, ``slice``, ``contrast``,
        ``repetition``, ``partition`` (the counters), ``first`` (index into ``r`` of a
        readout of that slice, for its geometry).
    Raises:
        DataFileError: counters outside the limits or the matrix; readouts of different
            coil counts; 3-D data undersampled along the partitions.
    """
    vol, count, uniq, kidx = _accumulate(r, enc, where)
    if enc.partitions > 1:
        acquired = count > 0
        if not bool((acquired == acquired.any(axis=1, keepdims=True)).all()):
            raise DataFileError(f"{where}: 3-D k-space undersampled along the partitions is "
                                "not supported (each partition must have the same lines)")
    out = []
    for k, (rep, con, sl) in enumerate(uniq):
        t = _remove_oversampling(torch.from_numpy(vol[k]), enc)       # (C, Z, X, Y)
        if enc.partitions > 1:
            t = _centred_dft(t, 1, inverse=True)
        first = int(np.flatnonzero(kidx == k)[0])
        for z in range(enc.partitions):
            out.append({"kspace": t[:, z].contiguous().numpy().astype(np.complex64, copy=False),
                        "repetition": int(rep), "contrast": int(con), "slice": int(sl),
                        "partition": z, "first": first})
    return out


def assemble_volumes(r: Readouts, enc: Encoding, where: str) -> list[dict]:
    """Place the readouts of a 3-D scan into 3-D k-space, one volume per (repetition,
    contrast, slice — a slab): undersampling and partial Fourier along the partitions stay
    as zeros (the ky–kz mask), the readout oversampling is removed.

    Returns:
        One dict per volume, ordered by (repetition, contrast, slice): ``kspace``
        ``(C, readout_keep, lines, partitions)`` complex64 numpy (readout, ky, kz),
        ``repetition``, ``contrast``, ``slice``, ``first`` (a readout of that volume).
    Raises:
        DataFileError: as :func:`assemble`; inconsistent encodings between acquisitions
            (readouts of different lengths or k-space centres).
    """
    lengths = {np.asarray(d).shape[-1] for d in r.data} if isinstance(r.data, list) else         {r.data.shape[-1]}
    centres = set(np.asarray(r.center_sample).tolist())
    if len(lengths) > 1 or len(centres) > 1:
        raise DataFileError(f"{where}: inconsistent encodings between acquisitions: readouts "
                            f"of {len(lengths)} lengths {sorted(lengths)[:4]} and "
                            f"{len(centres)} k-space centre samples {sorted(centres)[:4]}; a "
                            "3-D scan needs one readout encoding")
    vol, _, uniq, kidx = _accumulate(r, enc, where)
    out = []
    for k, (rep, con, sl) in enumerate(uniq):
        t = _remove_oversampling(torch.from_numpy(vol[k]), enc)       # (C, Z, X, Y)
        out.append({"kspace": t.permute(0, 2, 3, 1).contiguous().numpy(),
                    "repetition": int(rep), "contrast": int(con), "slice": int(sl),
                    "first": int(np.flatnonzero(kidx == k)[0])})
    return out
