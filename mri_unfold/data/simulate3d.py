"""SIMULATION of 3-D k-space from an image volume, streamed over readout positions.

An image volume ``(X, Y, Z)`` (a NIfTI magnitude volume, ``X`` the readout axis) becomes a
simulated 3-D scan ``k_c = B F₃ (S_c · v · e^{iφ})`` in the volume's own voxel grid, with

* ``φ`` a seeded smooth random phase: a polynomial of total degree 2 in the normalised
  coordinates ``x, y, z ∈ [-1, 1)`` scaled to a peak of ``max_phase`` radians (real scans
  have such slowly varying phase);
* ``S_c`` birdcage sensitivities from :func:`sigpy.mri.birdcage_maps` in 3-D (two rings of
  ``C / 2`` coils around the array axes 0 and 1 when ``C >= 4``, one ring otherwise), computed
  on a coarse ``48³`` grid and trilinearly interpolated to the voxels asked for (birdcage
  fields are smooth), normalised to ``Σ_c |S_c|² = 1``;
* ``B`` a ky–kz mask (the readout fully sampled), the same at every ``kx``;
* optional white complex Gaussian noise of standard deviation ``noise_std`` (relative to the
  volume's peak), seeded per readout position.

Because the inverse DFT along ``kx`` commutes with ``B``, readout position ``x`` of the
decoupled scan is ``B F_yz (S_c[x] · v[x] · e^{iφ[x]})``: :class:`SimulatedVolume` computes
exactly that for the positions asked for (checked against the 3-D operator in the tests),
so the 3-D k-space is never held in memory.  The results are synthetic, not measured data.
"""
from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from ..fft import fft2
from .samples import KSpaceSample, SampleMetadata
from .volume3d import ReadoutPositions

__all__ = ["SimulatedVolume", "birdcage_maps_3d", "smooth_phase_3d"]

#: Side of the coarse grid the birdcage maps are computed on.
COARSE_GRID = 48


def _coords(n: int, idx) -> np.ndarray:
    """Normalised coordinates ``(i - n/2) / (n/2)`` of indices ``idx`` (sigpy's convention)."""
    return (np.asarray(idx, np.float64) - n / 2.0) / (n / 2.0)


@functools.lru_cache(maxsize=4)
def _coarse_birdcage(num_coils: int) -> np.ndarray:
    """sigpy's 3-D birdcage maps on the coarse grid as ``(C, X, Y, Z)`` complex128: sigpy's
    are ``(C, nz, ny, nx)`` with the rings around ``(ny, nx)``; ours are around the array
    axes 0 and 1 with the ring axis along axis 2."""
    import sigpy.mri  # noqa: PLC0415  (optional heavy dependency)

    g = COARSE_GRID
    per_ring = -(-num_coils // 2) if num_coils >= 4 else num_coils
    coarse = sigpy.mri.birdcage_maps((num_coils, g, g, g), nzz=per_ring)
    out = np.ascontiguousarray(np.transpose(coarse, (0, 3, 2, 1)))
    out.flags.writeable = False
    return out


def birdcage_maps_3d(num_coils: int, shape, positions=None) -> torch.Tensor:
    """Birdcage sensitivities ``(C, P, Y, Z)`` complex64 of readout positions ``positions``
    (default all ``X``) of a volume ``shape`` ``(X, Y, Z)``, ``Σ_c |S_c|² = 1`` (module doc).

    Raises:
        ValueError: ``num_coils < 1``.
    """
    if num_coils < 1:
        raise ValueError(f"num_coils must be >= 1, got {num_coils}")
    x, y, z = (int(s) for s in shape)
    g = COARSE_GRID
    coarse = _coarse_birdcage(int(num_coils))
    pos = np.arange(x) if positions is None else np.asarray(list(positions))
    # grid_sample's normalised coordinate of voxel i along an axis of n voxels: the coarse
    # index j* with (j* - g/2)/(g/2) = (i - n/2)/(n/2), i.e. j* = g/2 (u + 1)
    def grid(n, idx):
        return torch.from_numpy(2 * (g / 2 * (_coords(n, idx) + 1)) / (g - 1) - 1)

    gx, gy, gz = grid(x, pos), grid(y, np.arange(y)), grid(z, np.arange(z))
    pts = torch.stack(torch.meshgrid(gx, gy, gz, indexing="ij"), dim=-1)   # (P, Y, Z, 3)
    pts = pts[..., [2, 1, 0]].unsqueeze(0)       # grid_sample wants (z, y, x) = (W, H, D)
    vol = torch.from_numpy(np.concatenate([coarse.real, coarse.imag]))[None]  # (1, 2C, X, Y, Z)
    out = F.grid_sample(vol, pts, mode="bilinear", padding_mode="border",
                        align_corners=True)[0]                              # (2C, P, Y, Z)
    maps = torch.complex(out[:num_coils], out[num_coils:])
    maps = maps / maps.abs().square().sum(0, keepdim=True).sqrt().clamp_min(1e-12)
    return maps.to(torch.complex64)


def smooth_phase_3d(shape, positions, coefficients: np.ndarray, max_phase: float,
                    peak: float) -> torch.Tensor:
    """The phase ``(P, Y, Z)`` float32 of readout positions ``positions``: the degree-2
    polynomial with ``coefficients`` (10 values: 1, x, y, z, x², y², z², xy, xz, yz) scaled by
    ``max_phase / peak``."""
    x, y, z = (int(s) for s in shape)
    u = _coords(x, list(positions))[:, None, None]
    v = _coords(y, np.arange(y))[None, :, None]
    w = _coords(z, np.arange(z))[None, None, :]
    terms = (1.0, u, v, w, u * u, v * v, w * w, u * v, u * w, v * w)
    phase = sum(c * t for c, t in zip(coefficients, terms))
    phase = np.broadcast_to(phase, (len(u), y, z)) * (max_phase / peak if peak > 0 else 0.0)
    return torch.from_numpy(np.ascontiguousarray(phase, dtype=np.float32))


class SimulatedVolume(ReadoutPositions):
    """A simulated 3-D scan of ``volume`` streamed over readout positions (module doc).

    Args:
        volume: ``(X, Y, Z)`` float32 magnitude (or complex64) image, ``X`` the readout.
        mask: ``(Y, Z)`` 0/1 ky–kz mask, centred layout (all ones: fully sampled).
        coils: number of birdcage coils (1: single coil, no maps).
        seed: seeds the phase (and the noise).
        max_phase: peak of the smooth phase in radians (0: none; ignored for complex input).
        noise_std: complex Gaussian noise per k-space sample, relative to the volume's peak.
        fname: name in the samples' metadata; ``metadata``: geometry to carry (affine ...).

    Items (:meth:`samples`): ``kspace`` ``(C, Y, Z)`` complex64 in the volume's intensity
    scale divided by its peak (``metadata.scale`` = the peak), ``mask`` ``(Y, Z)``,
    ``target`` ``(Y, Z)`` the normalised magnitude, ``coil_maps`` the true maps ``(C, Y, Z)``
    (``None`` single-coil).
    Raises:
        ValueError: a mask of another ky–kz shape, an all-zero volume, ``coils < 1``.
    """

    def __init__(self, volume: np.ndarray, mask, *, coils: int = 8, seed: int = 0,
                 max_phase: float = np.pi, noise_std: float = 0.0, fname: str = "simulated",
                 metadata: SampleMetadata | None = None, mask_seed: int | None = None):
        vol = np.asarray(volume)
        if vol.ndim != 3:
            raise ValueError(f"volume must be (X, Y, Z), got shape {vol.shape}")
        self.shape = tuple(int(s) for s in vol.shape)
        m = torch.as_tensor(np.asarray(mask, np.float32))
        if tuple(m.shape) != self.shape[1:]:
            raise ValueError(f"{fname}: the mask's ky-kz shape {tuple(m.shape)} does not match "
                             f"the volume's (KY, KZ) = {self.shape[1:]}")
        if coils < 1:
            raise ValueError(f"coils must be >= 1, got {coils}")
        self.peak = float(np.abs(vol).max())
        if self.peak == 0.0:
            raise ValueError(f"{fname}: the volume is all zeros")
        self.volume, self.mask, self.num_coils = vol, m, int(coils)
        self.fname, self.seed, self.noise_std = fname, int(seed), float(noise_std)
        rng = np.random.default_rng([self.seed, 3])
        self.phase_coefficients = rng.standard_normal(10)
        self.max_phase = 0.0 if np.iscomplexobj(vol) else float(max_phase)
        self._phase_peak = self._phase_peak_estimate()
        self.metadata = metadata or SampleMetadata(fname=fname, slice=0)
        self.metadata.crop_size = self.metadata.crop_size or self.shape[1:]
        self.metadata.undersampled = not bool((m == 1).all())
        self.metadata.mask_seed = mask_seed
        self.metadata.extras.update({"simulated": True, "coils": self.num_coils})

    def _phase_peak_estimate(self) -> float:
        """``max |polynomial|`` over the volume, on a 32³ sub-grid of its voxels."""
        idx = [np.linspace(0, n - 1, min(n, 32)).round().astype(int) for n in self.shape]
        u, v, w = (_coords(n, i) for n, i in zip(self.shape, idx))
        u, v, w = u[:, None, None], v[None, :, None], w[None, None, :]
        terms = (1.0, u, v, w, u * u, v * v, w * w, u * v, u * w, v * w)
        return float(np.abs(sum(c * t for c, t in zip(self.phase_coefficients, terms))).max())

    def images(self, positions) -> torch.Tensor:
        """The simulated complex images ``(P, Y, Z)`` complex64 (normalised to peak 1)."""
        pos = list(positions)
        img = torch.from_numpy(np.ascontiguousarray(self.volume[pos])) / np.float32(self.peak)
        img = img.to(torch.complex64)
        if self.max_phase > 0:
            ph = smooth_phase_3d(self.shape, pos, self.phase_coefficients, self.max_phase,
                                 self._phase_peak)
            img = img * torch.polar(torch.ones_like(ph), ph)
        return img

    def coil_maps(self, positions) -> torch.Tensor | None:
        """True maps ``(C, P, Y, Z)`` complex64 (``None`` single-coil)."""
        if self.num_coils == 1:
            return None
        return birdcage_maps_3d(self.num_coils, self.shape, positions)

    def samples(self, positions) -> list[KSpaceSample]:
        pos = list(positions)
        img = self.images(pos)                                          # (P, Y, Z)
        maps = self.coil_maps(pos)
        coil_imgs = img[None] if maps is None else maps * img[None]     # (C, P, Y, Z)
        k = fft2(coil_imgs.transpose(0, 1))                             # (P, C, Y, Z)
        if self.noise_std > 0:
            for i, x in enumerate(pos):
                g = torch.Generator().manual_seed(self.seed * 1_000_003 + x)
                noise = torch.randn(k.shape[1:], dtype=torch.complex64, generator=g)
                k[i] += noise * self.noise_std
        k = torch.where(self.mask.bool(), k, torch.zeros((), dtype=k.dtype))
        out = []
        for i, x in enumerate(pos):
            meta = self._metadata(x)
            meta.scale = self.peak
            out.append(KSpaceSample(
                kspace=k[i].contiguous(), mask=self.mask.clone(), target=img[i].abs(),
                coil_maps=None if maps is None else maps[:, i].contiguous(), metadata=meta))
        return out
