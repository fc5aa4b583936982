"""ISMRMRD acquisitions -> k-space slices: the one path shared by the ``ismrmrd`` file source
(:mod:`mri_unfold.data.sources.ismrmrd_source`) and the streaming server
(:mod:`mri_unfold.serving`), which receives the same header and acquisition records over a
socket instead of from an HDF5 file.

* :func:`parse_header` — the XML header (:func:`ismrmrd.xsd.CreateFromDocument`), refusing
  document type declarations (entity expansion "XML bombs", external entities);
* :class:`ScanEncoding` — what the reader needs from the header: encoded and recon matrix,
  field of view after oversampling removal, encoding limits, trajectory;
* :class:`Acquisitions` — acquisition records: headers ``(N,)`` in the ISMRMRD layout
  (:data:`ismrmrd.hdf5.acquisition_header_dtype`), samples ``(C, n)`` complex64 and
  trajectories ``(n, d)`` float32;
* :func:`classify` — noise (``ACQ_IS_NOISE_MEASUREMENT``), skipped (calibration only,
  navigators, phase correction, feedback, dummy scans, other encoding spaces) and image
  acquisitions;
* :func:`image_slices` — Cartesian image acquisitions placed by their counters
  (:func:`~mri_unfold.data.raw_samples.slices_from_readouts`, geometry from each slice's
  acquisition header) or non-Cartesian samples with their stored trajectory, prewhitened.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .errors import DataFileError
from .geometry import SliceGeometry
from .prewhiten import Prewhiten, noise_covariance
from .raw_assembly import Encoding, Readouts
from .raw_samples import check_finite, raw_metadata, slices_from_readouts
from .samples import KSpaceSample

__all__ = ["FLAGS", "flag_set", "parse_header", "ScanEncoding", "Acquisitions", "classify",
           "image_slices", "covariance_of", "group_keys", "readouts_of", "slice_geometry",
           "LIMIT_COUNTERS"]

#: ISMRMRD acquisition flag bits (1-based, as in the ISMRMRD standard).
FLAGS = {"first_in_slice": 7, "last_in_slice": 8, "last_in_repetition": 14, "noise": 19,
         "calibration": 20, "calibration_and_imaging": 21, "reverse": 22, "navigation": 23,
         "phasecorr": 24, "last_in_measurement": 25, "hpfeedback": 26, "dummyscan": 27,
         "rtfeedback": 28, "surfacecoilcorrection": 29, "phase_stabilization_reference": 30,
         "phase_stabilization": 31}
_SKIPPED = ("calibration", "navigation", "phasecorr", "hpfeedback", "dummyscan", "rtfeedback",
            "surfacecoilcorrection", "phase_stabilization_reference", "phase_stabilization")
#: Header encoding-limit names -> Readouts counters.
LIMIT_COUNTERS = {"kspace_encoding_step_1": "line", "kspace_encoding_step_2": "partition",
                  "slice": "slice", "contrast": "contrast", "repetition": "repetition",
                  "average": "average"}
_DOCTYPE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def flag_set(flags, name: str) -> np.ndarray:
    """Whether flag ``name`` (:data:`FLAGS`) is set in each of the uint64 ``flags``."""
    return (np.asarray(flags, np.uint64) >> np.uint64(FLAGS[name] - 1)) & np.uint64(1) == 1


def parse_header(xml: bytes | str, where: str):
    """The ISMRMRD XML header (an :mod:`ismrmrd.xsd` object) with at least one encoding.

    Raises:
        DataFileError naming ``where``: a document type or entity declaration (never needed
            by ISMRMRD headers; refused before parsing), invalid XML, no ``<encoding>``.
    """
    import ismrmrd.xsd

    raw = xml.encode("utf-8") if isinstance(xml, str) else bytes(xml)
    raw = raw.split(b"\x00", 1)[0]  # the streaming protocol sends a null-terminated string
    if _DOCTYPE.search(raw):
        raise DataFileError(f"{where}: the ISMRMRD XML header declares a document type or "
                            "entities (refused: possible entity-expansion attack)")
    try:
        hdr = ismrmrd.xsd.CreateFromDocument(raw)
    except Exception as e:  # noqa: BLE001 - xsdata raises many types for malformed XML
        raise DataFileError(f"{where}: the ISMRMRD XML header is not valid "
                            f"({type(e).__name__})") from e
    if not hdr.encoding:
        raise DataFileError(f"{where}: the ISMRMRD header has no <encoding>")
    return hdr


@dataclass(frozen=True)
class ScanEncoding:
    """What the reader takes from the header's first encoding.

    Attributes:
        encoding: the encoded matrix, centre line/partition and encoding limits.
        fov_mm: ``(readout, phase, slice)`` field of view after oversampling removal (the
            slice entry per partition), or None when the header gives no field of view.
        recon_matrix: ``(x, y)`` of the recon space.
        trajectory: ``"cartesian"``, ``"radial"``, ``"spiral"`` ...
    """

    encoding: Encoding
    fov_mm: tuple | None
    recon_matrix: tuple[int, int]
    trajectory: str

    @classmethod
    def from_header(cls, hdr, where: str) -> "ScanEncoding":
        """Raises DataFileError naming ``where`` for an empty encoded matrix."""
        e = hdr.encoding[0]
        em, ef = e.encodedSpace.matrixSize, e.encodedSpace.fieldOfView_mm
        rm, rf = e.reconSpace.matrixSize, e.reconSpace.fieldOfView_mm
        if min(em.x, em.y) < 1:
            raise DataFileError(f"{where}: the ISMRMRD header's encoded matrix {em.x}x{em.y} "
                                "is empty")
        keep = int(round(em.x * rf.x / ef.x)) if ef.x > 0 else em.x
        keep = keep if 0 < keep <= em.x else em.x
        lim = e.encodingLimits
        limits = {}
        for hname, counter in LIMIT_COUNTERS.items():
            item = getattr(lim, hname, None)
            if item is not None:
                limits[counter] = (int(item.minimum), int(item.maximum))
        center = lambda l, n: int(l.center) if l is not None else n // 2  # noqa: E731
        nz = max(int(em.z), 1)
        enc = Encoding(readout_full=int(em.x), readout_keep=keep, lines=int(em.y),
                       center_line=center(lim.kspace_encoding_step_1, em.y), partitions=nz,
                       center_partition=center(lim.kspace_encoding_step_2, nz) if nz > 1 else 0,
                       limits=limits)
        fov = (ef.x * keep / em.x, ef.y, ef.z / nz) if ef.x > 0 and ef.y > 0 else None
        return cls(enc, fov, (int(rm.x), int(rm.y)), e.trajectory.value)


@dataclass
class Acquisitions:
    """``N`` acquisition records.

    Attributes:
        head: ``(N,)`` structured array with the ISMRMRD acquisition-header fields.
        data: ``N`` arrays ``(active_channels, number_of_samples)`` complex64.
        traj: ``N`` arrays ``(number_of_samples, trajectory_dimensions)`` float32 (or flat).
    """

    head: np.ndarray
    data: list = field(default_factory=list)
    traj: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.head)


def classify(head: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """``(noise indices, image indices, number skipped)`` of acquisition headers (module
    doc); an acquisition flagged calibration *and* imaging is an image acquisition."""
    flags = head["flags"]
    noise = flag_set(flags, "noise")
    skip = np.zeros(len(head), bool)
    for name in _SKIPPED:
        skip |= flag_set(flags, name) & ~flag_set(flags, "calibration_and_imaging")
    skip |= head["encoding_space_ref"] != 0
    return np.flatnonzero(noise), np.flatnonzero(~skip & ~noise), int((skip & ~noise).sum())


def covariance_of(noise: list, where: str) -> np.ndarray | None:
    """The ``(C, C)`` noise covariance of noise acquisitions' samples ``(C, n_i)`` (in
    order), or None when there are none.  Raises DataFileError for NaN/Inf samples."""
    if len(noise) == 0:
        return None
    n = np.concatenate(noise, axis=1)
    check_finite(n, f"{where} noise scans")
    return noise_covariance(n)


def group_keys(head: np.ndarray, trajectory: str) -> np.ndarray:
    """The slice group of each acquisition: ``(repetition, contrast, slice)`` rows for
    Cartesian scans (each group gives one slice, or one per partition in 3-D), the slice
    alone for non-Cartesian ones.  ``(N, 3)`` int64."""
    idx = head["idx"]
    cols = [idx["repetition"], idx["contrast"], idx["slice"]]
    if trajectory != "cartesian":
        cols[:2] = [np.zeros(len(head), np.int64)] * 2
    return np.stack([np.asarray(c, np.int64) for c in cols], 1).reshape(-1, 3)


def readouts_of(acqs: Acquisitions, sel: np.ndarray) -> Readouts:
    """The acquisitions ``sel`` (indices) as :class:`~mri_unfold.data.raw_assembly.Readouts`
    (``number`` = the indices)."""
    head = acqs.head
    idx = head["idx"][sel]
    return Readouts(
        data=[acqs.data[i] for i in sel], line=idx["kspace_encode_step_1"].astype(np.int64),
        partition=idx["kspace_encode_step_2"].astype(np.int64),
        slice=idx["slice"].astype(np.int64), contrast=idx["contrast"].astype(np.int64),
        repetition=idx["repetition"].astype(np.int64), average=idx["average"].astype(np.int64),
        center_sample=head["center_sample"][sel].astype(np.int64),
        reverse=flag_set(head["flags"][sel], "reverse"), number=np.asarray(sel))


def slice_geometry(h, partition_offset_mm: float = 0.0) -> SliceGeometry:
    """The geometry of one acquisition header ``h`` (LPS), moved ``partition_offset_mm``
    along the slice direction (a partition of a 3-D slab)."""
    pos = np.asarray(h["position"], np.float64) + partition_offset_mm * np.asarray(h["slice_dir"])
    return SliceGeometry.from_arrays(h["read_dir"], h["phase_dir"], h["slice_dir"], pos)


def _noncartesian(acqs, image, scan: ScanEncoding, path, extras, first_index) -> list:
    out = []
    head, enc = acqs.head, scan.encoding
    sl = head["idx"]["slice"][image]
    for k, s in enumerate(np.unique(sl)):
        sel = image[sl == s]
        dims = int(head["trajectory_dimensions"][sel[0]])
        if dims < 2:
            raise DataFileError(f"{path}: {scan.trajectory} acquisitions without a stored "
                                "trajectory")
        ks = np.concatenate([acqs.data[i] for i in sel], axis=1)
        tr = np.concatenate([np.asarray(acqs.traj[i], np.float32).reshape(-1, dims)
                             for i in sel])
        index = first_index + k
        check_finite(ks, f"{path} slice {index}")
        if len(tr) > 1 and not np.abs(tr[:, :2]).any():
            raise DataFileError(f"{path}: slice {index}: all {len(tr)} trajectory samples are "
                                "at k = 0 (no trajectory stored?)")
        shape = (enc.readout_full, enc.lines)
        meta = raw_metadata(path, index, shape, fov_mm=scan.fov_mm, trajectory=scan.trajectory,
                            extras={**extras, "trajectory_units": "as stored in the file"})
        out.append(KSpaceSample(
            kspace=torch.from_numpy(ks), mask=torch.ones(ks.shape[1]), target=None,
            coil_maps=None, metadata=meta, trajectory=torch.from_numpy(tr[:, :2].copy()),
            dcf=torch.from_numpy(tr[:, 2].copy()) if dims == 3 and enc.partitions == 1 else None,
            image_shape=shape))
    return out


def image_slices(acqs: Acquisitions, image: np.ndarray, scan: ScanEncoding, *,
                 path: str | Path, extras: dict | None = None, covariance=None,
                 prewhiten: bool = True, first_index: int = 0) -> list[KSpaceSample]:
    """The slices of the image acquisitions ``image`` (indices into ``acqs``).

    Cartesian: ``kspace`` ``(C, H, W)`` complex64 (``H`` readout after oversampling removal,
    ``W`` phase encoding), the mask measured from the data, one slice per (repetition,
    contrast, slice, partition); non-Cartesian: ``(C, K)`` with ``trajectory`` ``(K, 2)``,
    one per slice.  ``covariance`` (the noise covariance) whitens the coils when
    ``prewhiten``.

    Raises:
        DataFileError naming ``path``: counters outside the encoding limits or the matrix,
        inconsistent records, NaN/Inf samples, mixed trajectories, trajectories all at k = 0.
    """
    path = Path(path)
    extras = dict(extras or {})
    dims = np.unique(acqs.head["trajectory_dimensions"][image])
    if len(dims) > 1:
        raise DataFileError(f"{path}: the image acquisitions mix trajectories (stored "
                            f"trajectory dimensions {', '.join(map(str, dims.tolist()))}); one "
                            "trajectory per file is supported")
    if scan.trajectory == "cartesian":
        enc, fov = scan.encoding, scan.fov_mm
        head = acqs.head

        def geometry(s: dict) -> SliceGeometry:
            offset = (s["partition"] - enc.partitions // 2) * fov[2] if fov else 0.0
            return slice_geometry(head[image[s["first"]]], offset)

        return slices_from_readouts(readouts_of(acqs, image), enc, path=path, fov_mm=fov,
                                    crop_size=scan.recon_matrix, geometry=geometry,
                                    extras=extras, covariance=covariance, prewhiten=prewhiten,
                                    first_index=first_index)
    if covariance is not None:
        extras["noise_covariance"] = covariance
    samples = _noncartesian(acqs, image, scan, path, extras, first_index)
    if prewhiten and covariance is not None:
        white = Prewhiten()
        samples = [white(s) for s in samples]
    return samples
