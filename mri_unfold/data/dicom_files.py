"""Finding DICOM files, checking them and grouping them into series (headers only).

A DICOM input is a folder (searched recursively; hidden files are ignored), one file or a list
of files.  Every file is recognised **by content** — the ``DICM`` marker of a DICOM Part 10
file at byte 128 — and its header is read with pydicom without the pixel data.  Files are
then sorted out:

* **images** (a Pixel Data element) are grouped by ``SeriesInstanceUID``;
* **other DICOM objects** (DICOMDIR, structured reports, presentation states: no pixel data,
  not an image SOP class) are ignored and counted;
* **invalid files** — not DICOM, an unreadable header, an image that ends before or inside
  its pixel data (checked from the element's length for uncompressed transfer syntaxes), a
  pixel data element shorter than ``Rows × Columns × frames × samples × bits`` — are listed.

:func:`scan_dicom` refuses invalid files (:class:`InvalidDicomFiles`, listing them) unless
asked to skip them; :func:`select_series` picks one series by UID or number, or refuses
several (:class:`SeveralSeries`, listing them).  Nothing here decodes pixels
(:mod:`mri_unfold.data.dicom_volume` does).
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID

from .errors import DataFileError

__all__ = ["is_dicom", "dicom_inputs", "scan_dicom", "select_series", "DicomFile",
           "SeriesFiles", "DicomScan", "InvalidDicomFiles", "SeveralSeries", "frame_count"]

#: VRs whose explicit-VR element header has a 4-byte length after 2 reserved bytes.
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT"}
#: How many invalid files / series an error message lists before "...".
_LIST_MAX = 6


class InvalidDicomFiles(DataFileError):
    """Files of a DICOM input are not valid DICOM images (``invalid``: ``[(path, reason)]``)."""

    def __init__(self, message: str, invalid: list[tuple[Path, str]]):
        super().__init__(message)
        self.invalid = invalid


class SeveralSeries(DataFileError):
    """A DICOM input holds several series and none was chosen (``series``: the list)."""

    def __init__(self, message: str, series: list["SeriesFiles"]):
        super().__init__(message)
        self.series = series


def is_dicom(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a DICOM Part 10 file: ``DICM`` at byte 128."""
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except (OSError, ValueError):
        return False


def frame_count(ds) -> int:
    """``NumberOfFrames`` of a dataset (1 when absent or empty)."""
    try:
        return max(int(ds.get("NumberOfFrames") or 1), 1)
    except (TypeError, ValueError):
        return 1


@dataclass
class DicomFile:
    """One image file: ``path`` and its ``header`` (a pydicom Dataset without pixel data)."""

    path: Path
    header: pydicom.Dataset


@dataclass
class SeriesFiles:
    """The image files of one series (``files`` in file-name order; never used for sorting)."""

    uid: str
    number: int | None
    description: str
    modality: str
    files: list[DicomFile] = field(default_factory=list)

    @property
    def num_frames(self) -> int:
        return sum(frame_count(f.header) for f in self.files)

    def label(self) -> str:
        """``series 3 'T1 AX' (MR, 24 images, UID 1.2.3)``."""
        number = "?" if self.number is None else self.number
        return (f"series {number} '{self.description}' ({self.modality}, {self.num_frames} "
                f"images, UID {self.uid})")


@dataclass
class DicomScan:
    """What :func:`scan_dicom` found: ``series`` (sorted by number, then UID), ``invalid``
    ``[(path, reason)]`` and ``ignored`` ``[(path, what)]`` (DICOM objects without images)."""

    root: str
    series: list[SeriesFiles]
    invalid: list[tuple[Path, str]]
    ignored: list[tuple[Path, str]]


def dicom_inputs(inputs) -> list[Path]:
    """The candidate files of a DICOM input: a folder (recursively, hidden files and folders
    skipped, sorted), a file, or a list of files/folders.

    Raises:
        FileNotFoundError: a path that does not exist.  DataFileError: no file at all.
    """
    paths = [Path(inputs)] if isinstance(inputs, (str, os.PathLike)) else [Path(p) for p in inputs]
    files: list[Path] = []
    for p in paths:
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such DICOM file or folder")
        if p.is_dir():
            for dirpath, dirnames, names in os.walk(p):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                files += [Path(dirpath) / n for n in sorted(names) if not n.startswith(".")]
        else:
            files.append(p)
    if not files:
        raise DataFileError(f"{_describe(paths)}: no files (an empty folder)")
    return files


def _describe(paths: list[Path]) -> str:
    return str(paths[0]) if len(paths) == 1 else f"{paths[0]} and {len(paths) - 1} more files"


def _pixel_element(path: Path, ds, offset: int) -> tuple[int | None, str | None]:
    """(declared length of the Pixel Data element starting at ``offset``, None when
    undefined/encapsulated; a problem or None)."""
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    little = ts != pydicom.uid.ExplicitVRBigEndian
    with open(path, "rb") as f:
        f.seek(offset)
        head = f.read(12)
    if len(head) < 8:
        return None, "truncated: the file ends at the pixel data element"
    fmt = "<" if little else ">"
    if struct.unpack(fmt + "HH", head[:4]) != (0x7FE0, 0x0010):
        return None, "no Pixel Data element (7FE0,0010) where the header ends"
    explicit = head[4:6].isalpha() and head[4:6].isupper()
    if explicit:
        if head[4:6] in _LONG_VRS:
            if len(head) < 12:
                return None, "truncated: the file ends at the pixel data element"
            length, start = struct.unpack(fmt + "I", head[8:12])[0], 12
        else:
            length, start = struct.unpack(fmt + "H", head[6:8])[0], 8
    else:
        length, start = struct.unpack(fmt + "I", head[4:8])[0], 8
    if length == 0xFFFFFFFF:
        return None, None
    if offset + start + length > path.stat().st_size:
        have = path.stat().st_size - offset - start
        return length, (f"truncated: the pixel data element declares {length} bytes, the file "
                        f"holds {max(have, 0)}")
    return length, None


def _native_bytes(ds) -> int:
    bits = int(ds.get("BitsAllocated") or 16)
    n = (int(ds.get("Rows") or 0) * int(ds.get("Columns") or 0) * frame_count(ds)
         * int(ds.get("SamplesPerPixel") or 1))
    return (n * bits + 7) // 8


def _classify(path: Path) -> tuple[str, object]:
    """``("image", header)``, ``("ignored", what)`` or ``("invalid", reason)``."""
    if not is_dicom(path):
        return "invalid", "not a DICOM file (no DICM marker at byte 128)"
    try:
        with open(path, "rb") as f:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
            offset = f.tell()
    except (InvalidDicomError, EOFError, OSError, ValueError, KeyError, struct.error) as e:
        return "invalid", f"unreadable DICOM header ({type(e).__name__}: {e})"
    meta = getattr(ds, "file_meta", None)
    sop = UID(str(ds.get("SOPClassUID") or getattr(meta, "MediaStorageSOPClassUID", "") or ""))
    has_pixels = offset < path.stat().st_size and (ds.get("Rows") is not None)
    if not has_pixels:
        if "Image Storage" in (sop.name or "") or ds.get("Rows") is not None:
            return "invalid", "truncated: the file ends before its pixel data"
        return "ignored", f"{sop.name or 'DICOM object'} without images"
    try:
        length, problem = _pixel_element(path, ds, offset)
    except (OSError, struct.error) as e:
        return "invalid", f"unreadable pixel data element ({e})"
    if problem:
        return "invalid", problem
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if length is not None and (ts is None or not ts.is_compressed) and length < _native_bytes(ds):
        return "invalid", (f"truncated: the pixel data hold {length} bytes, Rows x Columns x "
                           f"frames x samples x bits need {_native_bytes(ds)}")
    return "image", ds


def scan_dicom(inputs, skip_invalid: bool = False) -> DicomScan:
    """Read the headers of a DICOM input (module doc) and group its images by series.

    Args:
        inputs: a folder, a file, or a list of files/folders.
        skip_invalid: list invalid files in :attr:`DicomScan.invalid` instead of refusing.
    Raises:
        FileNotFoundError: a missing path.  InvalidDicomFiles: invalid files (without
        ``skip_invalid``), naming them and why.  DataFileError: no DICOM image at all.
    """
    files = dicom_inputs(inputs)
    paths = [Path(inputs)] if isinstance(inputs, (str, os.PathLike)) else [Path(p) for p in inputs]
    root = _describe(paths)
    series: dict[str, SeriesFiles] = {}
    invalid, ignored = [], []
    for path in files:
        kind, value = _classify(path)
        if kind == "invalid":
            invalid.append((path, value))
        elif kind == "ignored":
            ignored.append((path, value))
        else:
            ds = value
            uid = str(ds.get("SeriesInstanceUID") or "")
            if uid not in series:
                number = ds.get("SeriesNumber")
                series[uid] = SeriesFiles(
                    uid=uid, number=None if number in (None, "") else int(number),
                    description=str(ds.get("SeriesDescription") or ""),
                    modality=str(ds.get("Modality") or "?"))
            series[uid].files.append(DicomFile(path, ds))
    if invalid and not skip_invalid:
        listed = "; ".join(f"{p.name}: {r}" for p, r in invalid[:_LIST_MAX])
        more = f"; and {len(invalid) - _LIST_MAX} more" if len(invalid) > _LIST_MAX else ""
        raise InvalidDicomFiles(f"{root}: {len(invalid)} of {len(files)} files are not valid "
                                f"DICOM images ({listed}{more})", invalid)
    if not series:
        what = f"{len(invalid)} invalid, {len(ignored)} without images"
        raise DataFileError(f"{root}: no DICOM image among {len(files)} files ({what})")
    ordered = sorted(series.values(), key=lambda s: (s.number is None, s.number or 0, s.uid))
    return DicomScan(root=root, series=ordered, invalid=invalid, ignored=ignored)


def select_series(scan: DicomScan, series: str | None = None) -> SeriesFiles:
    """The one series of ``scan``, or the one whose ``SeriesInstanceUID`` or ``SeriesNumber``
    is ``series``.

    Raises:
        SeveralSeries: several series and no choice (lists them).  DataFileError: no series
        with that UID or number, or several with that number.
    """
    listing = "; ".join(s.label() for s in scan.series[:_LIST_MAX])
    if len(scan.series) > _LIST_MAX:
        listing += f"; and {len(scan.series) - _LIST_MAX} more"
    if series is None or str(series) == "":
        if len(scan.series) == 1:
            return scan.series[0]
        raise SeveralSeries(f"{scan.root}: holds {len(scan.series)} series ({listing}); choose "
                            "one by its UID or number", scan.series)
    wanted = str(series).strip()
    by_uid = [s for s in scan.series if s.uid == wanted]
    if by_uid:
        return by_uid[0]
    by_number = [s for s in scan.series if wanted.lstrip("+-").isdigit()
                 and s.number == int(wanted)]
    if len(by_number) == 1:
        return by_number[0]
    if len(by_number) > 1:
        raise DataFileError(f"{scan.root}: {len(by_number)} series have number {wanted} "
                            f"({'; '.join(s.label() for s in by_number)}); choose one by UID")
    raise DataFileError(f"{scan.root}: no series with UID or number {wanted!r} (found: "
                        f"{listing})")
