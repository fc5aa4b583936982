"""The normal operator of single-coil Cartesian sampling as one circulant filter.

``Φ^HΦ = F_c^H B F_c`` with the centred transform ``F_c = P F Q`` (``P = fftshift``,
``Q = ifftshift``) equals ``F^H diag(Q(m)) F``: a circulant (convolution) operator commutes
with cyclic shifts, so the four image/k-space shifts of the centred layout collapse into one
shift of the mask.  For a real image domain (``Re(F^H B F x)``, the CS-MRI operator of
ISTA-Net+/MADUN) the real part of a circulant filter is the filter with the Hermitian-
symmetrised mask ``(m(k) + m(-k)) / 2``, which takes real FFTs (``rfft2``/``irfft2``):
half the transform work and no complex copies of the image.  Used by
:meth:`SingleCoilFourier.normal`; the values equal ``ifft2c(m * fft2c(x))`` up to rounding.

Shapes: ``mask`` bool ``(H, W)`` or ``(N, 1, H, W)`` in the operator's k-space layout;
``x`` ``(N, 1, H, W)`` float32/float64 (real domain) or complex64/complex128.
"""
from __future__ import annotations

import torch

__all__ = ["normal_filter", "circulant_normal"]


def normal_filter(mask: torch.Tensor, layout: str, real_input: bool,
                  dtype: torch.dtype) -> torch.Tensor:
    """The real k-space filter of ``Φ^HΦ`` in the unshifted layout (DC at ``[0, 0]``).

    Returns ``(..., H, W)`` of ``dtype`` (real float), or, with ``real_input``, the
    symmetrised filter's ``rfft2`` half ``(..., H, W // 2 + 1)``.
    """
    m = mask.to(dtype)
    if layout == "centered":
        m = torch.fft.ifftshift(m, dim=(-2, -1))
    if real_input:
        w = m.shape[-1]
        mirrored = torch.roll(torch.flip(m, (-2, -1)), (1, 1), (-2, -1))  # m(-k mod N)
        m = (0.5 * (m + mirrored))[..., : w // 2 + 1]
    return m


def circulant_normal(x: torch.Tensor, filt: torch.Tensor, real_input: bool) -> torch.Tensor:
    """``F_c^H B F_c x`` (its real part for a real ``x`` when ``real_input``), same shape and
    dtype as ``x``, from the filter of :func:`normal_filter` (module doc): no image shifts."""
    if real_input:
        return torch.fft.irfft2(filt * torch.fft.rfft2(x, norm="ortho"), s=x.shape[-2:],
                                norm="ortho")
    return torch.fft.ifft2(filt * torch.fft.fft2(x, norm="ortho"), norm="ortho")
