"""Raw-data slices as :class:`~mri_unfold.data.KSpaceSample` items (every raw reader's output).

:func:`raw_sample` wraps one slice of stored k-space ``(C, H, W)`` (``H`` readout, ``W``
phase encoding, centred layout) with what the header says — field of view, recon matrix,
trajectory type, geometry — and what the data say: the sampling mask measured from the
non-zero samples (:func:`~mri_unfold.data.sampling.measured_mask`), the width of the fully
sampled centre, whether the slice is undersampled.  :class:`RawSlices` is the data set of a
file's slices, held in memory.

:func:`slices_from_readouts` is the one Cartesian assembly of every scanner reader (ISMRMRD
files, twix files, the ISMRMRD stream of :mod:`mri_unfold.serving`): readouts placed by their
counters (:func:`~mri_unfold.data.raw_assembly.assemble`), each slice wrapped by
:func:`raw_sample` with its counters and the stack's affine, then prewhitened with the noise
covariance.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from .errors import DataFileError
from .fastmri_slices import num_low_frequencies_of
from .geometry import SliceGeometry, stack_affine
from .prewhiten import Prewhiten
from .raw_assembly import Encoding, Readouts, assemble
from .samples import KSpaceSample, SampleMetadata, collate_samples
from .sampling import measured_mask

__all__ = ["raw_sample", "raw_metadata", "RawSlices", "check_finite", "stack_slices",
           "slices_from_readouts"]


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


def slices_from_readouts(readouts: Readouts, enc: Encoding, *, path: str | Path, fov_mm=None,
                         crop_size=None,
                         geometry: Callable[[dict], SliceGeometry | None] | None = None,
                         extras: dict | None = None, covariance=None, prewhiten: bool = True,
                         first_index: int = 0) -> list[KSpaceSample]:
    """The Cartesian slices of an image scan's readouts (module doc).

    Args:
        readouts / enc: the image scan and its encoded matrix
            (:func:`~mri_unfold.data.raw_assembly.assemble`).
        path: the file (or stream) name, for metadata and error messages.
        fov_mm: field of view of the assembled ``(readout_keep, lines)`` matrix and the slice
            thickness, or None when the header has none (then no affine).
        crop_size: the recon matrix (default: the assembled matrix).
        geometry: one slice dict of ``assemble`` -> its :class:`SliceGeometry` (None when
            unknown); the affine stacks the slices of the first repetition and contrast.
        extras: metadata of every slice (format, encoded matrix ...).
        covariance: ``(C, C)`` noise covariance (kept in ``extras["noise_covariance"]``),
            or None.
        prewhiten: whiten the coils with ``covariance`` when there is one.
        first_index: ``metadata.slice`` of the first slice.
    Returns:
        One :class:`KSpaceSample` per (repetition, contrast, slice, partition), in that order.
    Raises:
        DataFileError naming ``path``: as :func:`assemble` and :func:`raw_sample`.
    """
    slices = assemble(readouts, enc, str(path))
    affine = None
    if geometry is not None and fov_mm is not None:
        first = [geometry(s) for s in slices
                 if (s["repetition"], s["contrast"]) == (slices[0]["repetition"],
                                                         slices[0]["contrast"])]
        matrix = (enc.readout_keep, enc.lines)
        if all(g is not None for g in first):
            affine = stack_affine(first, (fov_mm[0] / matrix[0], fov_mm[1] / matrix[1],
                                          fov_mm[2]), matrix)
    base = dict(extras or {})
    if covariance is not None:
        base["noise_covariance"] = covariance
    out = []
    for k, s in enumerate(slices):
        ex = {**base, **{c: s[c] for c in ("repetition", "contrast", "partition")},
              "slice_counter": s["slice"]}
        if affine is not None:
            ex["affine"] = affine
        out.append(raw_sample(s["kspace"], path=path, index=first_index + k, fov_mm=fov_mm,
                              crop_size=crop_size, extras=ex))
    if prewhiten and covariance is not None:
        white = Prewhiten()
        out = [white(s) for s in out]
    return out


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
