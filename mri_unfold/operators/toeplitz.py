"""Toeplitz embedding of the NUFFT normal operator ``F^H W F``.

For the type-2 NUFFT ``F`` of :mod:`.nufft` (image ``(H, W)``, frequencies ``ω_k``) and
non-negative weights ``w_k``, ``(F^H W F x)[n] = Σ_{n'} p(n - n') x[n']`` with the point
spread function ``p(d) = (H W)^-1 Σ_k w_k exp(i ω_k · d)``, ``d ∈ [-(H-1), H-1] ×
[-(W-1), W-1]``: a 2-D Toeplitz (convolution) operator.  Embedded in a circulant on the 2×
grid ``(2H, 2W)`` it is ``crop(IFFT(K̂ · FFT(pad(x))))`` with ``K̂ = FFT(p)`` — real,
because ``p(-d) = conj(p(d))`` for real weights.  ``p`` is one type-1 NUFFT of the weights
on the 2× grid (computed once per trajectory and weights, accurate to the NUFFT's ``eps``),
after which every normal costs two FFTs of the 2× grid per coil and no interpolation.

Shapes: weights ``(N | 1, K)`` real, ``omega`` ``(N | 1, K, 2)`` radians; kernel
``(N | 1, 1, 2H, 2W)`` real (float32 for complex64 data, float64 for complex128); images
``(N, C, H, W)`` complex.  3-D (a 3-D radial "kooshball" or any 3-D trajectory): ``omega``
``(N | 1, K, 3)``, kernel ``(N | 1, 1, 2X, 2Y, 2Z)``, images ``(N, C, X, Y, Z)`` — the same
embedding on the 8× larger grid.
"""
from __future__ import annotations

import math

import torch

from .nufft import PlanCache, nufft1

__all__ = ["toeplitz_kernel", "apply_toeplitz"]


def toeplitz_kernel(omega: torch.Tensor, weights: torch.Tensor, shape: tuple[int, ...], *,
                    eps: float | None = None, backend: str = "auto",
                    cache: PlanCache | None = None) -> torch.Tensor:
    """The real Fourier-domain kernel ``K̂`` ``(N | 1, 1, 2H, 2W)`` of ``F^H diag(w) F``
    (volumes ``(X, Y, Z)``: ``(N | 1, 1, 2X, 2Y, 2Z)``, the same construction in 3-D).

    Args:
        omega: ``(N | 1, K, d)`` frequencies in radians (per pixel of the image ``shape``).
        weights: ``(N | 1, K)`` non-negative real weights (density compensation × mask;
            all ones for the plain normal).
        shape: the image ``(H, W)`` or ``(X, Y, Z)``.
        eps / backend / cache: as :func:`~mri_unfold.operators.nufft.nufft1`.
    """
    dims = tuple(int(s) for s in shape)
    d = len(dims)
    n = max(omega.shape[0], weights.shape[0])
    cdt = torch.complex128 if weights.dtype == torch.float64 else torch.complex64
    wts = weights.to(cdt).expand(n, -1).unsqueeze(1)                     # (n, 1, K)
    om = omega.to(weights.dtype)
    # type 1 on the 2x grid: mode m ↔ offset m - N per axis.  nufft1 is scaled by
    # (2^d Π N)^-1/2; the PSF needs (Π N)^-1, hence the factor 2^(d/2) / sqrt(Π N).
    psf = nufft1(wts, om, tuple(2 * m for m in dims), eps=eps, backend=backend, cache=cache)
    psf = psf * (2.0 ** (d / 2) / math.prod(dims) ** 0.5)
    axes = tuple(range(-d, 0))
    psf = torch.fft.ifftshift(psf, dim=axes)                             # offset 0 at origin
    return torch.fft.fftn(psf, dim=axes).real.contiguous()


def apply_toeplitz(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """``F^H W F x`` for ``x`` ``(N, C, H, W)`` complex with a kernel of
    :func:`toeplitz_kernel` ``(N | 1, 1, 2H, 2W)``; returns ``(N, C, H, W)``.  Volumes
    ``(N, C, X, Y, Z)`` take a ``(N | 1, 1, 2X, 2Y, 2Z)`` kernel.

    Zero padding is exploited: each axis is transformed only on the slab where the data are
    non-zero, and only the kept slab is inverse-transformed.
    """
    if kernel.ndim == 5:
        return _apply_toeplitz_3d(x, kernel)
    h, w = x.shape[-2:]
    k = torch.fft.fft(x, n=2 * w, dim=-1)              # (N, C, H, 2W)
    k = torch.fft.fft(k, n=2 * h, dim=-2)              # (N, C, 2H, 2W)
    k = k * kernel.to(device=x.device, dtype=x.real.dtype)
    k = torch.fft.ifft(k, dim=-2)[..., :h, :]          # (N, C, H, 2W)
    return torch.fft.ifft(k, dim=-1)[..., :w]


def _apply_toeplitz_3d(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    nx, ny, nz = x.shape[-3:]
    k = torch.fft.fft(x, n=2 * nz, dim=-1)                       # (.., X, Y, 2Z)
    k = torch.fft.fft(k, n=2 * ny, dim=-2)                       # (.., X, 2Y, 2Z)
    k = torch.fft.fft(k, n=2 * nx, dim=-3)                       # (.., 2X, 2Y, 2Z)
    k = k * kernel.to(device=x.device, dtype=x.real.dtype)
    k = torch.fft.ifft(k, dim=-3)[..., :nx, :, :]
    k = torch.fft.ifft(k, dim=-2)[..., :ny, :]
    return torch.fft.ifft(k, dim=-1)[..., :nz]
