"""SIMULATION of MRI k-space from magnitude images (for training on image-only data).

Real k-space has a smooth image phase and several receive coils; image-domain data sets
(PNG brain slices, chest ``.mat`` files, NIfTI magnitude volumes) have neither.  These
helpers *simulate* them — the results are synthetic, not measured data:

* :func:`smooth_random_phase` — a seeded, low-order random polynomial phase map;
* :func:`birdcage_coil_maps` — synthetic birdcage sensitivities from
  :func:`sigpy.mri.birdcage_maps`, normalised so that ``Σ_c |S_c|² = 1``;
* :func:`simulate_kspace` — ``y_c = B F (S_c · image · e^{iφ})`` in the centred layout, as
  a :class:`~mri_unfold.data.samples.KSpaceSample` whose target is the magnitude image.
"""
from __future__ import annotations

import numpy as np
import torch

from ..fft import fft2
from .fastmri_slices import num_low_frequencies_of
from .samples import KSpaceSample, SampleMetadata

__all__ = ["smooth_random_phase", "birdcage_coil_maps", "simulate_kspace"]


def smooth_random_phase(shape: tuple[int, int], *, order: int = 2, max_phase: float = np.pi,
                        seed: int | np.random.Generator | None = None) -> np.ndarray:
    """Random smooth phase map: a polynomial of total degree ``order`` in ``x, y ∈ [-1, 1]``.

    Coefficients are standard normal (from ``seed``: an int or a
    :class:`numpy.random.Generator`; never the global RNG); the map is scaled so that
    ``max |φ| = max_phase``.

    Returns:
        ``(H, W)`` float32 phase in radians.
    """
    if order < 0:
        raise ValueError(f"order must be >= 0, got {order}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    h, w = (int(s) for s in shape)
    yy, xx = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    phase = np.zeros((h, w))
    for i in range(order + 1):
        for j in range(order + 1 - i):
            phase += rng.standard_normal() * xx ** i * yy ** j
    peak = np.abs(phase).max()
    if peak > 0:
        phase *= max_phase / peak
    return phase.astype(np.float32)


def birdcage_coil_maps(num_coils: int, shape: tuple[int, int], radius: float = 1.5) -> np.ndarray:
    """Synthetic birdcage coil sensitivities ``(C, H, W)`` complex64 with ``Σ_c |S_c|² = 1``.

    Args:
        num_coils: number of coils ``C`` (>= 1).
        shape: image ``(H, W)``.
        radius: relative coil radius (sigpy's ``r``; larger = flatter maps).
    """
    import sigpy.mri

    if num_coils < 1:
        raise ValueError(f"num_coils must be >= 1, got {num_coils}")
    s = sigpy.mri.birdcage_maps((int(num_coils), *map(int, shape)), r=radius)
    s = s / np.sqrt((np.abs(s) ** 2).sum(0, keepdims=True))
    return s.astype(np.complex64)


def _as_tensor(value, name: str, device=None) -> torch.Tensor:
    if hasattr(value, "mask") and not torch.is_tensor(value):  # a masks.MaskResult
        value = value.mask
    t = value if torch.is_tensor(value) else torch.as_tensor(np.asarray(value))
    return t.to(device) if device is not None else t


def simulate_kspace(image, mask, coil_maps=None, phase=None, *, fname: str = "simulated",
                    slice_index: int = 0) -> KSpaceSample:
    """SIMULATE undersampled k-space of a magnitude image.

    Args:
        image: ``(H, W)`` real magnitude image (numpy or tensor), or a complex ``(H, W)``
            image (its magnitude is the target).
        mask: ``(H, W)`` 0/1 mask in the centred layout (numpy, tensor or a
            :class:`mri_unfold.masks.MaskResult`).
        coil_maps: optional ``(C, H, W)`` complex sensitivities (e.g.
            :func:`birdcage_coil_maps`); ``None`` = single coil.
        phase: optional ``(H, W)`` phase in radians (e.g. :func:`smooth_random_phase`).
        fname, slice_index: stored in the metadata.

    Returns:
        :class:`KSpaceSample` with ``kspace`` ``(C, H, W)`` complex64 (``C = 1`` without coil
        maps), ``mask`` ``(H, W)`` float32, ``target`` = the magnitude ``(H, W)``
        float32, ``coil_maps`` as given (complex64) and metadata ``extras["simulated"]``.
        Tensors live on ``image``'s device.

    Raises:
        ValueError: shapes that do not match ``(H, W)``, a non-binary mask.
    """
    img = _as_tensor(image, "image")
    if img.ndim != 2:
        raise ValueError(f"image must be a real (H, W) magnitude image or a complex (H, W) "
                         f"image, got {img.dtype} {tuple(img.shape)}")
    x = img.to(torch.complex64)
    img = img.abs().to(torch.float32) if img.is_complex() else img.to(torch.float32)
    hw = tuple(img.shape)
    dev = img.device
    m = _as_tensor(mask, "mask", dev).to(torch.float32)
    if tuple(m.shape) != hw:
        raise ValueError(f"mask shape {tuple(m.shape)} does not match the image shape {hw}")
    if not bool(((m == 0) | (m == 1)).all()):
        raise ValueError("mask must contain only 0 and 1")
    if phase is not None:
        ph = _as_tensor(phase, "phase", dev).to(torch.float32)
        if tuple(ph.shape) != hw:
            raise ValueError(f"phase shape {tuple(ph.shape)} does not match the image shape {hw}")
        x = x * torch.polar(torch.ones_like(ph), ph)
    maps = None
    if coil_maps is not None:
        maps = _as_tensor(coil_maps, "coil_maps", dev).to(torch.complex64)
        if maps.ndim != 3 or tuple(maps.shape[-2:]) != hw:
            raise ValueError(f"coil_maps must have shape (C, {hw[0]}, {hw[1]}), got "
                             f"{tuple(maps.shape)}")
        coil_images = maps * x
    else:
        coil_images = x[None]
    k = fft2(coil_images)
    k = torch.where(m.bool(), k, torch.zeros((), dtype=k.dtype, device=dev))
    nlf = num_low_frequencies_of(m[hw[0] // 2].cpu().numpy())
    meta = SampleMetadata(fname=fname, slice=int(slice_index), max=float(img.max()),
                          crop_size=hw, num_low_frequencies=nlf,
                          undersampled=not bool((m == 1).all()),
                          mask_seed=getattr(mask, "seed", None),
                          extras={"simulated": True, "phase": phase is not None})
    return KSpaceSample(kspace=k, mask=m, target=img.clone(), coil_maps=maps, metadata=meta)
