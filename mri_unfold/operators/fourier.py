"""Cartesian Fourier sampling operators for MRI: single-coil and SENSE multi-coil.

Both operators use the project's one FFT convention (:mod:`mri_unfold.fft`: orthonormal
2-D DFT over the last two dims) in either k-space layout:

* ``"centered"`` — DC at ``(H // 2, W // 2)`` (fastMRI, ``fastmri.fft2c``, sigpy);
* ``"unshifted"`` — DC at ``[0, 0]`` (``numpy.fft.fft2(x, norm="ortho")``; the layout of
  the radial CS-MRI masks ``radial_*.mat``).

The sampling mask ``B`` must be given in the same layout as the operator.  Masking is done
with :func:`torch.where`, so unsampled k-space entries are exactly ``+0`` (no ``-0.0``).

Shapes (``N`` batch, ``C`` coils):

* :class:`SingleCoilFourier`: image ``(N, 1, H, W)`` -> k-space ``(N, 1, H, W)`` complex.
* :class:`MultiCoilFourier`: image ``(N, 1, H, W)`` complex -> k-space ``(N, C, H, W)``.

Dtypes: complex64 or complex128 images (float32/float64 are promoted to the matching
complex dtype); buffers are cast to the input's precision and device on every call.
"""
from __future__ import annotations

import numpy as np
import torch

from ..fft import _check_layout, fft2, ifft2
from .base import LinearOperator

__all__ = ["SingleCoilFourier", "MultiCoilFourier"]

_COMPLEX_OF = {torch.float32: torch.complex64, torch.float64: torch.complex128,
               torch.complex64: torch.complex64, torch.complex128: torch.complex128}


def _to_tensor(value, name: str) -> torch.Tensor:
    if torch.is_tensor(value):
        return value.detach()
    try:
        return torch.as_tensor(np.asarray(value))
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} must be a numpy array or torch tensor, got "
                        f"{type(value).__name__} ({e})") from e


def _binary_mask(mask) -> torch.Tensor:
    """Validate a 0/1 (or bool) mask and return it as a bool tensor of the same shape."""
    m = _to_tensor(mask, "mask")
    if m.ndim == 0 or m.ndim > 4:
        raise ValueError(f"mask must be (H, W) or broadcastable to (N, C, H, W), got shape "
                         f"{tuple(m.shape)}")
    if m.dtype == torch.bool:
        return m.clone()
    if m.is_complex():
        raise ValueError(f"mask must be real and binary (0/1 or bool), got dtype {m.dtype}")
    is_binary = (m == 0) | (m == 1)
    if not bool(is_binary.all()):
        bad = torch.unique(m[~is_binary])[:5].tolist()
        raise ValueError(f"mask must be binary (values 0/1 or bool); found other values, "
                         f"e.g. {bad}")
    return m != 0


def _complex_dtype(t: torch.Tensor, name: str) -> torch.dtype:
    """Complex dtype matching ``t``'s precision (float32/complex64 -> complex64, ...)."""
    try:
        return _COMPLEX_OF[t.dtype]
    except KeyError:
        raise TypeError(f"{name} must be complex64/complex128 (or float32/float64), got "
                        f"{t.dtype}") from None


def _check_nchw(t: torch.Tensor, name: str, expected: str, channels: int | None) -> None:
    if not torch.is_tensor(t):
        raise TypeError(f"{name} must be a torch tensor {expected}, got {type(t).__name__}")
    if t.ndim != 4 or (channels is not None and t.shape[1] != channels):
        raise ValueError(f"{name} must have shape {expected}, got {tuple(t.shape)}")


class _MaskedFourier(LinearOperator):
    """Shared mask handling of the Cartesian Fourier operators (buffer ``mask``, bool)."""

    def __init__(self, mask, layout: str):
        super().__init__()
        _check_layout(layout)
        self.layout = layout
        self.register_buffer("mask", _binary_mask(mask))

    def _mask_for(self, k: torch.Tensor) -> torch.Tensor:
        """The bool mask on ``k``'s device, checked to broadcast to ``k``'s shape."""
        m = self.mask.to(k.device)
        try:
            ok = torch.broadcast_shapes(m.shape, k.shape) == k.shape
        except RuntimeError:
            ok = False
        if not ok:
            raise ValueError(f"mask of shape {tuple(m.shape)} does not broadcast to the k-space "
                             f"shape {tuple(k.shape)} (N, C, H, W)")
        return m

    def _apply_mask(self, k: torch.Tensor) -> torch.Tensor:
        """``B k`` as a new tensor: unsampled entries are exactly ``+0`` (``torch.where``)."""
        zero = torch.zeros((), dtype=k.dtype, device=k.device)
        return torch.where(self._mask_for(k), k, zero)

    def _apply_mask_(self, k: torch.Tensor) -> torch.Tensor:
        """``B k`` in place (for intermediate k-space only; fills with exact ``+0``)."""
        return k.masked_fill_(~self._mask_for(k), 0)

    def _fourier_extra_repr(self) -> str:
        return f"layout={self.layout!r}, mask={tuple(self.mask.shape)}, " \
               f"sampled={float(self.mask.float().mean()):.4f}"


class SingleCoilFourier(_MaskedFourier):
    """Single-coil Cartesian MRI sampling ``Φ = B F``.

    Args:
        mask: binary sampling mask (numpy array or tensor, bool or 0/1), shape ``(H, W)`` or
            anything broadcastable to ``(N, 1, H, W)`` (e.g. ``(1, W)`` columns, per-sample
            ``(N, 1, H, W)``), in the k-space ``layout``.  Stored as bool buffer ``mask``.
        layout: ``"centered"`` (fastMRI, default) or ``"unshifted"`` (DC at ``[0, 0]``).
        real_input: if True the image domain is real: ``forward`` takes real images,
            ``adjoint`` returns ``Re(F^H B y)`` (the exact adjoint of the real-linear map
            w.r.t. ``Re <., .>``), and ``normal(x) = Re(ifft2(mask * fft2(x)))`` — the
            CS-MRI operator of ISTA-Net+ / ADMM-Net / MADUN.

    Shapes:
        ``forward``: ``(N, 1, H, W)`` complex64/complex128 (float32/float64 if
        ``real_input``) -> ``(N, 1, H, W)`` complex k-space.  ``adjoint``: the reverse.
    """

    def __init__(self, mask, layout: str = "centered", real_input: bool = False):
        super().__init__(mask, layout)
        self.real_input = bool(real_input)
        self.complex_domain = not self.real_input

    def _check_x(self, x: torch.Tensor) -> None:
        _check_nchw(x, "x", "(N, 1, H, W)", 1)
        if self.real_input and x.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"SingleCoilFourier(real_input=True) expects a real x (float32/"
                            f"float64) of shape (N, 1, H, W), got {x.dtype}")
        _complex_dtype(x, "x")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``y = B F x``: ``(N, 1, H, W)`` image -> ``(N, 1, H, W)`` complex k-space."""
        self._check_x(x)
        return self._apply_mask(fft2(x, self.layout))

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """``F^H B y`` (its real part if ``real_input``): ``(N, 1, H, W)`` -> ``(N, 1, H, W)``."""
        _check_nchw(y, "y", "(N, 1, H, W)", 1)
        _complex_dtype(y, "y")
        x = ifft2(self._apply_mask(y), self.layout)
        return x.real.contiguous() if self.real_input else x

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """``F^H B F x`` (real part if ``real_input``), masking the one k-space array in place."""
        self._check_x(x)
        out = ifft2(self._apply_mask_(fft2(x, self.layout)), self.layout)
        return out.real.contiguous() if self.real_input else out

    def extra_repr(self) -> str:
        return f"{self._fourier_extra_repr()}, real_input={self.real_input}"


class MultiCoilFourier(_MaskedFourier):
    """SENSE multi-coil Cartesian sampling ``Φ = B F S``.

    ``forward``: ``y_c = B F (S_c x)``; ``adjoint``: ``Σ_c conj(S_c) F^H B y_c``.

    Args:
        mask: binary mask ``(H, W)`` or broadcastable to ``(N, C, H, W)``, in ``layout``.
        coil_maps: complex sensitivities ``(C, H, W)`` (shared by the batch) or
            ``(N, C, H, W)`` (per sample); numpy or tensor; real arrays are promoted.
            Stored as the float buffer ``coil_maps_ri`` of shape ``(..., 2)`` (real and
            imaginary parts, :func:`torch.view_as_real`) so that ``.to(torch.float64)``
            changes its precision without discarding the imaginary part; the property
            :attr:`coil_maps` returns the complex view.
        layout: ``"centered"`` (default) or ``"unshifted"``.

    Shapes:
        ``forward``: complex ``(N, 1, H, W)`` -> ``(N, C, H, W)``; ``adjoint``: the reverse.
    """

    complex_domain = True

    def __init__(self, mask, coil_maps, layout: str = "centered"):
        super().__init__(mask, layout)
        s = _to_tensor(coil_maps, "coil_maps")
        if s.ndim not in (3, 4):
            raise ValueError(f"coil_maps must have shape (C, H, W) or (N, C, H, W), got "
                             f"{tuple(s.shape)}")
        s = s.to(_complex_dtype(s, "coil_maps"))
        self.register_buffer("coil_maps_ri", torch.view_as_real(s).clone())

    @property
    def coil_maps(self) -> torch.Tensor:
        """Complex coil maps ``(C, H, W)`` or ``(N, C, H, W)`` (a view of the buffer)."""
        return torch.view_as_complex(self.coil_maps_ri)

    @property
    def num_coils(self) -> int:
        return int(self.coil_maps_ri.shape[-4])

    def _maps_for(self, t: torch.Tensor, name: str) -> torch.Tensor:
        """Coil maps as ``(N or 1, C, H, W)`` in ``t``'s complex precision and device."""
        ri = self.coil_maps_ri.to(device=t.device, dtype=t.real.dtype)
        s = torch.view_as_complex(ri.contiguous())
        if s.ndim == 3:
            s = s.unsqueeze(0)
        if s.shape[-2:] != t.shape[-2:] or s.shape[0] not in (1, t.shape[0]):
            raise ValueError(f"{name} of shape {tuple(t.shape)} does not match coil_maps "
                             f"{tuple(s.shape)}: expected (N, *, {s.shape[-2]}, {s.shape[-1]})"
                             f" with N == {s.shape[0]} or maps shared by the batch")
        return s

    def _check_x(self, x: torch.Tensor) -> torch.Tensor:
        _check_nchw(x, "x", "(N, 1, H, W)", 1)
        return x.to(_complex_dtype(x, "x"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``y = B F S x``: complex ``(N, 1, H, W)`` -> ``(N, C, H, W)`` k-space."""
        x = self._check_x(x)
        return self._apply_mask(fft2(x * self._maps_for(x, "x"), self.layout))

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """``Σ_c conj(S_c) F^H B y_c``: ``(N, C, H, W)`` -> complex ``(N, 1, H, W)``."""
        _check_nchw(y, "y", f"(N, {self.num_coils}, H, W)", self.num_coils)
        y = y.to(_complex_dtype(y, "y"))
        s = self._maps_for(y, "y")
        return (s.conj() * ifft2(self._apply_mask(y), self.layout)).sum(dim=1, keepdim=True)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """``S^H F^H B F S x`` for complex ``(N, 1, H, W)``, same shape out.

        Closed form without per-coil shifts: with ``P = ifftshift`` and ``Q = fftshift =
        P^-1`` the centred transforms are ``F_c = Q F P``, ``F_c^H = Q F^-1 P``, so
        ``S^H F_c^H B F_c S x = Q Σ_c conj(P s_c) · F^-1[(P b) · F[(P s_c) · (P x)]]``: two
        shifts of the one-channel image instead of four of the C-coil arrays, and the
        shifted maps ``P s`` are cached (per device/dtype, refreshed when the buffer
        changes).  ``Σ_c conj(·)·`` is one :func:`torch.linalg.vecdot`.
        """
        x = self._check_x(x)
        centered = self.layout == "centered"
        shift = (lambda t: torch.fft.ifftshift(t, dim=(-2, -1))) if centered else (lambda t: t)
        s = self._shifted_maps(x, shift)
        k = torch.fft.fft2(shift(x) * s, norm="ortho")
        k = k.masked_fill_(~shift(self._mask_for(k)), 0)
        v = torch.linalg.vecdot(s, torch.fft.ifft2(k, norm="ortho"), dim=1).unsqueeze(1)
        return torch.fft.fftshift(v, dim=(-2, -1)) if centered else v

    def _shifted_maps(self, x: torch.Tensor, shift) -> torch.Tensor:
        """``shift(coil maps)`` ``(N or 1, C, H, W)`` for ``x``; cached unless the maps need
        gradients or are an inference tensor (no version counter to detect changes), and
        not while ``torch.compile`` traces (the shift is then part of the graph)."""
        ri = self.coil_maps_ri
        if torch.compiler.is_compiling() or ri.requires_grad or ri.is_inference():
            return shift(self._maps_for(x, "x"))
        s = self._cached("_normal_cache", (x.device, x.dtype, self.layout), ri,
                         lambda: shift(self._maps_for(x, "x")).contiguous())
        if s.shape[-2:] != x.shape[-2:] or s.shape[0] not in (1, x.shape[0]):
            self._maps_for(x, "x")  # raises the shape error
        return s

    def extra_repr(self) -> str:
        return f"{self._fourier_extra_repr()}, coil_maps={tuple(self.coil_maps.shape)}"
