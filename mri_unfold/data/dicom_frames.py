"""The frames of DICOM image files, read from their headers: where each frame lies and how its
stored values become real values.

A classic (single-frame) image file is one frame; an Enhanced multi-frame file (Enhanced MR,
Legacy Converted Enhanced MR, ...) holds ``NumberOfFrames`` frames whose attributes live in
functional groups — per frame (``PerFrameFunctionalGroupsSequence``) or shared by all
(``SharedFunctionalGroupsSequence``); a per-frame value wins.  For every frame
:func:`file_frames` gives:

* ``position`` — ``ImagePositionPatient``, the centre of the first transmitted pixel, mm, LPS;
* ``orientation`` — ``ImageOrientationPatient``: the row direction (towards increasing column
  index) then the column direction (towards increasing row index), unit vectors in LPS;
* ``spacing`` — ``PixelSpacing`` ``(between rows, between columns)`` in mm, ``thickness``
  (``SliceThickness``), ``spacing_between`` (``SpacingBetweenSlices``);
* ``slope``/``intercept`` — ``RescaleSlope``/``RescaleIntercept`` (real value = stored ×
  slope + intercept; 1 and 0 when absent);
* ``component`` — ``MAGNITUDE``, ``PHASE``, ``REAL`` or ``IMAGINARY``: ``ComplexImageComponent``
  when present, else a value of ``ImageType``/``FrameType`` from the third on (``M``, ``P``,
  ``R``, ``I``, ``MAGNITUDE``, ``PHASE``, ...), else magnitude;
* ``order`` — what tells frames at one position apart (echo number or effective echo time,
  temporal position, acquisition number, instance number, frame index), used only to order
  them, never to order slices.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .dicom_files import DicomFile, frame_count
from .errors import DataFileError

__all__ = ["Frame", "file_frames", "COMPONENTS"]

#: Complex image components, in the order a volume prefers them.
COMPONENTS = ("MAGNITUDE", "PHASE", "REAL", "IMAGINARY")
_TOKENS = {"M": "MAGNITUDE", "MAG": "MAGNITUDE", "MAGNITUDE": "MAGNITUDE", "P": "PHASE",
           "PHA": "PHASE", "PHASE": "PHASE", "R": "REAL", "REAL": "REAL", "I": "IMAGINARY",
           "IMAG": "IMAGINARY", "IMAGINARY": "IMAGINARY"}


@dataclass
class Frame:
    """One 2-D frame of an image file (module doc); ``index`` is the frame's index in a
    multi-frame file (0-based) or None for a single-frame file."""

    file: DicomFile
    index: int | None
    position: np.ndarray
    orientation: np.ndarray
    spacing: tuple[float, float]
    thickness: float | None
    spacing_between: float | None
    slope: float
    intercept: float
    component: str
    order: tuple

    @property
    def where(self) -> str:
        """``file.dcm`` or ``file.dcm frame 3`` (1-based, as viewers count frames)."""
        name = self.file.path.name
        return name if self.index is None else f"{name} frame {self.index + 1}"

    @property
    def normal(self) -> np.ndarray:
        """The slice normal, row direction × column direction (LPS)."""
        return np.cross(self.orientation[:3], self.orientation[3:])


def _floats(value, n: int, what: str, where: str) -> np.ndarray:
    try:
        v = np.asarray([float(x) for x in value], np.float64)
    except (TypeError, ValueError):
        v = np.zeros(0)
    if v.shape != (n,) or not np.isfinite(v).all():
        raise DataFileError(f"{where}: {what} must be {n} numbers, got {value!r}")
    return v


def _optional_float(value) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


def _component(explicit, image_type) -> str:
    if explicit and str(explicit).upper() in COMPONENTS:
        return str(explicit).upper()
    values = [image_type] if isinstance(image_type, str) else list(image_type or [])
    for token in values[2:]:
        found = _TOKENS.get(str(token).strip().upper())
        if found:
            return found
    return "MAGNITUDE"


class _Lookup:
    """Attribute lookup of one frame: its per-frame group, then the shared group, then the
    top-level dataset (classic files only have the last)."""

    def __init__(self, ds, index: int | None):
        self.ds = ds
        self.groups = []
        per = ds.get("PerFrameFunctionalGroupsSequence")
        if index is not None and per is not None and index < len(per):
            self.groups.append(per[index])
        shared = ds.get("SharedFunctionalGroupsSequence")
        if shared:
            self.groups.append(shared[0])

    def get(self, sequence: str, keyword: str, default=None):
        for g in self.groups:
            seq = g.get(sequence)
            if seq and keyword in seq[0]:
                value = seq[0].get(keyword)
                if value not in (None, ""):
                    return value
        value = self.ds.get(keyword)
        return default if value in (None, "") else value


def file_frames(f: DicomFile) -> list[Frame]:
    """The frames of one image file (module doc).

    Raises:
        DataFileError naming the file (and frame): missing or malformed position,
        orientation or pixel spacing (not a cross-sectional image); a multi-frame file
        without functional groups; a zero rescale slope.
    """
    ds = f.header
    n = frame_count(ds)
    enhanced = "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds
    if n > 1 and not enhanced:
        raise DataFileError(f"{f.path}: a multi-frame file ({n} frames) without functional "
                            "groups: no per-frame position to place the frames")
    frames = []
    for i in range(n):
        index = i if enhanced else None
        look = _Lookup(ds, index)
        where = f"{f.path}" + (f" frame {i + 1}" if enhanced else "")
        pos = look.get("PlanePositionSequence", "ImagePositionPatient")
        ori = look.get("PlaneOrientationSequence", "ImageOrientationPatient")
        spacing = look.get("PixelMeasuresSequence", "PixelSpacing")
        if pos is None or ori is None or spacing is None:
            missing = [k for k, v in (("ImagePositionPatient", pos), ("ImageOrientationPatient",
                                                                       ori),
                                      ("PixelSpacing", spacing)) if v is None]
            raise DataFileError(f"{where}: no {', '.join(missing)} (not a cross-sectional image "
                                "with a position in the patient)")
        ori = _floats(ori, 6, "ImageOrientationPatient", where)
        norms = np.linalg.norm(ori[:3]), np.linalg.norm(ori[3:])
        if min(norms) < 0.5 or abs(float(np.dot(ori[:3], ori[3:]))) > 1e-3 * norms[0] * norms[1]:
            raise DataFileError(f"{where}: ImageOrientationPatient {list(ori)} is not two "
                                "orthogonal directions")
        ori = np.concatenate([ori[:3] / norms[0], ori[3:] / norms[1]])
        sp = _floats(spacing, 2, "PixelSpacing", where)
        if (sp <= 0).any():
            raise DataFileError(f"{where}: PixelSpacing {list(sp)} must be positive")
        slope = _optional_float(look.get("PixelValueTransformationSequence", "RescaleSlope", 1))
        intercept = _optional_float(look.get("PixelValueTransformationSequence",
                                             "RescaleIntercept", 0))
        if slope is None or slope == 0 or intercept is None:
            raise DataFileError(f"{where}: RescaleSlope/RescaleIntercept "
                                f"({look.get('PixelValueTransformationSequence', 'RescaleSlope')}"
                                ") must be numbers with a non-zero slope")
        image_type = (look.get("MRImageFrameTypeSequence", "FrameType") if enhanced else None) \
            or ds.get("ImageType") or []
        component = _component(look.get("MRImageFrameTypeSequence", "ComplexImageComponent"),
                               image_type)
        echo = _optional_float(look.get("MREchoSequence", "EffectiveEchoTime")) \
            if enhanced else _optional_float(ds.get("EchoNumbers"))
        order = (echo or 0.0,
                 _optional_float(look.get("FrameContentSequence", "TemporalPositionIndex")
                                 or ds.get("TemporalPositionIdentifier")) or 0.0,
                 _optional_float(ds.get("AcquisitionNumber")) or 0.0,
                 _optional_float(ds.get("InstanceNumber")) or 0.0, i)
        frames.append(Frame(
            file=f, index=index, position=_floats(pos, 3, "ImagePositionPatient", where),
            orientation=ori, spacing=(float(sp[0]), float(sp[1])),
            thickness=_optional_float(look.get("PixelMeasuresSequence", "SliceThickness")),
            spacing_between=_optional_float(look.get("PixelMeasuresSequence",
                                                     "SpacingBetweenSlices")),
            slope=float(slope), intercept=float(intercept), component=component, order=order))
    return frames
