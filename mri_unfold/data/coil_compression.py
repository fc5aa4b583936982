"""Coil compression: fewer virtual coils that keep most of the signal (SVD / PCA).

Many-channel arrays (15-64 coils) cost time and memory in every operator application.
Coil compression replaces the ``C`` physical coils by ``V < C`` virtual coils, linear
combinations chosen by a singular value decomposition of calibration data:

* **SVD** (Buehrer et al. 2007, Huang et al. 2008): one ``(V, C)`` matrix ``A = Uᴴ[:V]``
  from the SVD of the sampled k-space ``K`` ``(C, samples)`` (or of the fully sampled
  centre); ``k_virtual = A k``.
* **Geometric** (Zhang et al. 2013, "GCC"): after an inverse FFT along the fully sampled
  readout, one matrix per readout position ``x`` from the SVD of that position's
  calibration lines, aligned from one position to the next (orthogonal Procrustes) so the
  virtual coils vary smoothly, then the forward FFT.  Keeps more signal than SVD for the
  same ``V`` when the coil profiles change along the readout.

``V`` is given (``num_coils``) or chosen as the smallest count whose singular values hold
a fraction ``energy`` of the total squared singular values.  Both are linear and act on
the coil images position by position, so the sample's coil maps (if any) are compressed
with the same matrices, and a noise covariance ``Ψ`` in ``extras["noise_covariance"]``
becomes ``A Ψ Aᴴ`` (SVD only; geometric compression drops it).  The input is never
modified.  Layout: k-space ``(C, H, W)``, ``H`` the readout.
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import InvalidValue, UserError
from .samples import KSpaceSample

__all__ = ["CompressCoils", "svd_compression_matrix", "virtual_coil_count"]


def virtual_coil_count(singular_values, energy: float) -> int:
    """The smallest ``V`` with ``Σ_{i<V} s_i² >= energy · Σ s_i²`` (``s`` descending)."""
    s2 = np.asarray(singular_values, np.float64) ** 2
    frac = np.cumsum(s2) / max(float(s2.sum()), np.finfo(np.float64).tiny)
    return int(min(np.searchsorted(frac, energy - 1e-12) + 1, s2.size))


def svd_compression_matrix(calib: torch.Tensor, num_coils: int | None = None,
                           energy: float | None = None) -> tuple[torch.Tensor, np.ndarray]:
    """``(A, s)``: the ``(V, C)`` compression matrix ``Uᴴ[:V]`` of calibration data
    ``calib`` ``(C, N)`` complex and its singular values ``(C,)`` (descending)."""
    u, s, _ = torch.linalg.svd(calib.to(torch.complex128), full_matrices=False)
    sv = s.numpy()
    v = num_coils if num_coils is not None else virtual_coil_count(sv, energy)
    return u[:, :v].conj().T.to(torch.complex64), sv


def _calibration_columns(sample: KSpaceSample) -> torch.Tensor:
    """Phase-encode columns that hold data (``(W',)`` long indices)."""
    cols = torch.nonzero(sample.mask.amax(0) > 0).reshape(-1)
    if cols.numel() == 0:
        raise UserError(f"{sample.where}: coil compression needs sampled k-space; this slice "
                        "is empty")
    return cols


def _idft_readout(k: torch.Tensor, inverse: bool) -> torch.Tensor:
    f = torch.fft.ifft if inverse else torch.fft.fft
    return torch.fft.fftshift(f(torch.fft.ifftshift(k, dim=-2), dim=-2, norm="ortho"), dim=-2)


class CompressCoils:
    """Transform: compress a sample's coils (module doc).

    Args:
        num_coils: virtual coils ``V`` (exactly one of ``num_coils`` / ``energy``).
        energy: keep the fewest coils holding this fraction (0, 1] of the signal energy.
        geometric: per-readout-position matrices (GCC) instead of one SVD matrix.
    Raises:
        InvalidValue: neither or both of ``num_coils``/``energy``, or values out of range.
        UserError (on call): more virtual coils than the sample has, naming the slice.
    """

    def __init__(self, num_coils: int | None = None, *, energy: float | None = None,
                 geometric: bool = False):
        if (num_coils is None) == (energy is None):
            raise InvalidValue("CompressCoils needs exactly one of num_coils or energy")
        if num_coils is not None and int(num_coils) < 1:
            raise InvalidValue(f"CompressCoils: num_coils must be >= 1, got {num_coils}")
        if energy is not None and not 0 < float(energy) <= 1:
            raise InvalidValue(f"CompressCoils: energy must be in (0, 1], got {energy}")
        self.num_coils = None if num_coils is None else int(num_coils)
        self.energy = None if energy is None else float(energy)
        self.geometric = bool(geometric)

    def _check(self, sample: KSpaceSample) -> None:
        if not sample.is_cartesian:
            raise UserError(f"{sample.where}: coil compression is implemented for Cartesian "
                            "k-space only")
        if self.num_coils is not None and self.num_coils > sample.num_coils:
            raise UserError(f"{sample.where}: cannot compress {sample.num_coils} coils to "
                            f"{self.num_coils}")

    def __call__(self, sample: KSpaceSample) -> KSpaceSample:
        self._check(sample)
        k = sample.kspace
        cols = _calibration_columns(sample).to(k.device)
        if not self.geometric:
            a, s = svd_compression_matrix(k[:, :, cols].reshape(k.shape[0], -1).cpu(),
                                          self.num_coils, self.energy)
            a = a.to(k.device)
            apply = lambda t: torch.einsum("vc,c...->v...", a, t).contiguous()  # noqa: E731
            new = sample.replace(kspace=apply(k), coil_maps=None if sample.coil_maps is None
                                 else apply(sample.coil_maps))
            cov = sample.metadata.extras.get("noise_covariance")
            if cov is not None:
                an = a.cpu().numpy().astype(np.complex128)
                new.metadata.extras["noise_covariance"] = an @ np.asarray(cov) @ an.conj().T
        else:
            mats, s = self._geometric_matrices(_idft_readout(k, True)[:, :, cols].cpu())
            mats = mats.to(k.device)

            def apply(t, image_domain):
                hyb = t if image_domain else _idft_readout(t, True)
                out = torch.einsum("xvc,cx...->vx...", mats, hyb)
                return (out if image_domain else _idft_readout(out, False)).contiguous()

            new = sample.replace(kspace=apply(k, False),
                                 coil_maps=None if sample.coil_maps is None
                                 else apply(sample.coil_maps, True))
            new.metadata.extras.pop("noise_covariance", None)
        new.metadata.extras["coil_compression"] = {
            "method": "geometric" if self.geometric else "svd", "from": sample.num_coils,
            "to": int(new.num_coils),
            "energy_kept": float((s[:new.num_coils] ** 2).sum() / max((s ** 2).sum(), 1e-300))}
        return new

    def _geometric_matrices(self, hybrid: torch.Tensor) -> tuple[torch.Tensor, np.ndarray]:
        """``(H, V, C)`` aligned matrices from hybrid-space calibration ``(C, H, W')``; the
        singular values of the whole calibration set decide ``V`` when ``energy`` is set."""
        c, h, _ = hybrid.shape
        _, s_all = svd_compression_matrix(hybrid.reshape(c, -1), self.num_coils, self.energy)
        v = self.num_coils or virtual_coil_count(s_all, self.energy)
        mats = torch.empty((h, v, c), dtype=torch.complex64)
        s_acc = np.zeros(c)
        for x in range(h):
            a, s = svd_compression_matrix(hybrid[:, x, :], v)
            s_acc += s ** 2
            if x > 0:  # align with the previous position: P = argmin ||P a - a_prev||, P unitary
                u, _, vh = torch.linalg.svd(a @ mats[x - 1].conj().T)
                a = (u @ vh).conj().T @ a
            mats[x] = a
        return mats, np.sqrt(s_acc)

    def __repr__(self) -> str:
        what = f"num_coils={self.num_coils}" if self.num_coils else f"energy={self.energy}"
        return f"CompressCoils({what}, geometric={self.geometric})"
