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
``(N, C, H, W)`` complex.
"""
from __future__ import annotations

import torch

from .nufft import PlanCache, nufft1

__all__ = ["toeplitz_kernel", "apply_toeplitz"]


def toeplitz_kernel(omega: torch.Tensor, weights: torch.Tensor, shape: tuple[int, int], *,
                    eps: float | None = None, backend: str = "auto",
                    cache: PlanCache | None = None) -> torch.Tensor:
    """The real Fourier-domain kernel ``K̂`` ``(N | 1, 1, 2H, 2W)`` of ``F^H diag(w) F``.

    Args:
        omega: ``(N | 1, K, 2)`` frequencies in radians (per pixel of the ``(H, W)`` image).
        weights: ``(N | 1, K)`` non-negative real weights (density compensation × mask;
            all ones for the plain normal).
        shape: the image ``(H, W)``.
        eps / backend / cache: as :func:`~mri_unfold.operators.nufft.nufft1`.
    """
    h, w = (int(s) for s in shape)
    n = max(omega.shape[0], weights.shape[0])
    cdt = torch.complex128 if weights.dtype == torch.float64 else torch.complex64
    wts = weights.to(cdt).expand(n, -1).unsqueeze(1)                     # (n, 1, K)
    om = omega.to(weights.dtype)
    # type 1 on the 2x grid: mode m ↔ offset d = m - H (rows), m - W (columns).  nufft1 is
    # scaled by (4 H W)^-1/2; the PSF needs (H W)^-1, hence the factor 2 / sqrt(H W).
    psf = nufft1(wts, om, (2 * h, 2 * w), eps=eps, backend=backend, cache=cache)
    psf = psf * (2.0 / (h * w) ** 0.5)
    psf = torch.fft.ifftshift(psf, dim=(-2, -1))                         # offset 0 at [0, 0]
    return torch.fft.fft2(psf).real.contiguous()


def apply_toeplitz(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """``F^H W F x`` for ``x`` ``(N, C, H, W)`` complex with a kernel of
    :func:`toeplitz_kernel` ``(N | 1, 1, 2H, 2W)``; returns ``(N, C, H, W)``.

    Zero padding is exploited: the columns' FFT runs on the ``H`` non-zero rows only, and
    only the ``H`` kept rows are inverse-transformed along the columns.
    """
    h, w = x.shape[-2:]
    k = torch.fft.fft(x, n=2 * w, dim=-1)              # (N, C, H, 2W)
    k = torch.fft.fft(k, n=2 * h, dim=-2)              # (N, C, 2H, 2W)
    k = k * kernel.to(device=x.device, dtype=x.real.dtype)
    k = torch.fft.ifft(k, dim=-2)[..., :h, :]          # (N, C, H, 2W)
    return torch.fft.ifft(k, dim=-1)[..., :w]
