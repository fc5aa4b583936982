"""The ``dicom`` data source: 2-D slices of DICOM MR series for training on image data.

A file, a folder (searched recursively) or a list of them is read with
:mod:`mri_unfold.data.dicom_files` and every series (or the one chosen by ``series``, a
``SeriesInstanceUID`` or ``SeriesNumber``) becomes one volume
(:class:`~mri_unfold.data.dicom_volume.DicomVolume`: slices sorted along their normal,
rescaled, complex where the series holds magnitude and phase).  Then, as for NIfTI volumes
(:class:`~mri_unfold.data.sources.volume_slices.VolumeSlices`): each volume is divided by its
maximum magnitude, slices below ``min_signal`` are skipped and ``values`` picks the image
domain (``magnitude``, ``complex``, ``smooth_phase``).  Files recognised by content (``DICM``
at byte 128).  Invalid files are refused unless ``skip_invalid = true``.
"""
from __future__ import annotations

from pathlib import Path

from ...errors import UserError
from ..dicom_files import DicomScan, is_dicom, scan_dicom, select_series
from ..dicom_volume import DicomVolume
from .registry import DataSource, register_source
from .volume_slices import VALUES, VolumeSlices, check_slice_options

__all__ = ["DicomSlices", "DicomSource"]


class DicomSlices(VolumeSlices):
    """Normalised 2-D slices of the series of a DICOM input (module doc); items ``(1, H, W)``.

    Args:
        root: a DICOM file, a folder, or a list of files/folders.
        series: ``"all"`` (every series is a volume) or one series' UID or number.
        values / min_signal / seed: see :class:`VolumeSlices`.
        volume_index: the volume of series with several images per position (echoes, ...).
        skip_invalid: skip files that are not valid DICOM images instead of refusing.
        max_volumes: first N series (0 = all).

    Attributes:
        index: ``[(series label, slice), ...]``; ``series``: the series read.

    Raises:
        FileNotFoundError / DataFileError naming the file or series (see
        :class:`~mri_unfold.data.dicom_volume.DicomVolume`); series of different slice sizes.
    """

    def __init__(self, root, *, series: str = "all", values: str = "magnitude",
                 min_signal: float = 0.0, volume_index: int = 0, skip_invalid: bool = False,
                 max_volumes: int = 0, seed: int = 0):
        if values not in VALUES:
            raise ValueError(f"values must be one of {VALUES}, got {values!r}")
        scan = scan_dicom(root, skip_invalid)
        chosen = scan.series if series == "all" else [select_series(scan, series)]
        self.series = chosen[:max_volumes] if max_volumes else chosen
        volumes = ((s.label(), DicomVolume(DicomScan(scan.root, [s], [], []),
                                           volume_index=volume_index).slices())
                   for s in self.series)
        super().__init__(scan.root, volumes, values=values, min_signal=min_signal, seed=seed,
                         what="DICOM series", hint="use series of one matrix size")


@register_source
class DicomSource(DataSource):
    """2-D slices of DICOM MR series (magnitude/complex/smooth_phase)."""

    kind = "dicom"
    yields = "image"
    description = "2-D slices of DICOM series, sorted along the slice normal"
    options = {
        "values": (str, "magnitude"),      # magnitude | complex | smooth_phase
        "min_signal": (float, 0.05),       # skip slices below this fraction of the volume max
        "series": (str, "all"),            # all | a SeriesInstanceUID | a SeriesNumber
        "volume_index": (int, 0),          # series with several images per slice position
        "skip_invalid": (bool, False),     # skip non-DICOM / truncated files instead of failing
    }
    choices = {"values": VALUES}

    @classmethod
    def check_options(cls, options: dict, where: str) -> None:
        check_slice_options(options, where)
        if not str(options["series"]).strip():
            raise UserError(f"{where}: data.series must be 'all', a series UID or a number")

    @classmethod
    def detect(cls, path: Path) -> bool:
        return Path(path).is_file() and is_dicom(path)

    @classmethod
    def open(cls, path, options: dict, *, seed: int = 0, patch_size=None,
             max_items: int = 0, for_training: bool = True) -> DicomSlices:
        return DicomSlices(path, series=options["series"], values=options["values"],
                           min_signal=options["min_signal"],
                           volume_index=options["volume_index"],
                           skip_invalid=options["skip_invalid"], max_volumes=max_items,
                           seed=seed)
