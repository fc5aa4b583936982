"""Raw-data slices as :class:`~mri_unfold.data.KSpaceSample` items (every raw reader's output).

:func:`raw_sample` wraps one slice of stored k-space ``(C, H, W)`` (``H`` readout, ``W``
phase encoding, centred layout) with what the header says — field of view, recon matrix,
trajectory type, geometry — and what the data say: the sampling mask measured from the
non-zero samples (:func:`~mri_unfold.data.sampling.measured_mask`), the width of the fully
sampled centre, whether the slice is undersampled.  :class:`RawSlices` is the data set of a
file's slices, held in memory.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from .errors import DataFileError
from .fastmri_slices import num_low_frequencies_of
from .samples import KSpaceSample, SampleMetadata, collate_samples
from .sampling import measured_mask

__all__ = ["raw_sample", "raw_metadata", "RawSlices", "check_finite", "stack_slices"]


def check_finite(kspace, where: str) -> None:
    """Raise :class:`DataFileError` naming ``where`` when ``kspace`` holds NaN or Inf."""
    t = torch.as_tensor(kspace)
    if not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t)).sum())
        raise DataFileError(f"{where}: k-space holds {bad} NaN/Inf samples")


def raw_sample(kspace, *, path: str | Path, index: int, fov_mm=None, crop_size=None,
               trajectory: str = "cartesian", extras: dict | None = None) -> KSpaceSample:
    """One stored slice as a sample.

    Args:
        kspace: ``(C, H, W)`` complex (numpy or tensor), centred layout.
        path: the file (its name goes to ``metadata.fname``, the path to ``extras["path"]``,
            which keys the ESPIRiT cache).
        index: the slice index within the file.
        fov_mm: ``(readout, phase[, slice])`` field of view of the ``H x W`` matrix in mm;
            the voxel size is ``fov / matrix`` (the third entry is the slice thickness).
        crop_size: the recon matrix ``(h, w)`` (defaults to ``(H, W)``).
        trajectory: ``"cartesian"`` (others are for non-Cartesian readers).
        extras: more metadata (``affine``, counters, ``noise_covariance`` ...).
    Returns:
        :class:`KSpaceSample`: ``kspace`` complex64, ``mask`` ``(H, W)`` float32 measured from
        the data, ``target`` and ``coil_maps`` ``None``.
    Raises:
        DataFileError: not ``(C, H, W)``; NaN/Inf samples.
    """
    path = Path(path)
    where = f"{path} slice {index}"
    k = torch.as_tensor(np.ascontiguousarray(kspace)).to(torch.complex64)
    if k.ndim != 3:
        raise DataFileError(f"{where}: expected k-space (coils, readout, phase), got shape "
                            f"{tuple(k.shape)}")
    check_finite(k, where)
    mask = measured_mask(k)
    h = k.shape[-2]
    centre = mask[h // 2] if bool(mask[h // 2].any()) else mask.amax(0)
    meta = raw_metadata(path, index, tuple(k.shape[-2:]), fov_mm=fov_mm, crop_size=crop_size,
                        trajectory=trajectory, extras=extras)
    meta.num_low_frequencies = num_low_frequencies_of(centre.numpy())
    meta.undersampled = not bool((mask == 1).all())
    return KSpaceSample(kspace=k, mask=mask, target=None, coil_maps=None, metadata=meta)


def raw_metadata(path: str | Path, index: int, matrix: tuple[int, int], *, fov_mm=None,
                 crop_size=None, trajectory: str = "cartesian",
                 extras: dict | None = None) -> SampleMetadata:
    """The metadata of one stored slice of image size ``matrix`` ``(H, W)`` (see
    :func:`raw_sample` for the arguments); the voxel size is ``fov / matrix``."""
    path = Path(path)
    h, w = int(matrix[0]), int(matrix[1])
    fov = voxel = None
    if fov_mm is not None:
        fov = tuple(float(f) for f in fov_mm)
        voxel = (fov[0] / h, fov[1] / w) + fov[2:3]
    return SampleMetadata(fname=path.name, slice=int(index),
                          crop_size=tuple(int(c) for c in (crop_size or (h, w))),
                          fov_mm=fov, voxel_size_mm=voxel, trajectory_type=trajectory,
                          extras={"path": str(path), **(extras or {})})


def stack_slices(kspace: np.ndarray, path: str | Path, info: dict, **kwargs) -> "RawSlices":
    """:class:`RawSlices` of a ``(S, C, H, W)`` complex array (slices, coils, readout,
    phase encoding; centred layout); ``kwargs`` go to :func:`raw_sample`."""
    return RawSlices([raw_sample(kspace[k], path=path, index=k, **kwargs)
                      for k in range(kspace.shape[0])], info)


class RawSlices(Dataset):
    """The slices of one raw file, in memory; items are :class:`KSpaceSample` (copies are
    not needed: transforms never modify their input).

    Args:
        samples: the slices, in file order.
        info: what the reader learned about the file (format, version, counts) for
            ``mri-unfold info``.
    """

    def __init__(self, samples: Sequence[KSpaceSample], info: dict | None = None):
        self.samples = list(samples)
        self.info = dict(info or {})

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> KSpaceSample:
        return self.samples[i]

    @property
    def collate_fn(self):
        """:func:`~mri_unfold.data.collate_samples`."""
        return collate_samples
