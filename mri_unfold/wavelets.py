"""Orthonormal 2-D discrete wavelet transform with periodic boundaries, batched.

:class:`Wavelet2D` is the multi-level separable DWT ``Ψ`` of an orthonormal wavelet
family of PyWavelets (``"db4"`` by default: Daubechies, 8 taps) with **periodisation**
(``pywt`` mode ``"periodization"``): every level halves each side, there are exactly as many
coefficients as pixels and ``Ψ^T Ψ = Ψ Ψ^T = I`` — the transform is orthogonal, so the
proximal operator of ``λ‖Ψ x‖₁`` is ``Ψ^T soft(Ψ x, λ)`` exactly.

The transform is PyWavelets' ``wavedec2`` / ``waverec2`` (C code, all images of a batch
in one call, on the CPU) packed into one array with ``coeffs_to_array`` (the coarsest
approximation in the top-left corner, PyWavelets' layout).

Shapes: images ``(N, C, H, W)`` real (float32/float64) or complex (the real and imaginary
parts are transformed alike); coefficients are one tensor of the image's shape and dtype
in the usual nested layout (the coarsest approximation in the top-left corner).  ``H`` and
``W`` must be divisible by ``2^levels``.
"""
from __future__ import annotations

import numpy as np
import pywt
import torch

from .errors import InvalidValue

__all__ = ["Wavelet2D", "soft_threshold"]


def soft_threshold(z: torch.Tensor, lamda: float | torch.Tensor) -> torch.Tensor:
    """``z · max(0, 1 − λ/|z|)``: the proximal map of ``λ|·|`` for real or complex ``z``
    (``λ`` a number or a tensor broadcasting to ``z``, e.g. ``(N, 1, 1, 1)``)."""
    if not z.is_complex():                                   # z − clip(z, −λ, λ)
        lam = torch.as_tensor(lamda, dtype=z.dtype, device=z.device)
        return z - torch.minimum(torch.maximum(z, -lam), lam)
    mag = z.abs()
    return z * torch.clamp(1 - lamda / torch.clamp(mag, min=1e-30), min=0)


class Wavelet2D:
    """Multi-level orthonormal 2-D DWT with periodic boundaries (module doc).

    Args:
        shape: image ``(H, W)``.
        wavelet: an orthogonal PyWavelets family name (``"db4"``, ``"haar"``, ``"sym8"``).
        levels: decomposition levels; ``None``: as many as both sides allow (divisible by
            ``2^levels``) up to PyWavelets' ``dwt_max_level`` for the filter length.
    Raises:
        InvalidValue: a non-orthogonal or unknown wavelet, or sides that ``levels`` cannot
            halve.
    """

    def __init__(self, shape, wavelet: str = "db4", levels: int | None = None):
        try:
            w = pywt.Wavelet(wavelet)
        except ValueError as e:
            raise InvalidValue(f"unknown wavelet {wavelet!r} ({e})") from None
        if not w.orthogonal:
            raise InvalidValue(f"wavelet {wavelet!r} is not orthogonal")
        self.shape = tuple(int(s) for s in shape)
        fit = 0
        while all(s % 2 ** (fit + 1) == 0 for s in self.shape):
            fit += 1
        if levels is None:
            levels = min(fit, pywt.dwt_max_level(min(self.shape), w.dec_len))
        if not 1 <= levels <= fit:
            raise InvalidValue(f"{wavelet} DWT of {self.shape[0]}x{self.shape[1]} images: "
                               f"levels must be in 1..{fit} (sides divisible by 2^levels), "
                               f"got {levels}")
        self.wavelet, self.levels = wavelet, int(levels)
        probe = pywt.wavedec2(np.zeros(self.shape), wavelet, mode="periodization", level=levels)
        self._slices = pywt.coeffs_to_array(probe)[1]

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or tuple(x.shape[-2:]) != self.shape:
            raise InvalidValue(f"Wavelet2D({self.shape[0]}x{self.shape[1]}) expects (N, C, "
                               f"{self.shape[0]}, {self.shape[1]}), got {tuple(x.shape)}")

    def _real(self, x: torch.Tensor, inverse: bool) -> torch.Tensor:
        a = x.detach().cpu().numpy()
        if inverse:
            lead = (slice(None),) * (a.ndim - 2)
            slices = [lead + self._slices[0]] + [{k: lead + v for k, v in d.items()}
                                                 for d in self._slices[1:]]
            coeffs = pywt.array_to_coeffs(a, slices, output_format="wavedec2")
            out = pywt.waverec2(coeffs, self.wavelet, mode="periodization", axes=(-2, -1))
        else:
            coeffs = pywt.wavedec2(a, self.wavelet, mode="periodization", level=self.levels,
                                   axes=(-2, -1))
            out = pywt.coeffs_to_array(coeffs, axes=(-2, -1))[0]
        return torch.from_numpy(np.ascontiguousarray(out, dtype=a.dtype)).to(x.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``Ψ x``: ``(N, C, H, W)`` image -> coefficients of the same shape and dtype
        (not differentiable)."""
        self._check(x)
        if x.is_complex():
            return torch.complex(self._real(x.real, False), self._real(x.imag, False))
        return self._real(x, False)

    def inverse(self, c: torch.Tensor) -> torch.Tensor:
        """``Ψ^T c`` (= ``Ψ^{-1} c``): coefficients -> image, same shape and dtype."""
        self._check(c)
        if c.is_complex():
            return torch.complex(self._real(c.real, True), self._real(c.imag, True))
        return self._real(c, True)
