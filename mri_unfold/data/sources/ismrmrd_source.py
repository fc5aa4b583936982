"""The ``ismrmrd`` data source: ISMRMRD / MRD raw data (``.h5``), read with the ``ismrmrd``
package's header schema and record layout.

An ISMRMRD file is an HDF5 group (``/dataset`` by default) holding the XML header ``xml``
and the acquisitions ``data`` (one record per readout: header, trajectory, samples).  The
reader

* parses the header (:func:`ismrmrd.xsd.CreateFromDocument`): encoded and recon matrix and
  field of view, encoding limits, trajectory type;
* reads all acquisition records in one HDF5 call, sorts them by flags: noise
  (``ACQ_IS_NOISE_MEASUREMENT``) -> the noise covariance; calibration only
  (``ACQ_IS_PARALLEL_CALIBRATION``), navigators, phase correction, feedback, dummy scans
  and acquisitions of other encoding spaces are skipped; the rest is the image scan;
* Cartesian: places readouts by their counters (:func:`~mri_unfold.data.raw_assembly.assemble`:
  partial Fourier / asymmetric echo zero-filled to the encoded matrix, oversampling removed
  to the recon field of view, averages averaged, slices, contrasts and repetitions as
  separate slices), checks counters against the header's encoding limits;
* non-Cartesian (radial, spiral, ...): keeps each slice's samples ``(C, K)`` with the stored
  trajectory ``(K, 2)`` (units as stored), image size = the encoded matrix;
* prewhitens with the noise covariance when the file has noise scans (option
  ``prewhiten``, default on; :class:`~mri_unfold.data.prewhiten.Prewhiten`).

Slices carry the header's FOV, voxel size, recon matrix (``crop_size``) and a NIfTI affine
from the acquisitions' position and directions (:mod:`mri_unfold.data.geometry`).  The steps
after reading live in :mod:`mri_unfold.data.ismrmrd_acquisitions`, shared with the streaming
server (:mod:`mri_unfold.serving`), which receives the same records over a socket.
:func:`read_ismrmrd_volumes` reads a 3-D encoding (``kspace_encode_step_2``) as whole
volumes for 3-D reconstruction (:mod:`mri_unfold.data.volume3d`).
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from ...errors import UserError
from ..errors import DataFileError
from ..geometry import stack_affine
from ..ismrmrd_acquisitions import (FLAGS, Acquisitions, ScanEncoding, classify, covariance_of,
                                    image_slices, parse_header, readouts_of, slice_geometry)
from ..raw_assembly import assemble_volumes
from ..raw_samples import RawSlices
from ..scan_attributes import ismrmrd_attributes
from ..volume3d import KSpaceVolume, raw_volume
from .raw_open import RAW_OPTIONS, check_raw_options, open_raw
from .registry import DataSource, register_source

__all__ = ["IsmrmrdSource", "read_ismrmrd", "read_acquisitions", "ismrmrd_group", "FLAGS",
           "read_ismrmrd_volumes", "is_3d_ismrmrd"]


def ismrmrd_group(path: Path) -> str | None:
    """The name of the HDF5 group holding ISMRMRD acquisitions (a ``data`` dataset of
    records with a ``head`` field), or None when ``path`` is not such a file."""
    try:
        if not Path(path).is_file() or not h5py.is_hdf5(path):
            return None
        with h5py.File(path, "r") as f:
            for name, item in f.items():
                d = item.get("data") if isinstance(item, h5py.Group) else None
                if isinstance(d, h5py.Dataset) and d.dtype.names and "head" in d.dtype.names:
                    return name
    except OSError:
        return None
    return None


def _xml(path: Path, group: h5py.Group) -> bytes:
    if "xml" not in group:
        raise DataFileError(f"{path}: ISMRMRD file without an XML header (no "
                            f"'{group.name}/xml' dataset)")
    xml = group["xml"][0]
    return xml.encode() if isinstance(xml, str) else bytes(xml)


def _records(path: Path, group: h5py.Group) -> Acquisitions:
    recs = group["data"][()]
    head = recs["head"]
    data = []
    for i, (h, d) in enumerate(zip(head, recs["data"])):
        c, n = int(h["active_channels"]), int(h["number_of_samples"])
        if d.size != 2 * c * n:
            raise DataFileError(f"{path}: acquisition {i} holds {d.size // 2} samples, its "
                                f"header says {c} channels x {n}")
        data.append(np.asarray(d, np.float32).view(np.complex64).reshape(c, n))
    return Acquisitions(head, data, list(recs["traj"]))


def read_acquisitions(path: str | Path) -> tuple[str, bytes, Acquisitions]:
    """``(group name, XML header bytes, acquisitions)`` of an ISMRMRD file, as stored.

    Raises:
        DataFileError naming the file: not ISMRMRD, no XML header, inconsistent records.
    """
    path = Path(path)
    name = ismrmrd_group(path)
    if name is None:
        raise DataFileError(f"{path}: not an ISMRMRD file (no HDF5 group with acquisition "
                            "records)")
    with h5py.File(path, "r") as f:
        return name, _xml(path, f[name]), _records(path, f[name])


def read_ismrmrd(path: str | Path, prewhiten: bool = True) -> RawSlices:
    """The slices of an ISMRMRD file (module doc) as :class:`~mri_unfold.data.KSpaceSample`
    items: ``kspace`` ``(C, H, W)`` complex64 (``H`` readout after oversampling removal,
    ``W`` phase encoding), ``mask`` measured from the data; non-Cartesian ``(C, K)`` with
    ``trajectory`` ``(K, 2)``.  The assembly is
    :func:`~mri_unfold.data.ismrmrd_acquisitions.image_slices`, shared with the streaming
    server.

    Raises:
        DataFileError naming the file: no/invalid XML header, no image acquisitions,
        counters outside the encoding limits, inconsistent records, NaN/Inf samples.
    """
    path = Path(path)
    name, xml, acqs = read_acquisitions(path)
    hdr = parse_header(xml, str(path))
    scan = ScanEncoding.from_header(hdr, str(path))
    noise, image, skipped = classify(acqs.head)
    if image.size == 0:
        raise DataFileError(f"{path}: no image acquisitions ({len(acqs)} records: "
                            f"{noise.size} noise, {skipped} calibration/navigator/other)")
    enc = scan.encoding
    extras: dict = {"format": "ismrmrd", "encoded_matrix": (enc.readout_full, enc.lines,
                                                            enc.partitions)}
    samples = image_slices(acqs, image, scan, path=path, extras=extras,
                           covariance=covariance_of([acqs.data[i] for i in noise], str(path)),
                           prewhiten=prewhiten)
    systems = hdr.acquisitionSystemInformation
    return RawSlices(samples, {
        "format": "ISMRMRD", "group": name, "acquisitions": int(len(acqs)),
        "noise_acquisitions": int(noise.size), "skipped_acquisitions": skipped,
        "trajectory": scan.trajectory, "vendor": getattr(systems, "systemVendor", None),
        "prewhitened": bool(prewhiten and noise.size),
        "scan_attributes": ismrmrd_attributes(hdr)})


def is_3d_ismrmrd(path: str | Path) -> bool:
    """Whether the file's first encoding is 3-D (an encoded matrix with ``z > 1``); reads the
    XML header only."""
    path = Path(path)
    name = ismrmrd_group(path)
    if name is None:
        return False
    with h5py.File(path, "r") as f:
        hdr = parse_header(_xml(path, f[name]), str(path))
    return int(hdr.encoding[0].encodedSpace.matrixSize.z or 1) > 1


def read_ismrmrd_volumes(path: str | Path, prewhiten: bool = True) -> list[KSpaceVolume]:
    """The 3-D Cartesian volumes (one per slab) of an ISMRMRD file with a 3-D encoding:
    k-space ``(C, X, Y, Z)`` placed by ``kspace_encode_step_1``/``_2`` (any ky–kz sampling,
    partial Fourier zero-filled), readout oversampling removed, the recon matrix's
    ``(x, y, z)`` kept after reconstruction (oversampling along ``ky``/``kz``), the affine of
    the volume, prewhitened with the noise scans.

    Raises:
        DataFileError naming the file: a 2-D or non-Cartesian encoding, inconsistent
            encodings between acquisitions, counters outside the encoded matrix, a readout
            that is not fully sampled, NaN/Inf samples.
    """
    path = Path(path)
    _, xml, acqs = read_acquisitions(path)
    hdr = parse_header(xml, str(path))
    scan = ScanEncoding.from_header(hdr, str(path))
    enc, fov = scan.encoding, scan.fov_mm
    if scan.trajectory != "cartesian" or enc.partitions < 2:
        raise DataFileError(f"{path}: not a 3-D Cartesian scan (trajectory {scan.trajectory}, "
                            f"{enc.partitions} partition(s))")
    noise, image, skipped = classify(acqs.head)
    if image.size == 0:
        raise DataFileError(f"{path}: no image acquisitions ({len(acqs)} records: "
                            f"{noise.size} noise, {skipped} calibration/navigator/other)")
    extras: dict = {"format": "ismrmrd", "encoded_matrix": (enc.readout_full, enc.lines,
                                                            enc.partitions)}
    cov = covariance_of([acqs.data[i] for i in noise], str(path))
    if cov is not None:
        extras["noise_covariance"] = cov
    vols = assemble_volumes(readouts_of(acqs, image), enc, str(path))
    x, y, z = enc.readout_keep, enc.lines, enc.partitions
    rz = max(int(hdr.encoding[0].reconSpace.matrixSize.z or z), 1)
    recon = (min(scan.recon_matrix[0], x), min(scan.recon_matrix[1], y), min(rz, z))
    out = []
    for v in vols:
        h = acqs.head[image[v["first"]]]
        affine = None
        if fov is not None:
            geoms = [slice_geometry(h, (k - z // 2) * fov[2]) for k in range(z)]
            affine = stack_affine(geoms, (fov[0] / x, fov[1] / y, fov[2]), (x, y))
        out.append(raw_volume(v, path, fov, affine, recon, extras, prewhiten))
    return out


@register_source
class IsmrmrdSource(DataSource):
    """ISMRMRD/MRD raw data (module doc)."""

    kind = "ismrmrd"
    yields = "kspace"
    description = "ISMRMRD/MRD raw data (.h5): acquisitions placed by counters, prewhitened"
    options = {**RAW_OPTIONS, "prewhiten": (bool, True)}
    choices = {}

    @classmethod
    def check_options(cls, options: dict, where: str) -> None:
        check_raw_options(options, where)

    @classmethod
    def detect(cls, path: Path) -> bool:
        return ismrmrd_group(path) is not None

    @classmethod
    def read(cls, path, options: dict | None = None) -> RawSlices:
        opts = {k: v for k, (_, v) in cls.options.items()} | (options or {})
        if not Path(path).is_file():
            raise UserError(f"{path}: not a file (give one ISMRMRD .h5 file)")
        return read_ismrmrd(path, prewhiten=opts["prewhiten"])

    @classmethod
    def open(cls, path, options: dict, *, seed: int = 0, patch_size=None, max_items: int = 0,
             for_training: bool = True):
        return open_raw(cls, path, options, max_items=max_items, for_training=for_training)
