"""Writing reconstructions as DICOM MR series: one file per slice (MR Image Storage) or one
Enhanced MR multi-frame file (:mod:`.dicom_enhanced`).

:func:`write_dicom_series` is the entry point (``mri-unfold recon --format dicom`` and any
caller with images and an affine); :func:`dicom_series` builds the datasets and
:func:`write_dicom_folders` writes several series all-or-nothing.  What a series holds:

* **identity**: new Study, Series, SOP Instance (and, unless copied, Frame of Reference) UIDs;
  ``ImageType`` ``DERIVED\\SECONDARY``; ``SeriesDescription`` naming the method and model;
  ``DerivationDescription`` and a ``ContributingEquipmentSequence`` item (processing
  equipment: mri-unfold, its version, the model and its card) — :class:`Provenance`;
* **geometry** from the RAS affine of the ``(H, W, S)`` stack
  (:func:`mri_unfold.data.geometry.image_planes`): ``ImagePositionPatient`` per slice,
  ``ImageOrientationPatient``, ``PixelSpacing``, ``SliceThickness``, ``SpacingBetweenSlices``,
  ``SliceLocation``;
* **pixels**: unsigned 16 bits with one ``RescaleSlope``/``RescaleIntercept`` for the series
  that maps 0..65535 onto the float range ``[min(0, min), max]`` (quantisation step = slope),
  ``WindowCenter``/``WindowWidth`` from the 0.5th and 99.5th percentiles;
* **patient, study, frame of reference, equipment, acquisition** attributes copied from
  ``attributes`` (:mod:`mri_unfold.data.scan_attributes`: a DICOM input's header, an ISMRMRD or
  twix header); ``anonymize`` drops the identifying ones
  (:data:`~mri_unfold.data.scan_attributes.IDENTIFYING`), replaces the frame of reference,
  leaves out references to source images and sets ``PatientIdentityRemoved``.

Files are ``IM_0001.dcm``, ... (Explicit VR Little Endian, DICOM Part 10), written into a
temporary folder that replaces the output folder only when every file is written
(:func:`mri_unfold.atomic.atomic_output_folders`).
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import EnhancedMRImageStorage, MRImageStorage, generate_uid

from .. import __version__
from ..atomic import atomic_output_folders
from ..data.geometry import ImagePlanes, image_planes
from ..data.scan_attributes import ACQUISITION, EQUIPMENT, IDENTIFYING, PATIENT, STUDY
from ..errors import UserError
from .dicom_elements import code, ds_number, file_meta, pixel_module
from .dicom_enhanced import enhanced_image

__all__ = ["Provenance", "write_dicom_series", "dicom_series", "write_dicom_folders",
           "quantise", "window", "SeriesPixels"]

_MAX_STORED = 65535


@dataclass(frozen=True)
class Provenance:
    """Who made a series and how: ``method`` (``"ISTA-Net+"``, ``"zero-filled"``), ``model``
    (zoo name or checkpoint file), ``card`` (the model card's description or the checkpoint's
    digest), ``sampling`` (how the data were measured, e.g. ``"radial mask, R=5, seed 0,
    retrospective undersampling (simulation)"``)."""

    method: str
    model: str = ""
    card: str = ""
    sampling: str = ""

    def series_description(self) -> str:
        """``mri-unfold <method> <model>`` (64 characters at most)."""
        return " ".join(x for x in ("mri-unfold", self.method, self.model) if x)[:64]

    def derivation(self) -> str:
        """The ``DerivationDescription`` (1024 characters at most)."""
        parts = [f"Reconstructed by mri-unfold {__version__} with {self.method}"]
        if self.model:
            parts.append(f"model {self.model}")
        if self.card:
            parts.append(f"model card: {self.card}")
        if self.sampling:
            parts.append(f"from {self.sampling}")
        return "; ".join(parts)[:1024]


@dataclass(frozen=True)
class SeriesPixels:
    """Quantised pixels: ``stored`` ``(S, H, W)`` uint16, ``slope``/``intercept`` (real value =
    stored × slope + intercept), ``center``/``width`` of the display window."""

    stored: np.ndarray
    slope: float
    intercept: float
    center: float
    width: float


def quantise(images: np.ndarray) -> tuple[np.ndarray, float, float]:
    """``(stored uint16, slope, intercept)`` mapping ``[min(0, min), max]`` onto 0..65535
    (module doc); the round-off is at most ``slope / 2``."""
    x = np.asarray(images, np.float64)
    lo, hi = min(0.0, float(x.min())), float(x.max())
    slope = (hi - lo) / _MAX_STORED if hi > lo else 1.0
    slope = float(ds_number(slope))  # the slope as written (16-character decimal string)
    stored = np.clip(np.rint((x - lo) / slope), 0, _MAX_STORED).astype(np.uint16)
    return stored, slope, lo


def window(images: np.ndarray, slope: float = 0.0) -> tuple[float, float]:
    """``(center, width)`` covering the 0.5th to 99.5th percentile of ``images``."""
    lo, hi = np.percentile(np.asarray(images, np.float64), [0.5, 99.5])
    width = max(float(hi - lo), float(slope), 1e-6)
    return float((hi + lo) / 2), width


def _now() -> tuple[str, str]:
    t = datetime.datetime.now()
    return t.strftime("%Y%m%d"), t.strftime("%H%M%S")


def _common(attributes: dict, provenance: Provenance, *, anonymize: bool, study_uid: str,
            frame_uid: str, series_number: int, description: str | None) -> Dataset:
    """Patient, study, series, frame of reference, equipment and derivation attributes."""
    attrs = {k: v for k, v in (attributes or {}).items()
             if not (anonymize and k in IDENTIFYING)}
    date, time = _now()
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    for key in PATIENT + STUDY + EQUIPMENT + ACQUISITION:
        if key in attrs and key != "FrameOfReferenceUID":
            setattr(ds, key, attrs[key])
    for key in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate",
                "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber",
                "PositionReferenceIndicator", "Manufacturer"):
        if key not in ds:
            setattr(ds, key, "")  # type 2: present, empty when unknown
    if anonymize:
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = "mri-unfold: names, IDs, dates, places, references removed"
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = \
        study_uid, generate_uid(), frame_uid
    ds.Modality = "MR"
    ds.SeriesNumber = int(series_number)
    ds.SeriesDescription = (description or provenance.series_description())[:64]
    if not anonymize:
        ds.SeriesDate, ds.SeriesTime = date, time
    ds.ContentDate, ds.ContentTime = date, time
    ds.InstanceCreationDate, ds.InstanceCreationTime = date, time
    ds.ImageType = ["DERIVED", "SECONDARY", "OTHER"]
    ds.DerivationDescription = provenance.derivation()
    eq = Dataset()
    eq.PurposeOfReferenceCodeSequence = [code("109102", "DCM", "Processing Equipment")]
    eq.Manufacturer = "mri-unfold"
    eq.ManufacturerModelName = (provenance.model or provenance.method)[:64]
    eq.SoftwareVersions = __version__
    eq.ContributionDateTime = date + time
    eq.ContributionDescription = provenance.derivation()
    ds.ContributingEquipmentSequence = [eq]
    ds.BurnedInAnnotation = "NO"
    ds.ScanningSequence = attrs.get("ScanningSequence") or "RM"   # research mode: unknown
    ds.SequenceVariant = attrs.get("SequenceVariant") or "NONE"
    if "IR" not in str(ds.ScanningSequence) and "InversionTime" in ds:
        del ds.InversionTime  # type 2C: only for inversion-recovery sequences
    for key in ("ScanOptions", "MRAcquisitionType", "EchoTime", "EchoTrainLength",
                "RepetitionTime", "PatientPosition"):
        if key not in ds:
            setattr(ds, key, "")
    if "BodyPartExamined" not in ds:
        ds.Laterality = ""  # type 2C: unknown whether a paired body part
    return ds


def _classic(common: Dataset, px: SeriesPixels, planes: ImagePlanes, k: int,
             thickness: float, source) -> Dataset:
    ds = Dataset()
    ds.update(common)
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, generate_uid()
    ds.file_meta = file_meta(ds.SOPClassUID, ds.SOPInstanceUID)
    ds.InstanceNumber = k + 1
    ds.ImagePositionPatient = [ds_number(v) for v in planes.positions[k]]
    ds.ImageOrientationPatient = [ds_number(v) for v in planes.orientation]
    ds.PixelSpacing = [ds_number(v) for v in planes.pixel_spacing]
    ds.SliceThickness = ds_number(thickness)
    ds.SpacingBetweenSlices = ds_number(planes.slice_spacing)
    ds.SliceLocation = ds_number(float(planes.positions[k] @ planes.normal))
    pixel_module(ds, *px.stored.shape[1:])
    ds.RescaleSlope, ds.RescaleIntercept = ds_number(px.slope), ds_number(px.intercept)
    ds.RescaleType = "US"
    ds.WindowCenter, ds.WindowWidth = ds_number(px.center), ds_number(px.width)
    if px.width < 1:
        ds.VOILUTFunction = "LINEAR_EXACT"  # a width below 1 needs the exact linear function
    if source is not None:
        ref = Dataset()
        ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = source
        ref.PurposeOfReferenceCodeSequence = [
            code("121322", "DCM", "Source image for image processing operation")]
        ds.SourceImageSequence = [ref]
    ds.PixelData = np.ascontiguousarray(px.stored[k]).astype("<u2").tobytes()
    return ds


def dicom_series(images, affine, *, provenance: Provenance, attributes: dict | None = None,
                 enhanced: bool = False, anonymize: bool = False, series_number: int = 1001,
                 slice_thickness: float | None = None, study_uid: str | None = None,
                 frame_uid: str | None = None, source_images=None,
                 description: str | None = None) -> list[Dataset]:
    """The datasets of one series (module doc), nothing written.

    Args:
        images: ``(S, H, W)`` real values (e.g. magnitudes in the input's intensity scale).
        affine: ``(4, 4)`` RAS affine of the ``(H, W, S)`` stack.
        provenance: method, model and sampling (:class:`Provenance`).
        attributes: DICOM keyword -> value copied into every image (scan attributes).
        enhanced: one Enhanced MR Image (multi-frame) instead of one MR Image per slice.
        anonymize: drop identifying attributes and source references (module doc).
        series_number: ``SeriesNumber``.  slice_thickness: mm (default: the slice spacing).
        study_uid / frame_uid: share a new study / frame of reference between series (default:
            new ones; the frame of reference is copied from ``attributes`` unless anonymised).
        source_images: per slice ``(SOPClassUID, SOPInstanceUID)`` of the image it was
            derived from (left out when anonymised).
        description: ``SeriesDescription`` (default from ``provenance``).
    Returns:
        one dataset per slice, or one multi-frame dataset.
    Raises:
        UserError: not ``(S, H, W)``, NaN/Inf values, an affine that DICOM planes cannot
        express (shear), ``source_images`` of the wrong length.
    """
    x = np.asarray(images)
    if x.ndim != 3 or min(x.shape) < 1 or np.iscomplexobj(x):
        raise UserError(f"DICOM output needs real images (slices, rows, columns), got "
                        f"{x.dtype} of shape {x.shape}")
    if not np.isfinite(x).all():
        raise UserError(f"DICOM output: the images hold {int((~np.isfinite(x)).sum())} "
                        "non-finite values (NaN/Inf) — unusable weights or data?; nothing was "
                        "written")
    planes = image_planes(affine, x.shape[0])
    stored, slope, intercept = quantise(x)
    center, width = window(x, slope)
    px = SeriesPixels(stored, slope, intercept, center, width)
    if source_images is not None and len(source_images) != x.shape[0]:
        raise UserError(f"DICOM output: {len(source_images)} source images for "
                        f"{x.shape[0]} slices")
    sources = [None] * x.shape[0] if anonymize or source_images is None else source_images
    copied_frame = None if anonymize else (attributes or {}).get("FrameOfReferenceUID")
    common = _common(attributes or {}, provenance, anonymize=anonymize,
                     study_uid=study_uid or generate_uid(),
                     frame_uid=frame_uid or copied_frame or generate_uid(),
                     series_number=series_number, description=description)
    thickness = float(slice_thickness or planes.slice_spacing)
    if enhanced:
        return [enhanced_image(common, px, planes, thickness,
                               file_meta(EnhancedMRImageStorage, ""))]
    return [_classic(common, px, planes, k, thickness, sources[k]) for k in range(x.shape[0])]


def write_dicom_folders(series: dict, replace: bool = False) -> list[Path]:
    """Write ``{out_dir: [dataset, ...]}`` all-or-nothing (``IM_0001.dcm``, ...); returns the
    files written.  ``replace``: replace existing non-empty folders (the caller checks they
    may be replaced)."""
    outs = [Path(p) for p in series]
    written = []
    with atomic_output_folders(outs, replace=replace) as tmps:
        for tmp, out, datasets in zip(tmps, outs, series.values()):
            digits = max(4, len(str(len(datasets))))
            for k, ds in enumerate(datasets):
                name = f"IM_{k + 1:0{digits}d}.dcm"
                ds.save_as(tmp / name, enforce_file_format=True)
                written.append(out / name)
    return written


def write_dicom_series(images, affine, out_dir: str | os.PathLike, *,
                       provenance: Provenance | None = None, replace: bool = False,
                       **options) -> list[Path]:
    """Write ``images`` ``(S, H, W)`` with the RAS ``affine`` as a DICOM series in the folder
    ``out_dir`` (created; an existing non-empty folder only with ``replace``), all-or-nothing.

    ``options`` are those of :func:`dicom_series` (``attributes``, ``enhanced``,
    ``anonymize``, ``series_number``, ``slice_thickness``, ...).  Returns the files written.

    Example::

        write_dicom_series(recon, affine, "out/series", provenance=Provenance("ISTA-Net+"),
                           attributes=ismrmrd_attributes(header))
    """
    datasets = dicom_series(images, affine, provenance=provenance or Provenance("unknown"),
                            **options)
    return write_dicom_folders({Path(out_dir): datasets}, replace=replace)
