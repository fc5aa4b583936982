"""3-D Cartesian scans and readout decoupling: a volume's k-space as 2-D ky–kz problems.

A 3-D scan holds k-space ``(C, KX, KY, KZ)`` (centred layout, ``KX`` the readout).  The
readout is always fully sampled, so a centred inverse DFT along ``kx`` turns the scan into
``X`` independent 2-D problems ``(C, KY, KZ)`` — one per readout position, all with the
same ky–kz mask (:mod:`mri_unfold.operators.fourier3d`).  :class:`ReadoutPositions` is that
view: :meth:`ReadoutPositions.samples` gives the :class:`~mri_unfold.data.KSpaceSample` of
any readout positions (``kspace`` ``(C, KY, KZ)``, ``mask`` ``(KY, KZ)``, ``metadata.slice``
the position), so every 2-D transform, network and baseline of the project runs on 3-D scans
batched over readout positions, and a pipeline can stream them in chunks.

* :class:`KSpaceVolume` — one stored scan (or slab): k-space, its measured ky–kz mask,
  geometry; :func:`readout_mask` refuses a readout that is not fully sampled (partial echo,
  undersampled ``kx``), naming why;
* :class:`DecoupledVolume` — its readout positions (the inverse DFT along ``kx`` done once);
* simulated scans of image volumes stream their positions without ever holding the 3-D
  k-space (:class:`~mri_unfold.data.simulate3d.SimulatedVolume`).

Shapes: k-space ``(C, X, Y, Z)`` complex64 (``X`` readout), masks ``(Y, Z)`` float32, an
optional reference ``(X, Y, Z)`` float32, coil maps ``(C, X, Y, Z)`` complex64.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ..fft import ifftn
from ..memory import require_memory
from .errors import DataFileError
from .prewhiten import whitening_matrix
from .raw_samples import check_finite
from .samples import KSpaceSample, SampleMetadata

__all__ = ["KSpaceVolume", "ReadoutPositions", "DecoupledVolume", "PositionSubset", "readout_mask",
           "raw_volume", "crop_affine_3d"]


def readout_mask(kspace: torch.Tensor, where: str) -> torch.Tensor:
    """The ky–kz mask ``(Y, Z)`` float32 of stored 3-D k-space ``(C, X, Y, Z)``: the
    ``(ky, kz)`` lines holding data.

    Raises:
        DataFileError: a sampled ``(ky, kz)`` line misses readout samples (asymmetric echo,
            partial Fourier or undersampling along ``kx``) — readout decoupling needs every
            ``kx`` of a sampled line; nothing sampled at all.
    """
    sampled = (kspace != 0).any(dim=0)                      # (X, Y, Z)
    lines = sampled.any(dim=0)
    partial = lines & ~sampled.all(dim=0)
    if bool(partial.any()):
        n, total = int(partial.sum()), int(lines.sum())
        per_line = sampled.sum(dim=0)[partial]
        raise DataFileError(
            f"{where}: the readout is undersampled: {n} of {total} sampled ky-kz lines hold "
            f"only {int(per_line.min())}..{int(per_line.max())} of {kspace.shape[1]} kx "
            "samples (asymmetric echo, partial Fourier or undersampling along the readout); "
            "reconstructing readout positions as 2-D ky-kz problems needs the whole readout "
            "of every sampled line")
    if not bool(lines.any()):
        raise DataFileError(f"{where}: the 3-D k-space holds no samples")
    return lines.to(torch.float32)


@dataclass
class KSpaceVolume:
    """One 3-D scan (module doc).

    Attributes:
        kspace: ``(C, X, Y, Z)`` complex64, centred, ``X`` the readout.
        metadata: :class:`~mri_unfold.data.SampleMetadata` (``fname``; ``fov_mm`` and
            ``voxel_size_mm`` ``(x, y, z)``; ``extras["affine"]`` the ``(4, 4)`` RAS affine of
            the ``(X, Y, Z)`` image when the header says; ``extras["recon_shape"]`` the
            ``(x, y, z)`` image kept after oversampling removal).
        target: ``(X, Y, Z)`` float32 reference magnitude or ``None``.
        coil_maps: ``(C, X, Y, Z)`` complex64 or ``None``.
    """

    kspace: torch.Tensor
    metadata: SampleMetadata
    target: torch.Tensor | None = None
    coil_maps: torch.Tensor | None = None
    mask: torch.Tensor = field(init=False)

    def __post_init__(self):
        k = self.kspace
        if not (torch.is_tensor(k) and k.ndim == 4 and k.is_complex()):
            raise ValueError(f"kspace must be a complex (C, X, Y, Z) tensor, got "
                             f"{getattr(k, 'dtype', type(k).__name__)} "
                             f"{tuple(getattr(k, 'shape', ()))}")
        self.mask = readout_mask(k, self.metadata.fname)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(X, Y, Z)``."""
        return tuple(int(s) for s in self.kspace.shape[1:])

    @property
    def num_coils(self) -> int:
        return int(self.kspace.shape[0])


def crop_affine_3d(affine, full, crop) -> np.ndarray:
    """The affine of the centre crop ``crop`` ``(x, y, z)`` of a volume ``full`` ``(X, Y, Z)``
    (each axis starts at ``(N - n) // 2``, as :func:`mri_unfold.image_ops.center_crop`)."""
    a = np.array(affine, np.float64)
    for axis in range(3):
        a[:3, 3] += a[:3, axis] * ((int(full[axis]) - int(crop[axis])) // 2)
    return a


def raw_volume(assembled: dict, path, fov, affine, recon, extras: dict,
               prewhiten: bool) -> KSpaceVolume:
    """A :class:`KSpaceVolume` of a raw reader's assembled slab (``kspace`` ``(C, X, Y, Z)``,
    counters): NaN/Inf refused, prewhitened with ``extras["noise_covariance"]`` when asked,
    the recon matrix ``recon`` ``(x, y, z)`` and the affine of that crop recorded.

    Raises:
        DataFileError: NaN/Inf samples, a noise covariance that does not fit the coils.
    """
    where = f"{path} slab {assembled['slice']}"
    k = torch.from_numpy(np.ascontiguousarray(assembled["kspace"], np.complex64))
    check_finite(k, where)
    ex = {"path": str(path), **extras, "slab": assembled["slice"],
          "repetition": assembled["repetition"], "contrast": assembled["contrast"],
          "recon_shape": tuple(int(r) for r in recon)}
    cov = extras.get("noise_covariance")
    if prewhiten and cov is not None:
        try:
            w = torch.from_numpy(whitening_matrix(np.asarray(cov)).astype(np.complex64))
        except ValueError as e:
            raise DataFileError(f"{where}: {e}") from e
        k = torch.einsum("dc,c...->d...", w, k).contiguous()
        ex["prewhitened"] = True
    full = tuple(int(d) for d in k.shape[1:])
    if affine is not None:
        ex["affine"] = crop_affine_3d(affine, full, recon)
    voxel = None if fov is None else (fov[0] / full[0], fov[1] / full[1], fov[2])
    meta = SampleMetadata(fname=Path(path).name, slice=int(assembled["slice"]),
                          crop_size=(int(recon[1]), int(recon[2])),
                          fov_mm=None if fov is None else tuple(float(f) for f in fov),
                          voxel_size_mm=voxel, extras=ex)
    return KSpaceVolume(k, meta)


class ReadoutPositions:
    """The readout positions of a 3-D scan as 2-D ky–kz samples (module doc).

    Subclasses set :attr:`shape` ``(X, Y, Z)``, :attr:`num_coils`, :attr:`mask` ``(Y, Z)``
    float32, :attr:`fname`, :attr:`crop` ``(y, z)`` (the recon size of a ky–kz plane) and
    implement :meth:`samples`.  :attr:`metadata` (a template for every position) carries the
    scan's geometry.
    """

    shape: tuple[int, int, int]
    num_coils: int
    mask: torch.Tensor
    fname: str
    metadata: SampleMetadata

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def crop(self) -> tuple[int, int]:
        c = self.metadata.crop_size or self.shape[1:]
        return int(c[0]), int(c[1])

    def samples(self, positions) -> list[KSpaceSample]:  # pragma: no cover - abstract
        """The :class:`~mri_unfold.data.KSpaceSample` of each readout position in
        ``positions`` (``kspace`` ``(C, Y, Z)``, ``mask`` ``(Y, Z)``)."""
        raise NotImplementedError

    def chunks(self, size: int):
        """``range`` objects of at most ``size`` consecutive positions covering the scan."""
        if size < 1:
            raise ValueError(f"chunk size must be >= 1, got {size}")
        return [range(s, min(s + size, len(self))) for s in range(0, len(self), size)]

    def _metadata(self, x: int) -> SampleMetadata:
        meta = self.metadata
        return SampleMetadata(
            fname=self.fname, slice=int(x), crop_size=self.crop,
            num_low_frequencies=meta.num_low_frequencies, undersampled=meta.undersampled,
            mask_seed=meta.mask_seed, fov_mm=meta.fov_mm, voxel_size_mm=meta.voxel_size_mm,
            extras={**meta.extras, "readout_position": int(x)})


class DecoupledVolume(ReadoutPositions):
    """The readout positions of a stored :class:`KSpaceVolume` (the centred inverse DFT
    along ``kx`` is done once, in place of a copy; memory checked first).

    Args:
        volume: the scan.
        mask: ``(Y, Z)`` 0/1 retrospective ky–kz mask applied on top of the measured one
            (``None`` keeps the data's sampling).
    Raises:
        DataFileError: a mask of another ky–kz shape (naming both).
    """

    def __init__(self, volume: KSpaceVolume, mask=None, mask_seed: int | None = None):
        c, x, y, z = volume.kspace.shape
        self.shape, self.num_coils = (int(x), int(y), int(z)), int(c)
        self.fname = volume.metadata.fname
        m = volume.mask
        if mask is not None:
            extra = torch.as_tensor(np.asarray(mask, np.float32))
            if tuple(extra.shape) != (y, z):
                raise DataFileError(f"{self.fname}: the mask's ky-kz shape "
                                    f"{tuple(extra.shape)} does not match the scan's "
                                    f"(KY, KZ) = ({y}, {z})")
            m = m * extra
        self.mask = m
        require_memory(8 * c * x * y * z, f"{self.fname}: readout decoupling of a "
                                          f"{c}-coil {x}x{y}x{z} scan")
        k = volume.kspace * m.to(volume.kspace.dtype)
        hybrid = ifftn(k, dims=(1,)).to(torch.complex64)             # (C, X, Y, Z)
        keep = int(volume.metadata.extras.get("recon_shape", self.shape)[0])
        lo = (x - keep) // 2                     # readout positions of the recon matrix
        self.hybrid = hybrid[:, lo:lo + keep]
        self.shape = (keep, int(y), int(z))
        self.maps = None if volume.coil_maps is None else volume.coil_maps[:, lo:lo + keep]
        self.target = None if volume.target is None else volume.target[lo:lo + keep]
        self.metadata = replace(volume.metadata, extras=dict(volume.metadata.extras))
        self.metadata.undersampled = not bool((m == 1).all())
        if mask_seed is not None:
            self.metadata.mask_seed = mask_seed

    def samples(self, positions) -> list[KSpaceSample]:
        out = []
        for x in positions:
            out.append(KSpaceSample(
                kspace=self.hybrid[:, x].contiguous(), mask=self.mask.clone(),
                target=None if self.target is None else self.target[x].clone(),
                coil_maps=None if self.maps is None else self.maps[:, x].contiguous(),
                metadata=self._metadata(x)))
        return out


class PositionSubset(ReadoutPositions):
    """Some readout positions of a scan as a scan of their own (e.g. held-out test positions,
    or a warm-up): position ``i`` is ``scan``'s ``positions[i]``; its samples keep their
    original position in ``metadata.extras["readout_position"]``."""

    def __init__(self, scan: ReadoutPositions, positions):
        self.scan, self.positions = scan, [int(p) for p in positions]
        self.num_coils, self.mask, self.fname = scan.num_coils, scan.mask, scan.fname
        self.metadata = scan.metadata
        self.shape = (len(self.positions), *scan.shape[1:])

    @property
    def crop(self) -> tuple[int, int]:
        return self.scan.crop

    def samples(self, positions) -> list[KSpaceSample]:
        out = self.scan.samples([self.positions[i] for i in positions])
        for i, s in zip(positions, out):
            s.metadata.slice = int(i)
        return out

