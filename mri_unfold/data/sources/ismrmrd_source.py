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
from the acquisitions' position and directions (:mod:`mri_unfold.data.geometry`).
:func:`read_ismrmrd_volumes` reads a 3-D encoding (``kspace_encode_step_2``) as whole
volumes for 3-D reconstruction (:mod:`mri_unfold.data.volume3d`).
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import torch

from ...errors import UserError
from ..errors import DataFileError
from ..geometry import SliceGeometry, stack_affine
from ..prewhiten import Prewhiten, noise_covariance
from ..raw_assembly import Encoding, Readouts, assemble, assemble_volumes
from ..raw_samples import RawSlices, check_finite, raw_metadata, raw_sample
from ..scan_attributes import ismrmrd_attributes
from ..samples import KSpaceSample
from ..volume3d import KSpaceVolume, raw_volume
from .raw_open import RAW_OPTIONS, check_raw_options, open_raw
from .registry import DataSource, register_source

__all__ = ["IsmrmrdSource", "read_ismrmrd", "read_ismrmrd_volumes", "is_3d_ismrmrd",
           "ismrmrd_group", "FLAGS"]

#: ISMRMRD acquisition flag bits (1-based, as in the ISMRMRD standard).
FLAGS = {"noise": 19, "calibration": 20, "calibration_and_imaging": 21, "reverse": 22,
         "navigation": 23, "phasecorr": 24, "hpfeedback": 26, "dummyscan": 27,
         "rtfeedback": 28, "surfacecoilcorrection": 29, "phase_stabilization_reference": 30,
         "phase_stabilization": 31}
_SKIPPED = ("calibration", "navigation", "phasecorr", "hpfeedback", "dummyscan", "rtfeedback",
            "surfacecoilcorrection", "phase_stabilization_reference", "phase_stabilization")
#: Header encoding-limit names -> Readouts counters.
_LIMITS = {"kspace_encoding_step_1": "line", "kspace_encoding_step_2": "partition",
           "slice": "slice", "contrast": "contrast", "repetition": "repetition",
           "average": "average"}


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


def _flag(flags: np.ndarray, name: str) -> np.ndarray:
    return (flags >> np.uint64(FLAGS[name] - 1)) & np.uint64(1) == 1


def _header(path: Path, group: h5py.Group):
    import ismrmrd.xsd

    if "xml" not in group:
        raise DataFileError(f"{path}: ISMRMRD file without an XML header (no "
                            f"'{group.name}/xml' dataset)")
    xml = group["xml"][0]
    try:
        hdr = ismrmrd.xsd.CreateFromDocument(xml if isinstance(xml, (bytes, str)) else bytes(xml))
    except Exception as e:  # noqa: BLE001 - xsdata raises many types for malformed XML
        raise DataFileError(f"{path}: the ISMRMRD XML header is not valid "
                            f"({type(e).__name__})") from e
    if not hdr.encoding:
        raise DataFileError(f"{path}: the ISMRMRD header has no <encoding>")
    return hdr


def _encoding(hdr, path: Path) -> tuple[Encoding, tuple, tuple, str]:
    """(Encoding, fov after oversampling removal (3,), recon matrix (x, y, z), trajectory)."""
    e = hdr.encoding[0]
    em, ef = e.encodedSpace.matrixSize, e.encodedSpace.fieldOfView_mm
    rm, rf = e.reconSpace.matrixSize, e.reconSpace.fieldOfView_mm
    if min(em.x, em.y) < 1:
        raise DataFileError(f"{path}: the ISMRMRD header's encoded matrix {em.x}x{em.y} is empty")
    keep = int(round(em.x * rf.x / ef.x)) if ef.x > 0 else em.x
    keep = keep if 0 < keep <= em.x else em.x
    lim = e.encodingLimits
    limits = {}
    for hname, counter in _LIMITS.items():
        l = getattr(lim, hname, None)
        if l is not None:
            limits[counter] = (int(l.minimum), int(l.maximum))
    center = lambda l, n: int(l.center) if l is not None else n // 2  # noqa: E731
    nz = max(int(em.z), 1)
    enc = Encoding(readout_full=int(em.x), readout_keep=keep, lines=int(em.y),
                   center_line=center(lim.kspace_encoding_step_1, em.y), partitions=nz,
                   center_partition=center(lim.kspace_encoding_step_2, nz) if nz > 1 else 0,
                   limits=limits)
    fov = (ef.x * keep / em.x, ef.y, ef.z / nz)
    return enc, fov, (int(rm.x), int(rm.y), max(int(rm.z), 1)), e.trajectory.value


def _records(path: Path, group: h5py.Group):
    recs = group["data"][()]
    head = recs["head"]
    out = []
    for i, (h, d) in enumerate(zip(head, recs["data"])):
        c, n = int(h["active_channels"]), int(h["number_of_samples"])
        if d.size != 2 * c * n:
            raise DataFileError(f"{path}: acquisition {i} holds {d.size // 2} samples, its "
                                f"header says {c} channels x {n}")
        out.append(np.asarray(d, np.float32).view(np.complex64).reshape(c, n))
    return head, out, recs["traj"]


def _readouts(head, data, sel) -> Readouts:
    idx = head["idx"][sel]
    return Readouts(
        data=[data[i] for i in sel], line=idx["kspace_encode_step_1"].astype(np.int64),
        partition=idx["kspace_encode_step_2"].astype(np.int64),
        slice=idx["slice"].astype(np.int64), contrast=idx["contrast"].astype(np.int64),
        repetition=idx["repetition"].astype(np.int64), average=idx["average"].astype(np.int64),
        center_sample=head["center_sample"][sel].astype(np.int64),
        reverse=_flag(head["flags"][sel], "reverse"), number=np.asarray(sel))


def _geometry(h, partition_offset_mm: float = 0.0) -> SliceGeometry:
    pos = np.asarray(h["position"], np.float64) + partition_offset_mm * np.asarray(h["slice_dir"])
    return SliceGeometry.from_arrays(h["read_dir"], h["phase_dir"], h["slice_dir"], pos)


def _cartesian(path, head, data, image, enc, fov, recon, extras) -> list:
    r = _readouts(head, data, image)
    slices = assemble(r, enc, str(path))
    geoms = [_geometry(head[image[s["first"]]],
                       (s["partition"] - enc.partitions // 2) * fov[2]) for s in slices]
    matrix = (enc.readout_keep, enc.lines)
    group = [g for g, s in zip(geoms, slices)
             if (s["repetition"], s["contrast"]) == (slices[0]["repetition"], slices[0]["contrast"])]
    affine = stack_affine(group, (fov[0] / matrix[0], fov[1] / matrix[1], fov[2]), matrix)
    out = []
    for k, s in enumerate(slices):
        ex = {**extras, **{c: s[c] for c in ("repetition", "contrast", "partition")},
              "slice_counter": s["slice"]}
        if affine is not None:
            ex["affine"] = affine
        out.append(raw_sample(s["kspace"], path=path, index=k, fov_mm=fov, crop_size=recon,
                              extras=ex))
    return out


def _noncartesian(path, head, data, traj, image, enc, fov, trajectory, extras) -> list:
    out = []
    sl = head["idx"]["slice"][image]
    for k, s in enumerate(np.unique(sl)):
        sel = image[sl == s]
        dims = int(head["trajectory_dimensions"][sel[0]])
        if dims < 2:
            raise DataFileError(f"{path}: {trajectory} acquisitions without a stored trajectory")
        ks = np.concatenate([data[i] for i in sel], axis=1)
        tr = np.concatenate([np.asarray(traj[i], np.float32).reshape(-1, dims) for i in sel])
        check_finite(ks, f"{path} slice {k}")
        shape = (enc.readout_full, enc.lines)
        meta = raw_metadata(path, k, shape, fov_mm=fov, trajectory=trajectory,
                            extras={**extras, "trajectory_units": "as stored in the file"})
        out.append(KSpaceSample(
            kspace=torch.from_numpy(ks), mask=torch.ones(ks.shape[1]), target=None,
            coil_maps=None, metadata=meta, trajectory=torch.from_numpy(tr[:, :2].copy()),
            dcf=torch.from_numpy(tr[:, 2].copy()) if dims == 3 and enc.partitions == 1 else None,
            image_shape=shape))
    return out


def _parse(path: Path) -> dict:
    """Header, records, encoding, noise and the image acquisitions of an ISMRMRD file."""
    name = ismrmrd_group(path)
    if name is None:
        raise DataFileError(f"{path}: not an ISMRMRD file (no HDF5 group with acquisition "
                            "records)")
    with h5py.File(path, "r") as f:
        hdr = _header(path, f[name])
        head, data, traj = _records(path, f[name])
    enc, fov, recon, trajectory = _encoding(hdr, path)
    flags = head["flags"]
    noise = np.flatnonzero(_flag(flags, "noise"))
    skip = np.zeros(len(head), bool)
    for s in _SKIPPED:
        skip |= _flag(flags, s) & ~_flag(flags, "calibration_and_imaging")
    skip |= head["encoding_space_ref"] != 0
    image = np.flatnonzero(~skip & ~_flag(flags, "noise"))
    if image.size == 0:
        raise DataFileError(f"{path}: no image acquisitions ({len(head)} records: "
                            f"{noise.size} noise, {int(skip.sum())} calibration/navigator/other)")
    extras: dict = {"format": "ismrmrd", "encoded_matrix": (enc.readout_full, enc.lines,
                                                            enc.partitions)}
    if noise.size:
        n = np.concatenate([data[i] for i in noise], axis=1)
        check_finite(n, f"{path} noise scans")
        extras["noise_covariance"] = noise_covariance(n)
    return {"name": name, "hdr": hdr, "head": head, "data": data, "traj": traj, "enc": enc,
            "fov": fov, "recon": recon, "trajectory": trajectory, "noise": noise, "skip": skip,
            "image": image, "extras": extras}


def read_ismrmrd(path: str | Path, prewhiten: bool = True) -> RawSlices:
    """The slices of an ISMRMRD file (module doc) as :class:`~mri_unfold.data.KSpaceSample`
    items: ``kspace`` ``(C, H, W)`` complex64 (``H`` readout after oversampling removal,
    ``W`` phase encoding), ``mask`` measured from the data; non-Cartesian ``(C, K)`` with
    ``trajectory`` ``(K, 2)``.

    Raises:
        DataFileError naming the file: no/invalid XML header, no image acquisitions,
        counters outside the encoding limits, inconsistent records, NaN/Inf samples.
    """
    path = Path(path)
    p = _parse(path)
    name, hdr, head, data, traj = p["name"], p["hdr"], p["head"], p["data"], p["traj"]
    enc, fov, recon, trajectory = p["enc"], p["fov"], p["recon"][:2], p["trajectory"]
    noise, skip, image, extras = p["noise"], p["skip"], p["image"], p["extras"]
    if trajectory == "cartesian":
        samples = _cartesian(path, head, data, image, enc, fov, recon, extras)
    else:
        samples = _noncartesian(path, head, data, traj, image, enc, fov, trajectory, extras)
    if prewhiten and noise.size:
        white = Prewhiten()
        samples = [white(s) for s in samples]
    systems = hdr.acquisitionSystemInformation
    return RawSlices(samples, {
        "format": "ISMRMRD", "group": name, "acquisitions": int(len(head)),
        "noise_acquisitions": int(noise.size), "skipped_acquisitions": int(skip.sum()),
        "trajectory": trajectory, "vendor": getattr(systems, "systemVendor", None),
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
        hdr = _header(path, f[name])
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
    p = _parse(path)
    enc, fov, trajectory, head = p["enc"], p["fov"], p["trajectory"], p["head"]
    if trajectory != "cartesian" or enc.partitions < 2:
        raise DataFileError(f"{path}: not a 3-D Cartesian scan (trajectory {trajectory}, "
                            f"{enc.partitions} partition(s))")
    vols = assemble_volumes(_readouts(head, p["data"], p["image"]), enc, str(path))
    x, y, z = enc.readout_keep, enc.lines, enc.partitions
    out = []
    for v in vols:
        h = head[p["image"][v["first"]]]
        geoms = [_geometry(h, (k - z // 2) * fov[2]) for k in range(z)]
        affine = stack_affine(geoms, (fov[0] / x, fov[1] / y, fov[2]), (x, y))
        recon = tuple(min(a, b) for a, b in zip(p["recon"], (x, y, z)))
        out.append(raw_volume(v, path, fov, affine, recon, p["extras"], prewhiten))
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
