"""DICOM series as reconstruction inputs: retrospective undersampling of the images, as for
NIfTI volumes (:func:`~mri_unfold.reconstruct.inputs.reconstruct_image_volume`).

The series is read with :class:`~mri_unfold.data.dicom_volume.DicomVolume` (slices sorted
along the normal, rescaled, complex from magnitude/phase pairs) and divided by its maximum.
Each slice is measured with the phase encoding along the series'
``InPlanePhaseEncodingDirection`` (our arrays put the phase encoding on their second axis,
``W``: a series encoded along ``COL`` is transposed for the simulation and back afterwards;
``ROW`` when the attribute is absent).  The result keeps the series for the writers:
``source`` is the volume, ``info["affine"]`` its RAS affine, ``info["scan_attributes"]`` the
patient/study/equipment attributes and ``info["source_images"]`` the SOP class and instance
of each slice.  This is a SIMULATION from images.
"""
from __future__ import annotations

import numpy as np
import torch

from ..data.dicom_volume import DicomVolume
from ..data.scan_attributes import dicom_attributes
from .inputs import MaskSpec, reconstruct_image_volume
from .pipeline import Adapter
from .pipeline import ReconResult
from .trajectory import TrajectorySpec

__all__ = ["reconstruct_dicom", "phase_encoding_slices"]


def phase_encoding_slices(volume: DicomVolume) -> np.ndarray:
    """The volume's slices ``(S, H, W)`` with the phase encoding on the last axis (transposed
    to ``(S, W, H)`` for a series encoded along ``COL``)."""
    vol = volume.slices()
    return np.ascontiguousarray(vol.transpose(0, 2, 1)) if volume.phase_encoding == "COL" \
        else vol


def reconstruct_dicom(inputs, model: torch.nn.Module, mask: MaskSpec | None, *,
                      series: str | None = None, skip_invalid: bool = False,
                      volume_index: int | None = None,
                      trajectory: TrajectorySpec | None = None, complex_model: bool = False,
                      batch_size: int = 8, device=None, progress: bool = True,
                      pad_last_batch: bool = False, auto_compile: bool = False,
                      volume: DicomVolume | None = None,
                      adapt: Adapter | None = None) -> ReconResult:
    """Retrospectively undersample every slice of a DICOM series and reconstruct it.

    Args:
        inputs: a folder, a file or a list of files (ignored when ``volume`` is given).
        series / skip_invalid / volume_index: which series and volume, and whether invalid
            files are skipped (:class:`~mri_unfold.data.dicom_volume.DicomVolume`).
        mask / trajectory / complex_model / batch_size / ...: see
            :func:`~mri_unfold.reconstruct.inputs.reconstruct_nifti`.
        volume: an already read series.
    Returns:
        :class:`ReconResult` ``(S, H, W)`` (rows and columns as stored, slices along the
        normal) with metrics against the series (module doc for ``source`` and ``info``).
    Raises:
        UserError / DataFileError naming the file or series (see ``DicomVolume`` and
        ``reconstruct_image_volume``).
    """
    vol = volume if volume is not None else DicomVolume(
        inputs, series, skip_invalid=skip_invalid, volume_index=volume_index)
    transposed = vol.phase_encoding == "COL"
    result = reconstruct_image_volume(
        phase_encoding_slices(vol), vol.scan.root, model, mask, trajectory=trajectory,
        complex_model=complex_model, batch_size=batch_size, device=device, progress=progress,
        pad_last_batch=pad_last_batch, auto_compile=auto_compile, adapt=adapt)
    if transposed:
        for name in ("reconstruction", "zero_filled", "target"):
            stack = getattr(result, name)
            if stack is not None:
                setattr(result, name, np.ascontiguousarray(stack.transpose(0, 2, 1)))
    result.source = vol
    result.info.update({
        "input": vol.scan.root, "series": vol.series.label(), "affine": vol.affine,
        "phase_encoding": vol.phase_encoding or "ROW (not given)",
        "scan_attributes": dicom_attributes(vol.reference),
        "source_images": [(str(s[0].file.header.get("SOPClassUID", "")),
                           str(s[0].file.header.get("SOPInstanceUID", ""))) for s in vol.frames],
        "skipped_files": [(str(p), r) for p, r in vol.scan.invalid],
        "slice_thickness": vol.slice_thickness})
    return result
