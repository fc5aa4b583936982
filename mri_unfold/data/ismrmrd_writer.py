"""Writing Cartesian :class:`~mri_unfold.data.KSpaceSample` slices as an ISMRMRD/MRD file.

The file is what a scanner converter (siemens_to_ismrmrd) would write for the same data:
an XML header (:mod:`ismrmrd.xsd` schema) with one encoding — encoded matrix ``H x W x 1``
(readout, phase encoding, no oversampling), the slices' field of view, the recon matrix
(``crop_size``), encoding limits — and one acquisition per sampled phase-encode line and
slice: ``(C, H)`` samples centred at ``H // 2``, counters ``kspace_encode_step_1 = column``
and ``slice = slice index``, and the slice position and directions in LPS from the
samples' ``extras["affine"]`` (the inverse of :func:`mri_unfold.data.geometry.stack_affine`).

Reading the file back with the ``ismrmrd`` source gives the same k-space (bit for bit),
mask, FOV and affine (to float32 precision): the round trip of ``docs/raw_data.md``.
Written atomically (:func:`mri_unfold.atomic.atomic_output`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np

from ..atomic import atomic_output
from ..errors import UserError
from .geometry import LPS_TO_RAS
from .ismrmrd_acquisitions import Acquisitions
from .samples import KSpaceSample

__all__ = ["write_ismrmrd", "write_acquisitions"]

_FIRST_IN_SLICE, _LAST_IN_SLICE, _LAST_IN_MEASUREMENT = 7, 8, 25


def _header_xml(samples: Sequence[KSpaceSample]) -> str:
    from ismrmrd import xsd

    s0 = samples[0]
    c, h, w = (int(v) for v in s0.kspace.shape)
    fov = s0.metadata.fov_mm or (float(h), float(w), 1.0)
    fov3 = (float(fov[0]), float(fov[1]), float(fov[2]) if len(fov) > 2 else 1.0)
    crop = s0.crop
    space = lambda m, f: xsd.encodingSpaceType(  # noqa: E731
        matrixSize=xsd.matrixSizeType(x=m[0], y=m[1], z=1),
        fieldOfView_mm=xsd.fieldOfViewMm(x=f[0], y=f[1], z=f[2]))
    limit = lambda n: xsd.limitType(minimum=0, maximum=n - 1, center=n // 2)  # noqa: E731
    zero = xsd.limitType(minimum=0, maximum=0, center=0)
    enc = xsd.encodingType(
        encodedSpace=space((h, w), fov3),
        reconSpace=space(crop, (fov3[0] * crop[0] / h, fov3[1] * crop[1] / w, fov3[2])),
        encodingLimits=xsd.encodingLimitsType(
            kspace_encoding_step_0=limit(h), kspace_encoding_step_1=limit(w),
            kspace_encoding_step_2=zero, slice=limit(len(samples)), contrast=zero,
            repetition=zero, average=zero, phase=zero, set=zero, segment=zero),
        trajectory=xsd.trajectoryType.CARTESIAN)
    return header_with(enc, c)


def header_with(encoding, coils: int) -> str:
    """The XML of an ISMRMRD header with one ``encoding`` and ``coils`` receive channels."""
    from ismrmrd import xsd

    hdr = xsd.ismrmrdHeader(
        encoding=[encoding],
        experimentalConditions=xsd.experimentalConditionsType(H1resonanceFrequency_Hz=0),
        acquisitionSystemInformation=xsd.acquisitionSystemInformationType(
            receiverChannels=coils))
    return xsd.ToXML(hdr)


def _slice_geometry(sample: KSpaceSample, k: int):
    """LPS (read_dir, phase_dir, slice_dir, position) of slice ``k`` from the affine, or
    zeros when the sample has none."""
    affine = sample.metadata.extras.get("affine")
    if affine is None:
        return (np.zeros(3),) * 4
    a = np.asarray(affine, np.float64)
    h, w = sample.kspace.shape[-2:]
    cols = [LPS_TO_RAS @ a[:3, i] for i in range(3)]
    unit = [v / max(np.linalg.norm(v), 1e-12) for v in cols]
    pos = LPS_TO_RAS @ (a[:3, :3] @ np.array([h // 2, w // 2, k]) + a[:3, 3])
    return unit[0], unit[1], unit[2], pos


def write_ismrmrd(samples: Sequence[KSpaceSample], out: str | os.PathLike) -> Path:
    """Write the slices (module doc) to ``out`` (group ``/dataset``).

    Args:
        samples: Cartesian slices of one size (``kspace`` ``(C, H, W)``, ``mask``).
        out: the ``.h5`` file to write.
    Raises:
        UserError: no samples, non-Cartesian samples, slices of different shapes.
    """
    from ismrmrd.hdf5 import acquisition_dtype

    if not samples:
        raise UserError(f"{out}: nothing to write (no slices)")
    shapes = {tuple(s.kspace.shape) for s in samples}
    if len(shapes) != 1 or not all(s.is_cartesian for s in samples):
        raise UserError(f"{out}: ISMRMRD writing needs Cartesian slices of one shape, got "
                        f"{sorted(shapes)}")
    c, h, w = shapes.pop()
    lines = [(k, np.flatnonzero(s.mask.detach().cpu().numpy().reshape(h, w).any(axis=0)))
             for k, s in enumerate(samples)]
    table = np.zeros(sum(len(cols) for _, cols in lines), acquisition_dtype)
    hd = table["head"]
    hd["version"], hd["scan_counter"] = 1, np.arange(len(table))
    hd["number_of_samples"], hd["active_channels"], hd["available_channels"] = h, c, c
    hd["center_sample"] = h // 2
    hd["channel_mask"][:, 0] = np.uint64((1 << c) - 1) if c < 64 else ~np.uint64(0)
    n = 0
    for (k, cols), s in zip(lines, samples):
        kspace = s.kspace.detach().cpu().numpy().astype(np.complex64)
        sel = slice(n, n + len(cols))
        hd["read_dir"][sel], hd["phase_dir"][sel], hd["slice_dir"][sel], hd["position"][sel] = \
            _slice_geometry(s, k)
        hd["idx"]["kspace_encode_step_1"][sel], hd["idx"]["slice"][sel] = cols, k
        if len(cols):
            hd["flags"][n] |= np.uint64(1 << (_FIRST_IN_SLICE - 1))
            hd["flags"][n + len(cols) - 1] |= np.uint64(1 << (_LAST_IN_SLICE - 1))
        for i, j in enumerate(cols):
            table["traj"][n + i] = np.zeros(0, np.float32)
            table["data"][n + i] = np.ascontiguousarray(kspace[:, :, j]).view(np.float32).ravel()
        n += len(cols)
    hd["flags"][-1] |= np.uint64(1 << (_LAST_IN_MEASUREMENT - 1))
    return _write_table(out, _header_xml(samples), table)


def _write_table(out, xml: str | bytes, table: np.ndarray) -> Path:
    with atomic_output(out) as tmp:
        with h5py.File(tmp, "w") as f:
            g = f.create_group("dataset")
            x = g.create_dataset("xml", shape=(1,), dtype=h5py.special_dtype(vlen=bytes))
            x[0] = xml.encode() if isinstance(xml, str) else bytes(xml)
            g.create_dataset("data", data=table, maxshape=(None,), chunks=True)
    return Path(out)


def write_acquisitions(xml: str | bytes, acqs: Acquisitions, out: str | os.PathLike) -> Path:
    """Write an XML header and acquisition records (e.g. a twix file converted by
    :func:`mri_unfold.data.twix_to_ismrmrd.twix_to_ismrmrd`, or the acquisitions a streaming
    server received) as an ISMRMRD file (group ``/dataset``), atomically.  Each header's
    ``number_of_samples`` and ``active_channels`` are set from its samples ``(C, n)``, and
    ``trajectory_dimensions`` from a 2-D trajectory ``(n, d)``.

    Raises:
        UserError: no acquisitions.
    """
    from ismrmrd.hdf5 import acquisition_dtype

    if len(acqs) == 0:
        raise UserError(f"{out}: nothing to write (no acquisitions)")
    table = np.zeros(len(acqs), acquisition_dtype)
    for name in acqs.head.dtype.names:
        table["head"][name] = acqs.head[name]
    head = table["head"]
    for i, (d, t) in enumerate(zip(acqs.data, acqs.traj)):
        d, t = np.asarray(d), np.asarray(t, np.float32)
        head["active_channels"][i], head["number_of_samples"][i] = d.shape
        head["available_channels"][i] = max(int(head["available_channels"][i]), d.shape[0])
        if t.ndim == 2:
            head["trajectory_dimensions"][i] = t.shape[1]
        table["data"][i] = np.ascontiguousarray(d, np.complex64).view(np.float32).ravel()
        table["traj"][i] = t.ravel()
    return _write_table(out, xml, table)
