"""The ``twix`` data source: Siemens raw data (``meas_*.dat``, software VB and VD/VE), read
with ``twixtools``.

Layout (recognised by content, :func:`twix_layout`): a VD/VE file starts with a multi-RAID
header (``hdSize``, ``count`` <= 64, then one 152-byte entry per measurement: id, offset,
length, patient and protocol names); each measurement — and a whole VB file — starts with
the protocol buffers (``hdr_len``, ``n_buffers``, then ``Config``, ``Dicom``, ``Meas``,
``MeasYaps``, ``Phoenix``, ``Spice`` text buffers) followed by the readouts (a measurement
data header, "mdh", per readout or channel).  The reader

* checks that every measurement lies inside the file and ends with ``ACQEND`` (truncated
  files are refused; ``twixtools`` itself would read on past the end);
* takes the image scan (``twixtools``' ``is_image_scan``: no noise, feedback, phase
  correction, navigator or pure reference lines) of the **last** measurement — a multi-RAID
  file stores noise adjustment and adjustments first;
* uses the ``NOISEADJSCAN`` readouts of every measurement for the noise covariance and
  prewhitens (option ``prewhiten``);
* places readouts by their counters (``Lin``, ``Par``, ``Sli``, ``Eco``, ``Rep``, ``Ave``),
  centred on the header's centre line / the mdh ``CenterCol``
  (:func:`~mri_unfold.data.raw_assembly.assemble`), removes the 2x readout oversampling;
* gives FOV and voxel size from ``MeasYaps.sSliceArray`` and the affine from the slice
  position (mdh) and orientation (``twixtools.geometry``).
"""
from __future__ import annotations

import contextlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import UserError
from ..errors import DataFileError
from ..geometry import SliceGeometry, stack_affine
from ..ismrmrd_acquisitions import covariance_of
from ..raw_assembly import Encoding, Readouts, assemble_volumes
from ..raw_samples import RawSlices, slices_from_readouts
from ..scan_attributes import twix_attributes
from ..volume3d import KSpaceVolume, raw_volume
from .raw_open import RAW_OPTIONS, check_raw_options, open_raw
from .registry import DataSource, register_source

__all__ = ["TwixSource", "read_twix", "read_twix_scan", "TwixScan", "twix_layout",
           "read_twix_volumes", "is_3d_twix",
           "readout_geometry"]

_BUFFERS = (b"Config", b"Dicom", b"Meas", b"MeasYaps", b"Phoenix", b"Spice")
_RAID_ENTRY = np.dtype([("meas_id", "<u4"), ("file_id", "<u4"), ("off", "<u8"), ("len", "<u8"),
                        ("patient", "S64"), ("protocol", "S64")])


def _protocol_at(f, offset: int) -> bool:
    """Whether a protocol block (hdr_len, n_buffers, first buffer name) starts at ``offset``."""
    f.seek(offset)
    head = f.read(8 + 16)
    if len(head) < 24:
        return False
    n_buffers = int(np.frombuffer(head[4:8], "<u4")[0])
    return 1 <= n_buffers <= 64 and head[8:].split(b"\x00")[0] in _BUFFERS


def twix_layout(path: Path) -> dict | None:
    """``{"version": "VD/VE"|"VB", "measurements": [(offset, length), ...], "size": bytes}``
    read from the file's first bytes, or None when ``path`` is not a twix file."""
    try:
        path = Path(path)
        if not path.is_file():
            return None
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return None
            first, count = (int(v) for v in np.frombuffer(head, "<u4"))
            if first < 10000 and 1 <= count <= 64:
                table = f.read(count * _RAID_ENTRY.itemsize)
                if len(table) != count * _RAID_ENTRY.itemsize:  # truncated (or not twix)
                    return None
                entries = np.frombuffer(table, _RAID_ENTRY)
                if not _protocol_at(f, int(entries[0]["off"])):
                    return None
                meas = [(int(e["off"]), int(e["len"])) for e in entries]
                return {"version": "VD/VE", "measurements": meas, "size": size}
            if _protocol_at(f, 0):
                return {"version": "VB", "measurements": [(0, size)], "size": size}
    except OSError:
        return None
    return None


def _read_with_twixtools(path: Path, layout: dict) -> list[dict]:
    import twixtools

    for k, (off, length) in enumerate(layout["measurements"]):
        if length == 0 or off + length > layout["size"]:
            raise DataFileError(f"{path}: truncated twix file: measurement {k} needs bytes "
                                f"{off}..{off + length}, the file has {layout['size']}")
    with contextlib.ExitStack() as stack:
        name = str(path)
        if not path.suffix:  # twixtools appends '.dat' to names without a suffix
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "scan.dat"
            os.symlink(path.resolve(), tmp)
            name = str(tmp)
        stack.enter_context(contextlib.redirect_stdout(io.StringIO()))  # its notices
        try:
            scans = twixtools.read_twix(name, verbose=False, parse_pmu=False,
                                        keep_acqend=True, keep_syncdata=False)
        except Exception as e:  # noqa: BLE001 - a corrupt file fails anywhere in the parser
            raise DataFileError(f"{path}: unreadable twix file ({type(e).__name__})") from e
    for k, meas in enumerate(scans):
        mdbs = meas.get("mdb", [])
        if not mdbs or not mdbs[-1].is_flag_set("ACQEND"):
            raise DataFileError(f"{path}: truncated twix file: measurement {k} ends without "
                                "the end-of-acquisition readout (ACQEND)")
    return scans


def _encoding(meas: dict, first) -> tuple[Encoding, tuple, dict]:
    meas_hdr, yaps = meas["hdr"].get("Meas", {}), meas["hdr"].get("MeasYaps", {})
    full = int(meas_hdr.get("iNoOfFourierColumns") or first.mdh.SamplesInScan)
    os_factor = float(meas_hdr.get("flReadoutOSFactor") or 2.0)
    keep = int(round(full / os_factor)) if meas_hdr.get("ucRemoveOversampling", 1) else full
    lines = int(meas_hdr.get("iNoOfFourierLines") or meas_hdr.get("NLinMeas") or 1)
    three_d = int(yaps.get("sKSpace", {}).get("ucDimension", 2)) == 4
    parts = int(meas_hdr.get("NParMeas") or 1) if three_d else 1
    nslc = int(meas_hdr.get("NSlcMeas") or meas_hdr.get("NSlc") or 1)
    enc = Encoding(readout_full=full, readout_keep=keep, lines=lines,
                   center_line=int(first.mdh.CenterLin), partitions=parts,
                   center_partition=int(first.mdh.CenterPar) if three_d else 0,
                   limits={"line": (0, lines - 1), "partition": (0, parts - 1),
                           "slice": (0, nslc - 1)})
    sl = yaps.get("sSliceArray", {}).get("asSlice", [{}])[0]
    fov = (float(sl.get("dReadoutFOV", 0)), float(sl.get("dPhaseFOV", 0)),
           float(sl.get("dThickness", 0)) / parts)
    return enc, (fov if fov[0] > 0 and fov[1] > 0 else None), {"slices_in_header": nslc}


def _readouts(mdbs: list) -> Readouts:
    c = [m.mdh.Counter for m in mdbs]
    col = lambda name: np.array([getattr(x, name) for x in c], np.int64)  # noqa: E731
    return Readouts(data=[np.asarray(m.data) for m in mdbs], line=col("Lin"),
                    partition=col("Par"), slice=col("Sli"), contrast=col("Eco"),
                    repetition=col("Rep"), average=col("Ave"),
                    center_sample=np.array([m.mdh.CenterCol for m in mdbs], np.int64),
                    reverse=np.array([m.is_flag_set("REFLECT") for m in mdbs]),
                    number=np.arange(len(mdbs)))


def _slice_geometries(meas: dict) -> list:
    """``twixtools.geometry`` of every slice of the measurement (empty when the header has no
    slice geometry)."""
    import twixtools.geometry

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return list(twixtools.geometry.Geometry.create_for_all_slices(meas))
    except Exception:  # noqa: BLE001 - a header without slice geometry: no affine
        return []


def readout_geometry(scan: "TwixScan", mdb, partition_offset_mm: float = 0.0):
    """The LPS geometry of one readout (its slice's orientation, the mdh slice position moved
    ``partition_offset_mm`` along the slice normal), or None without slice geometry."""
    if not scan.geometries:
        return None
    sli = int(mdb.mdh.Counter.Sli)
    g = scan.geometries[sli if sli < len(scan.geometries) else 0]
    m = np.asarray(g._prs_to_pcs_mat, np.float64)         # columns: phase, read, slice
    sp = mdb.mdh.SliceData.SlicePos
    pos = np.array([sp.Sag, sp.Cor, sp.Tra], np.float64) + partition_offset_mm * m[:, 2]
    return SliceGeometry.from_arrays(m[:, 1], m[:, 0], m[:, 2], pos)


@dataclass
class TwixScan:
    """What a twix file holds for reconstruction (module doc).

    Attributes:
        layout: :func:`twix_layout` of the file.
        measurement: the last measurement (``twixtools`` dict: ``hdr``, ``mdb``).
        image: its image-scan readouts (``twixtools`` mdb objects), in acquisition order.
        noise: the ``NOISEADJSCAN`` readouts of every measurement, in file order.
        encoding / fov_mm: the encoded matrix and the field of view after oversampling
            removal (None when the header has none).
        geometries: ``twixtools.geometry`` per slice (empty when unknown).
        info: header facts for ``mri-unfold info``.
    """

    layout: dict
    measurement: dict
    image: list
    noise: list
    encoding: Encoding
    fov_mm: tuple | None
    geometries: list
    info: dict


def read_twix_scan(path: str | Path) -> TwixScan:
    """Read a twix file's image scan and noise readouts (module doc).

    Raises:
        DataFileError naming the file: not twix, truncated, no image scan.
    """
    path = Path(path)
    layout = twix_layout(path)
    if layout is None:
        raise DataFileError(f"{path}: not a Siemens twix file")
    scans = _read_with_twixtools(path, layout)
    meas = scans[-1]
    data_mdbs = [m for m in meas["mdb"] if not m.is_flag_set("ACQEND")]
    image = [m for m in data_mdbs if m.is_image_scan()]
    noise = [m for s in scans for m in s["mdb"] if m.is_flag_set("NOISEADJSCAN")]
    if not image:
        raise DataFileError(f"{path}: no image scan in the last measurement "
                            f"({len(data_mdbs)} readouts, {len(noise)} of them noise)")
    enc, fov, hdr_info = _encoding(meas, image[0])
    info = {"format": f"Siemens twix ({layout['version']})", "measurements": len(scans),
            "image_readouts": len(image), "noise_readouts": len(noise), **hdr_info,
            "protocol": meas["hdr"].get("Meas", {}).get("tProtocolName") or None}
    return TwixScan(layout, meas, image, noise, enc, fov, _slice_geometries(meas), info)


def read_twix(path: str | Path, prewhiten: bool = True) -> RawSlices:
    """The image slices of a Siemens twix file (module doc): ``kspace`` ``(C, H, W)``
    complex64, ``H`` readout (oversampling removed), ``W`` phase encoding, centred.  The
    assembly is :func:`~mri_unfold.data.raw_samples.slices_from_readouts`, shared with the
    ISMRMRD reader and the streaming server.

    Raises:
        DataFileError naming the file: not twix, truncated, no image scan, counters outside
        the header's matrix, NaN/Inf samples.
    """
    path = Path(path)
    scan = read_twix_scan(path)
    enc, fov = scan.encoding, scan.fov_mm
    covariance = covariance_of([np.asarray(m.data) for m in scan.noise], str(path))

    def geometry(s: dict):
        offset = (s["partition"] - enc.partitions // 2) * (fov[2] if fov else 0)
        return readout_geometry(scan, scan.image[s["first"]], offset)

    samples = slices_from_readouts(
        _readouts(scan.image), enc, path=path, fov_mm=fov, geometry=geometry,
        extras={"format": "twix", "software": scan.layout["version"],
                "encoded_matrix": (enc.readout_full, enc.lines, enc.partitions)},
        covariance=covariance, prewhiten=prewhiten)
    return RawSlices(samples, {**scan.info, "prewhitened": bool(prewhiten and scan.noise),
                               "trajectory": "cartesian",
                               "scan_attributes": twix_attributes(scan.measurement["hdr"])})


def read_twix_volumes(path: str | Path, prewhiten: bool = True) -> list[KSpaceVolume]:
    """The 3-D volumes (one per slab) of a twix file with a 3-D encoding (``ucDimension`` 4):
    readouts placed by ``Lin``/``Par`` around the header's centre line and partition (any
    ky–kz sampling, partial Fourier zero-filled), readout oversampling removed, the slab's
    ``sKSpace.lImagesPerSlab`` partitions kept after reconstruction (slice oversampling), the
    affine of the slab, prewhitened with the noise readouts.

    Raises:
        DataFileError naming the file: a 2-D encoding, inconsistent encodings between
            readouts, counters outside the header's matrix, NaN/Inf samples.
    """
    path = Path(path)
    scan = read_twix_scan(path)
    enc, fov = scan.encoding, scan.fov_mm
    if enc.partitions < 2:
        raise DataFileError(f"{path}: not a 3-D scan (the protocol encodes 1 partition)")
    vols = assemble_volumes(_readouts(scan.image), enc, str(path))
    x, y, z = enc.readout_keep, enc.lines, enc.partitions
    kspace = scan.measurement["hdr"].get("MeasYaps", {}).get("sKSpace", {})
    images = min(int(kspace.get("lImagesPerSlab") or z), z)   # partitions without oversampling
    if fov is not None:                        # dThickness is the slab without oversampling
        fov = (fov[0], fov[1], fov[2] * z / images)
    extras: dict = {"format": "twix", "software": scan.layout["version"],
                    "encoded_matrix": (enc.readout_full, enc.lines, enc.partitions)}
    cov = covariance_of([np.asarray(m.data) for m in scan.noise], str(path))
    if cov is not None:
        extras["noise_covariance"] = cov
    out = []
    for v in vols:
        geoms = [] if fov is None else [readout_geometry(scan, scan.image[v["first"]],
                                                         (k - z // 2) * fov[2]) for k in range(z)]
        affine = None if not geoms or any(g is None for g in geoms) else stack_affine(
            geoms, (fov[0] / x, fov[1] / y, fov[2]), (x, y))
        out.append(raw_volume(v, path, fov, affine, (x, y, images), extras, prewhiten))
    return out


def is_3d_twix(path: str | Path) -> bool:
    """Whether the last measurement's protocol encodes a 3-D scan (``ucDimension`` 4)."""
    layout = twix_layout(Path(path))
    if layout is None:
        return False
    meas = _read_with_twixtools(Path(path), layout)[-1]
    return int(meas["hdr"].get("MeasYaps", {}).get("sKSpace", {}).get("ucDimension", 2)) == 4


@register_source
class TwixSource(DataSource):
    """Siemens twix raw data (module doc)."""

    kind = "twix"
    yields = "kspace"
    description = "Siemens twix .dat (VB, VD/VE; last measurement's image scan), prewhitened"
    options = {**RAW_OPTIONS, "prewhiten": (bool, True)}

    @classmethod
    def check_options(cls, options: dict, where: str) -> None:
        check_raw_options(options, where)

    @classmethod
    def detect(cls, path: Path) -> bool:
        return twix_layout(path) is not None

    @classmethod
    def read(cls, path, options: dict | None = None) -> RawSlices:
        opts = {k: v for k, (_, v) in cls.options.items()} | (options or {})
        if not Path(path).is_file():
            raise UserError(f"{path}: not a file (give one twix .dat file)")
        return read_twix(path, prewhiten=opts["prewhiten"])

    @classmethod
    def open(cls, path, options: dict, *, seed: int = 0, patch_size=None, max_items: int = 0,
             for_training: bool = True):
        return open_raw(cls, path, options, max_items=max_items, for_training=for_training)
