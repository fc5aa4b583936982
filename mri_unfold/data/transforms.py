"""Small composable transforms ``KSpaceSample -> KSpaceSample`` for MRI training/evaluation.

Typical fastMRI pipeline (fully sampled training data)::

    Compose([CropToRecon(), ApplyMask("random", acceleration=4), Normalize()])

* :class:`CropToRecon` — centre-crop the coil *images* to ``metadata.crop_size`` (the
  target / ISMRMRD recon size, e.g. 320x320 for knee) and re-transform to k-space, so
  k-space, mask, target and reconstructions all share one size.  Fully sampled k-space
  only: cropping undersampled k-space in the image domain would destroy the sampling
  pattern (evaluate on the full size and crop the output instead).
* :class:`ApplyMask` — draw a mask with :func:`mri_unfold.masks.make_mask` (seeded from
  the file name, so every slice of a volume gets the same mask, as fastMRI does) and zero
  the unsampled k-space.  Files that are already undersampled keep their own mask.
* :class:`Normalize` — divide k-space and target by a scale (by default the maximum of
  the zero-filled magnitude / RSS image, available at test time); recorded in
  ``metadata.scale``.

* :class:`RequireCoilMaps` — refuse a sample whose coil maps are all zero (ESPIRiT found
  no sensitivity, e.g. a calibration region too small for its crop threshold).
* :class:`AttachTrainingImage` — run a transform and attach the complex training image of
  the *input* (fully sampled) k-space, coil-combined with the output's maps by the
  operator's adjoint and divided by the output's normalisation scale.

Coil-map estimation lives in :mod:`mri_unfold.data.espirit` (:class:`EstimateCoilMaps`).
All transforms return new samples and never modify their input.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from ..errors import UserError
from ..fft import fft2, ifft2
from ..image_ops import center_crop, rss
from ..masks import make_mask
from ..operators import MultiCoilFourier, SingleCoilFourier
from .errors import DataFileError
from .fastmri_slices import num_low_frequencies_of, stable_seed
from .samples import KSpaceSample

__all__ = ["Compose", "CropToRecon", "ApplyMask", "Normalize", "zero_filled_image",
           "fastmri_transform", "RequireCoilMaps", "AttachTrainingImage", "combined_image"]


class Compose:
    """Apply transforms in order (each ``KSpaceSample -> KSpaceSample``)."""

    def __init__(self, transforms: Sequence[Callable[[KSpaceSample], KSpaceSample]]):
        self.transforms = list(transforms)

    def __call__(self, sample: KSpaceSample) -> KSpaceSample:
        for t in self.transforms:
            sample = t(sample)
        return sample

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"


def zero_filled_image(sample: KSpaceSample) -> torch.Tensor:
    """Zero-filled magnitude ``(H, W)`` float32: ``|F^H y|`` (single-coil) or its RSS."""
    return rss(ifft2(sample.kspace), dim=0)


def _where(fname: str, sl: int) -> str:
    return f"{fname} slice {sl}"


class CropToRecon:
    """Centre-crop the coil images to ``metadata.crop_size`` and return to k-space.

    ``kspace`` ``(C, H, W)`` -> ``(C, h, w)`` (centred FFT, fastMRI crop convention); the
    mask becomes all ones ``(h, w)``; ``coil_maps`` are cropped too; the target is
    unchanged (fastMRI targets already have the crop size).

    Args:
        size: override ``(h, w)``; default ``metadata.crop_size``.  Clamped to the k-space
            size.

    Raises:
        DataFileError: the sample is already undersampled (names file and slice).
    """

    def __init__(self, size: tuple[int, int] | None = None):
        self.size = None if size is None else (int(size[0]), int(size[1]))

    def __call__(self, sample: KSpaceSample) -> KSpaceSample:
        meta = sample.metadata
        if meta.undersampled or not bool((sample.mask == 1).all()):
            raise DataFileError(
                f"{_where(meta.fname, meta.slice)}: CropToRecon needs fully sampled k-space; "
                "this k-space is undersampled — reconstruct at full size and centre-crop the "
                f"output to metadata.crop_size={meta.crop_size} instead")
        h, w = sample.kspace.shape[-2:]
        size = self.size or meta.crop_size or (h, w)
        size = (min(size[0], h), min(size[1], w))
        img = center_crop(ifft2(sample.kspace), size)
        maps = None if sample.coil_maps is None else center_crop(sample.coil_maps, size)
        new = sample.replace(kspace=fft2(img).contiguous(),
                             mask=torch.ones(size, dtype=torch.float32,
                                             device=sample.kspace.device),
                             coil_maps=None if maps is None else maps.contiguous())
        new.metadata.crop_size = size
        new.metadata.extras["cropped_from"] = (int(h), int(w))
        return new


class ApplyMask:
    """Undersample k-space with a mask from :mod:`mri_unfold.masks` or a fixed mask.

    Exactly one of ``kind`` (mask kind for :func:`mri_unfold.masks.make_mask`) or ``mask``
    (a fixed ``(H, W)`` 0/1 array in the centred layout) must be given.

    The random seed of ``kind`` masks is ``stable_seed(metadata.fname, base_seed)``: the
    same mask for every slice of a volume, a different one for each volume, reproducible
    across runs (``metadata.mask_seed`` records it).  When the k-space still has its
    fastMRI zero-padded columns (width equal to the header's encoding width), columns
    outside ``[padding_left, padding_right)`` are removed from the mask, as fastMRI does.
    Samples whose file was already undersampled keep the file's mask.

    With ``seed`` instead, every file gets the mask of exactly that seed: the mask of a scan
    then depends on the seed only, never on the file's name (``mri-unfold recon``).

    Args:
        kind: e.g. ``"random"``, ``"equispaced"``, ``"magic"`` (fastMRI column masks).
        acceleration / ratio / center_fraction: passed to ``make_mask``.
        base_seed: mixed into the per-file seed (change it for another set of masks).
        seed: the seed of every file's mask (the name does not enter), or ``None``.
        mask: fixed mask ``(H, W)`` (numpy or tensor) used for every sample.

    Raises:
        ValueError: both or neither of ``kind``/``mask``; a mask whose shape differs from the
            k-space ``(H, W)`` (naming the file and both shapes).
    """

    def __init__(self, kind: str | None = None, *, acceleration: float | None = None,
                 ratio: float | None = None, center_fraction: float | None = None,
                 base_seed: int = 0, seed: int | None = None, mask=None):
        if (kind is None) == (mask is None):
            raise ValueError("ApplyMask needs exactly one of kind (a mask kind for "
                             "mri_unfold.masks.make_mask) or mask (a fixed (H, W) array)")
        self.kind = kind
        self.options = {"acceleration": acceleration, "ratio": ratio,
                        "center_fraction": center_fraction}
        self.base_seed = int(base_seed)
        self.seed = None if seed is None else int(seed)
        self.fixed = None if mask is None else torch.as_tensor(np.asarray(mask, np.float32))
        if self.fixed is not None and self.fixed.ndim != 2:
            raise ValueError(f"ApplyMask: mask must be 2-D (H, W), got shape "
                             f"{tuple(self.fixed.shape)}")

    def _draw(self, shape: tuple[int, int], fname: str):
        if self.fixed is not None:
            return self.fixed, None, None
        seed = stable_seed(fname, self.base_seed) if self.seed is None else self.seed
        try:
            res = make_mask(self.kind, shape, seed=seed, **self.options)
        except ValueError as e:
            raise DataFileError(f"{fname}: cannot make the {self.kind!r} mask for k-space of "
                                f"size {tuple(shape)}: {e}") from e
        return torch.as_tensor(np.asarray(res.mask, np.float32)), res.num_low_frequencies, seed

    def __call__(self, sample: KSpaceSample) -> KSpaceSample:
        meta = sample.metadata
        if meta.undersampled:
            return sample.replace()
        h, w = sample.kspace.shape[-2:]
        mask, nlf, seed = self._draw((h, w), meta.fname)
        if tuple(mask.shape) != (h, w):
            raise DataFileError(f"{_where(meta.fname, meta.slice)}: mask shape "
                             f"{tuple(mask.shape)} does not match the k-space shape {(h, w)}")
        enc = meta.extras.get("encoding_size")
        if enc is not None and "padding_left" in meta.extras and int(enc[1]) == w:
            mask = mask.clone()
            mask[:, : int(meta.extras["padding_left"])] = 0
            mask[:, int(meta.extras["padding_right"]):] = 0
        mask = mask.to(sample.kspace.device)
        if nlf is None:
            nlf = num_low_frequencies_of(mask[h // 2].cpu().numpy())
        kspace = torch.where(mask.bool(), sample.kspace, torch.zeros((), dtype=sample.kspace.dtype,
                                                                     device=mask.device))
        new = sample.replace(kspace=kspace, mask=mask)
        new.metadata.undersampled = True
        new.metadata.num_low_frequencies = int(nlf)
        new.metadata.mask_seed = seed
        if seed is not None:
            new.metadata.extras["mask_seed_source"] = (
                "the given seed, independent of the file name" if self.seed is not None else
                f"derived from the file name {meta.fname!r} and the base seed {self.base_seed}")
        return new


class Normalize:
    """Divide k-space and target by a per-slice scale (recorded in ``metadata.scale``).

    Args:
        by: ``"zero_filled_max"`` (default; max of :func:`zero_filled_image`),
            ``"volume_max"`` (fastMRI attribute ``max``, the target volume's maximum — not
            available for test files) or ``"none"``.
        eps: scales below ``eps`` are replaced by 1 (all-zero slices).
    """

    METHODS = ("zero_filled_max", "volume_max", "none")

    def __init__(self, by: str = "zero_filled_max", eps: float = 1e-12):
        if by not in self.METHODS:
            raise ValueError(f"Normalize: by must be one of {self.METHODS}, got {by!r}")
        self.by, self.eps = by, float(eps)

    def __call__(self, sample: KSpaceSample) -> KSpaceSample:
        meta = sample.metadata
        if self.by == "none":
            scale = 1.0
        elif self.by == "volume_max":
            if meta.max is None:
                raise ValueError(f"{_where(meta.fname, meta.slice)}: Normalize(by='volume_max')"
                                 " needs the file attribute 'max'; use by='zero_filled_max'")
            scale = float(meta.max)
        else:
            scale = float(zero_filled_image(sample).max())
        if not np.isfinite(scale) or scale < self.eps:
            scale = 1.0
        new = sample.replace(kspace=sample.kspace / scale,
                             target=None if sample.target is None else sample.target / scale)
        new.metadata.scale = meta.scale * scale
        if meta.max is not None:
            new.metadata.max = meta.max / scale
        return new


def fastmri_transform(kind: str | None = "random", *, acceleration: float = 4.0,
                      center_fraction: float | None = None, crop: bool = True,
                      normalize: str = "zero_filled_max", base_seed: int = 0,
                      coil_maps=None) -> Compose:
    """The usual training pipeline: ``[CropToRecon] -> ApplyMask -> [coil maps] -> Normalize``.

    Args:
        kind: mask kind (``None`` to keep the data as is, e.g. undersampled test files).
        crop: include :class:`CropToRecon` (fully sampled data only).
        coil_maps: optional transform adding coil maps (e.g.
            :class:`mri_unfold.data.espirit.EstimateCoilMaps`), run after masking.
    """
    steps: list = [CropToRecon()] if crop else []
    if kind is not None:
        steps.append(ApplyMask(kind, acceleration=acceleration, center_fraction=center_fraction,
                               base_seed=base_seed))
    if coil_maps is not None:
        steps.append(coil_maps)
    steps.append(Normalize(normalize))
    return Compose(steps)


class RequireCoilMaps:
    """Refuse a sample whose coil maps are missing or all zero.

    Raises:
        UserError: naming the file and slice, with the hint to lower the ESPIRiT crop
            threshold (``espirit_crop``; 0 keeps the maps everywhere).
    """

    def __call__(self, sample: KSpaceSample) -> KSpaceSample:
        maps = sample.coil_maps
        if maps is None or not bool(maps.abs().amax() > 0):
            raise UserError(f"{sample.where}: ESPIRiT found no coil sensitivity (calibration "
                            "region too small?); lower the ESPIRiT crop threshold "
                            "(espirit_crop; 0 keeps the maps everywhere)")
        return sample


def combined_image(kspace: torch.Tensor, coil_maps: torch.Tensor | None) -> torch.Tensor:
    """The coil-combined complex image ``Φ_full^H k`` of fully sampled k-space: the adjoint of
    the sample's Fourier operator with an all-ones mask (``F^H k`` single-coil,
    ``Σ_c conj(S_c) F^H k_c`` with maps).

    Args:
        kspace: ``(C, H, W)`` complex, centred layout.
        coil_maps: ``(C, H, W)`` complex or ``None`` (single-coil, ``C == 1``).
    Returns:
        ``(1, H, W)`` complex64, contiguous.
    """
    ones = torch.ones(kspace.shape[-2:], dtype=torch.bool, device=kspace.device)
    op = SingleCoilFourier(ones) if coil_maps is None else MultiCoilFourier(ones, coil_maps)
    return op.adjoint(kspace[None])[0].to(torch.complex64).contiguous()


class AttachTrainingImage:
    """``transform`` plus the training target: the coil-combined image of the *input*
    (fully sampled) k-space, in the output's intensity scale.

    ``out.image = combined_image(full.kspace, out.coil_maps) / (out.scale / full.scale)``.

    Raises:
        UserError: the input is already undersampled (a training image needs fully sampled
            k-space; names the file).
    """

    def __init__(self, transform: Callable[[KSpaceSample], KSpaceSample]):
        self.transform = transform

    def __call__(self, sample: KSpaceSample) -> KSpaceSample:
        if sample.metadata.undersampled:
            raise UserError(f"{sample.metadata.fname}: k-space is already undersampled (the "
                            "file has a 'mask' dataset); training needs fully sampled k-space")
        out = self.transform(sample)
        ratio = out.metadata.scale / sample.metadata.scale
        out.image = combined_image(sample.kspace / ratio, out.coil_maps)
        return out

    def __repr__(self) -> str:
        return f"AttachTrainingImage({self.transform!r})"
