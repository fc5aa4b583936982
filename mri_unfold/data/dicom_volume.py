"""A DICOM series as a 3-D volume: slices in order along their normal, real values, complex
values from magnitude/phase or real/imaginary frames, and the NIfTI (RAS) affine.

:class:`DicomVolume` reads the headers (:mod:`.dicom_files`, :mod:`.dicom_frames`), checks the
geometry, checks sizes against the available memory, and only then decodes pixels:

1. every frame must have the same size (``Rows x Columns``), orientation and pixel spacing
   (otherwise refused with the values found);
2. frames are grouped by component (magnitude, phase, real, imaginary) and by position along
   the slice normal; **slices are sorted by that position**, never by file name or
   ``InstanceNumber``; every position holds the same number of frames — more than one per
   position (echoes, time points) makes several volumes, chosen with ``volume_index`` and
   ordered by echo, temporal position, acquisition and instance number;
3. positions must lie on one line along the normal (no in-plane shift, e.g. gantry tilt) and
   be equally spaced: a gap of a whole number of steps is reported as missing slices, other
   differences as non-uniform spacing;
4. values are ``stored × RescaleSlope + RescaleIntercept`` per frame; a series with
   magnitude and phase frames becomes ``magnitude · exp(i · phase)`` (phase in radians when
   the values lie within ±π, else Siemens' convention −4096..4095 ↔ −π..π), one with real
   and imaginary frames ``real + i · imaginary``;
5. the affine maps array indices ``(row, column, slice)`` of :meth:`DicomVolume.volume`'s
   ``(H, W, S)`` layout to RAS mm, the convention of ``dcm2niix`` and nibabel (tested against
   ``dcm2niix``): column 0 steps down the rows, column 1 along the columns, column 2 from one
   slice to the next; one slice steps by its ``SliceThickness``.

Compressed transfer syntaxes are decoded by pydicom's plug-ins; one that no installed package
decodes is refused naming the packages that would.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pydicom
from pydicom.pixels import get_decoder

from ..memory import require_memory
from .dicom_files import DicomScan, SeriesFiles, frame_count, scan_dicom, select_series
from .dicom_frames import Frame, file_frames
from .errors import DataFileError
from .geometry import dicom_slice_geometry, stack_affine

__all__ = ["DicomVolume", "check_decodable"]

#: Tolerances: orientation cosines, relative pixel spacing, position (mm), relative step.
_ORI_TOL, _SPACING_TOL, _POS_TOL, _STEP_TOL = 1e-3, 1e-3, 1e-2, 1e-2


def check_decodable(f) -> None:
    """Refuse (DataFileError naming the file) a transfer syntax no installed package decodes,
    and non-greyscale images."""
    ds, path = f.header, f.path
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if ts is not None and ts.is_compressed:
        try:
            decoder = get_decoder(ts)
        except NotImplementedError:
            raise DataFileError(f"{path}: pixel data in transfer syntax {ts.name} ({ts}), which "
                                "pydicom cannot decode") from None
        if not decoder.is_available:
            raise DataFileError(f"{path}: pixel data compressed as {ts.name}, which no installed "
                                "package decodes; install one of: "
                                f"{'; '.join(decoder.missing_dependencies)}")
    photometric = str(ds.get("PhotometricInterpretation") or "MONOCHROME2")
    if int(ds.get("SamplesPerPixel") or 1) != 1 or not photometric.startswith("MONOCHROME"):
        raise DataFileError(f"{path}: a {photometric} image with {ds.get('SamplesPerPixel')} "
                            "samples per pixel; only greyscale (MONOCHROME) images are read")


def _same(frames: list[Frame], value, tol: float, what: str, shown) -> None:
    ref = value(frames[0])
    for fr in frames[1:]:
        if not np.allclose(value(fr), ref, rtol=0, atol=tol):
            raise DataFileError(f"{fr.file.path}: mixed {what} in one series: "
                                f"{shown(frames[0])} ({frames[0].where}) and {shown(fr)} "
                                f"({fr.where}); give one stack of parallel slices")


def _stacks(frames: list[Frame], where: str) -> tuple[list[float], list[list[Frame]]]:
    """Positions along the normal (sorted) and the frames at each position."""
    normal = frames[0].normal
    distance = np.array([float(fr.position @ normal) for fr in frames])
    order = np.argsort(distance, kind="stable")
    positions: list[float] = []
    groups: list[list[Frame]] = []
    for k in order:
        if positions and abs(distance[k] - positions[-1]) < _POS_TOL:
            groups[-1].append(frames[k])
        else:
            positions.append(float(distance[k]))
            groups.append([frames[k]])
    first = groups[0][0]
    for g in groups:
        offset = g[0].position - first.position
        inplane = offset - (offset @ normal) * normal
        if np.linalg.norm(inplane) > max(_POS_TOL, 1e-3 * np.linalg.norm(offset)):
            raise DataFileError(f"{where}: slices are not stacked along their normal "
                                f"({g[0].where} is shifted {np.linalg.norm(inplane):.3f} mm "
                                "in-plane from the first slice: gantry tilt or shear)")
    return positions, groups


def _check_spacing(positions: list[float], where: str) -> float | None:
    if len(positions) < 2:
        return None
    steps = np.diff(positions)
    step = float(np.min(steps))
    bad = np.flatnonzero(np.abs(steps - step) > _STEP_TOL * step)
    if bad.size:
        k = int(bad[0])
        gap = steps[k] / step
        if abs(gap - round(gap)) < _STEP_TOL * gap and round(gap) >= 2:
            raise DataFileError(f"{where}: {int(round(gap)) - 1} missing slice(s) between "
                                f"{positions[k]:.3f} and {positions[k + 1]:.3f} mm along the "
                                f"slice normal (slices every {step:.3f} mm elsewhere)")
        raise DataFileError(f"{where}: non-uniform slice spacing along the normal (steps from "
                            f"{steps.min():.3f} to {steps.max():.3f} mm)")
    return step


def _phase_radians(phase: np.ndarray, where: str) -> np.ndarray:
    peak = float(np.abs(phase).max()) if phase.size else 0.0
    if peak <= np.pi * (1 + 1e-3):
        return phase
    if peak <= 4096.5:
        return phase * (np.pi / 4096.0)
    raise DataFileError(f"{where}: phase values reach {peak:g}, neither radians (±π) nor "
                        "Siemens' -4096..4095 scale; cannot convert them to radians")


class DicomVolume:
    """One volume of one DICOM series (module doc).

    Args:
        inputs: a folder, a file, a list of files/folders, or a :class:`DicomScan`.
        series: ``SeriesInstanceUID`` or ``SeriesNumber`` of the series to read (needed when
            the input holds several).
        skip_invalid: skip invalid files (listed in ``scan.invalid``) instead of refusing.
        volume_index: which volume when the series has several frames per position (echoes,
            time points); None requires exactly one.

    Attributes:
        volume: ``(S, H, W)`` float32, or complex64 (``is_complex``): slice ``k`` is the
            ``k``-th along the normal, rows and columns as stored (``Rows x Columns``).
        affine: ``(4, 4)`` RAS affine of the ``(H, W, S)`` layout (module doc).
        scan / series: what was found and the series read.  ``frames``: the volume's frames
            ``[[frame, ...] per slice]`` (one per component), ``reference``: the header of the
            first slice's file (patient, study, equipment attributes for writers).
        slice_thickness: ``SliceThickness`` of the first frame (mm) or None.
        num_volumes: frames per position; ``components``: the components found.
        phase_encoding: ``InPlanePhaseEncodingDirection`` (``"ROW"``/``"COL"``) or None.

    Raises:
        DataFileError naming the file or series: every problem of the module doc, an
        undecodable transfer syntax, a volume that would not fit in memory
        (:class:`~mri_unfold.memory.InsufficientMemory`).
    """

    def __init__(self, inputs, series: str | None = None, *, skip_invalid: bool = False,
                 volume_index: int | None = None):
        self.scan = inputs if isinstance(inputs, DicomScan) else scan_dicom(inputs, skip_invalid)
        self.series: SeriesFiles = select_series(self.scan, series)
        where = f"{self.scan.root} ({self.series.label()})"
        self.where = where
        frames = [fr for f in self.series.files for fr in file_frames(f)]
        for f in self.series.files:
            check_decodable(f)
        _same(frames, lambda fr: np.array([fr.file.header.Rows, fr.file.header.Columns]), 0,
              "image sizes", lambda fr: f"{fr.file.header.Rows}x{fr.file.header.Columns}")
        _same(frames, lambda fr: fr.orientation, _ORI_TOL, "orientations",
              lambda fr: np.round(fr.orientation, 4).tolist())
        _same(frames, lambda fr: np.array(fr.spacing) / frames[0].spacing[0], _SPACING_TOL,
              "pixel spacings", lambda fr: list(fr.spacing))
        self.components = sorted({fr.component for fr in frames})
        use = self._use_components(where)
        by_comp = {c: [fr for fr in frames if fr.component == c] for c in use}
        positions, groups = _stacks(by_comp[use[0]], where)
        counts = {len(g) for g in groups}
        if len(counts) > 1:
            raise DataFileError(f"{where}: slice positions hold different numbers of images "
                                f"({min(counts)} to {max(counts)}): missing images?")
        self.num_volumes = counts.pop()
        if volume_index is None and self.num_volumes > 1:
            raise DataFileError(f"{where}: {self.num_volumes} images per slice position "
                                "(echoes or time points); choose a volume index")
        v = volume_index or 0
        if not 0 <= v < self.num_volumes:
            raise DataFileError(f"{where}: volume index {v} out of range for "
                                f"{self.num_volumes} volumes")
        self.volume_index = v
        step = _check_spacing(positions, where)
        self.frames = [self._slice_frames(g, by_comp, use, v, where) for g in groups]
        first = self.frames[0][0]
        h, w = int(first.file.header.Rows), int(first.file.header.Columns)
        self.slice_thickness = first.thickness
        self.spacing_between_slices = step
        self.reference = first.file.header
        pe = str(self.reference.get("InPlanePhaseEncodingDirection") or "").upper()
        self.phase_encoding = pe if pe in ("ROW", "COL") else None
        geoms = [dicom_slice_geometry(s[0].position, s[0].orientation, s[0].spacing, (h, w))
                 for s in self.frames]
        thick = first.thickness or first.spacing_between or 1.0
        self.affine = stack_affine(geoms, (first.spacing[0], first.spacing[1], thick), (h, w))
        self.volume = self._decode(h, w, use, where)

    def _use_components(self, where: str) -> list[str]:
        have = set(self.components)
        if "MAGNITUDE" in have and "PHASE" in have:
            return ["MAGNITUDE", "PHASE"]
        if "REAL" in have and "IMAGINARY" in have:
            return ["REAL", "IMAGINARY"]
        for c in ("MAGNITUDE", "REAL"):
            if c in have:
                return [c]
        raise DataFileError(f"{where}: only {'/'.join(sorted(have)).lower()} images, no "
                            "magnitude or real part to go with them")

    @staticmethod
    def _slice_frames(group, by_comp, use, v, where) -> list[Frame]:
        chosen = [sorted(group, key=lambda fr: fr.order)[v]]
        for c in use[1:]:
            partners = sorted((fr for fr in by_comp[c]
                               if abs(float((fr.position - chosen[0].position)
                                            @ chosen[0].normal)) < _POS_TOL),
                              key=lambda fr: fr.order)
            if len(partners) != len(group):
                raise DataFileError(f"{where}: {chosen[0].where} has {len(partners)} "
                                    f"{c.lower()} image(s) at its position, expected "
                                    f"{len(group)}")
            chosen.append(partners[v])
        return chosen

    def _decode(self, h: int, w: int, use: list[str], where: str) -> np.ndarray:
        files = {id(fr.file): fr.file for s in self.frames for fr in s}
        biggest = max(h * w * frame_count(f.header) for f in files.values())
        s = len(self.frames)
        require_memory(8 * biggest + 8 * h * w * s * len(use) + 8 * h * w * s,
                       f"{where}: {s} slices of {h}x{w}")
        cache: dict[int, np.ndarray] = {}

        def pixels(fr: Frame) -> np.ndarray:
            key = id(fr.file)
            if key not in cache:
                cache.clear()
                cache[key] = _read_pixels(fr.file.path, frame_count(fr.file.header), h, w)
            raw = cache[key][0 if fr.index is None else fr.index]
            return raw.astype(np.float64) * fr.slope + fr.intercept

        parts = [np.stack([pixels(sl[c]) for sl in self.frames]) for c in range(len(use))]
        if use == ["MAGNITUDE", "PHASE"]:
            vol = parts[0] * np.exp(1j * _phase_radians(parts[1], where))
        elif use == ["REAL", "IMAGINARY"]:
            vol = parts[0] + 1j * parts[1]
        else:
            vol = parts[0]
        if not np.isfinite(vol).all():
            raise DataFileError(f"{where}: the pixel values hold NaN/Inf")
        return np.ascontiguousarray(vol, np.complex64 if np.iscomplexobj(vol) else np.float32)

    @property
    def is_complex(self) -> bool:
        return bool(np.iscomplexobj(self.volume))

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(H, W, S)`` (the affine's layout)."""
        s, h, w = self.volume.shape
        return h, w, s

    def slices(self) -> np.ndarray:
        """``(S, H, W)`` float32 or complex64, slices in order along the normal."""
        return self.volume

    def __len__(self) -> int:
        return self.volume.shape[0]


def _read_pixels(path: Path, frames: int, h: int, w: int) -> np.ndarray:
    """``(frames, h, w)`` stored values of one file (decoded by pydicom)."""
    try:
        ds = pydicom.dcmread(path)
        arr = np.asarray(ds.pixel_array)
    except Exception as e:  # noqa: BLE001 - decoders raise many types for corrupt data
        raise DataFileError(f"{path}: the pixel data cannot be decoded ({type(e).__name__}: "
                            f"{' '.join(str(e).split())[:200]})") from e
    arr = arr.reshape(frames, h, w) if arr.size == frames * h * w else None
    if arr is None:
        raise DataFileError(f"{path}: decoded pixel data do not hold {frames} frames of {h}x{w}")
    return arr
