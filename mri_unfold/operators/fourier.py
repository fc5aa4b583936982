"""Cartesian Fourier sampling operators for MRI, built from parts (:mod:`.parts`):

* :class:`SingleCoilFourier` ``= SamplingMask @ FFT2`` (``@ RealToComplex`` for real images);
* :class:`MultiCoilFourier` ``= SamplingMask @ FFT2 @ CoilExpansion`` (SENSE).

Both use the project's one FFT convention (:mod:`mri_unfold.fft`: orthonormal 2-D DFT over
the last two dims) in either k-space layout: ``"centered"`` (DC at ``(H // 2, W // 2)``:
fastMRI, ``fastmri.fft2c``, sigpy) or ``"unshifted"`` (DC at ``[0, 0]``:
``numpy.fft.fft2(x, norm="ortho")``, the radial CS-MRI masks ``radial_*.mat``).  The mask
must be given in the operator's layout.  Masking uses :func:`torch.where` /
``masked_fill``, so unsampled entries are exactly ``+0`` (no ``-0.0``).

Batched parameters: one operator holds a mask per sample (``(N, H, W)`` or
``(N, 1, H, W)``) and coil maps per sample (``(N, C, H, W)``), so a batch with different
masks and maps is one operator (see :func:`~mri_unfold.operators.kspace_operator`).

Shapes (``N`` batch, ``C`` coils):

* :class:`SingleCoilFourier`: image ``(N, 1, H, W)`` -> k-space ``(N, 1, H, W)`` complex.
* :class:`MultiCoilFourier`: image ``(N, 1, H, W)`` complex -> k-space ``(N, C, H, W)``.

Dtypes: complex64 or complex128 images (float32/float64 are promoted to the matching
complex dtype); buffers are cast to the input's precision and device on every call.

``forward``/``adjoint`` check the input once and run the parts' kernels; ``normal`` keeps
its closed forms.  The ``state_dict`` keeps the flat keys of earlier versions (``mask``,
``coil_maps_ri``); the nested keys of the parts (``sampling.mask``, ``coils.maps_ri``) are
accepted when loading too.
"""
from __future__ import annotations

import numpy as np
import torch

from ..fft import fft2, ifft2
from .base import Composed
from .circulant import circulant_normal, normal_filter
from .parts import FFT2, CoilExpansion, RealToComplex, SamplingMask, complex_dtype
from .registry import OperatorExample, register_operator
from .shapes import format_shape, unify_shapes

__all__ = ["SingleCoilFourier", "MultiCoilFourier"]

#: Flat state_dict keys of earlier versions <-> the parts' keys.
_FLAT_KEYS = {"sampling.mask": "mask", "coils.maps_ri": "coil_maps_ri"}


def _flatten_keys(module, state_dict, prefix, local_metadata) -> None:
    for nested, flat in _FLAT_KEYS.items():
        if prefix + nested in state_dict:
            state_dict[prefix + flat] = state_dict.pop(prefix + nested)


def _nest_keys(module, state_dict, prefix, *args) -> None:
    for nested, flat in _FLAT_KEYS.items():
        if prefix + flat in state_dict:
            state_dict[prefix + nested] = state_dict.pop(prefix + flat)


def _nchw(name: str, channels: int, t: torch.Tensor) -> str:
    return f"{name} must have shape (N, {channels}, H, W), got {tuple(t.shape)}"


class _MaskedFourier(Composed):
    """Shared part of the Cartesian Fourier operators: parts ``sampling`` (mask) and
    ``fft``, declarations, flat state_dict keys."""

    def __init__(self, parts: dict, domain: tuple, range_: tuple):
        super().__init__(*parts.values(), names=tuple(parts))
        self.domain_shape, self.range_shape = domain, range_
        self.register_state_dict_post_hook(_flatten_keys)
        self.register_load_state_dict_pre_hook(_nest_keys)

    @property
    def mask(self) -> torch.Tensor:
        """The bool mask buffer (as given, 3-D masks as ``(N, 1, H, W)``)."""
        return self.sampling.mask

    @property
    def layout(self) -> str:
        return self.fft.layout

    def label(self) -> str:
        return type(self).__name__

    def _mask_detail(self, t: torch.Tensor) -> str:
        return f"mask of shape {tuple(self.mask.shape)} does not broadcast to the k-space " \
               f"shape {tuple(t.shape)} (N, C, H, W)"

    def _fourier_extra_repr(self) -> str:
        return f"layout={self.layout!r}, {self.sampling.extra_repr()}"


@register_operator("single_coil", examples=(
    OperatorExample("centered_odd", lambda: SingleCoilFourier(_mask(7, 9, seed=1))),
    OperatorExample("unshifted", lambda: SingleCoilFourier(_mask(8, 5, seed=2), "unshifted")),
    OperatorExample("columns", lambda: SingleCoilFourier(_mask(1, 9, seed=3)), (1, 6, 9)),
    OperatorExample("per_sample", lambda: SingleCoilFourier(_mask(3, 5, 7, seed=4))),
    OperatorExample("real_input", lambda: SingleCoilFourier(_mask(9, 7, seed=5),
                                                            real_input=True))))
class SingleCoilFourier(_MaskedFourier):
    """Single-coil Cartesian MRI sampling ``Φ = B F`` (``B F E`` with the real embedding
    ``E`` when ``real_input``).

    Args:
        mask: binary sampling mask (numpy array or tensor, bool or 0/1) in the k-space
            ``layout``: ``(H, W)`` shared; broadcastable forms such as ``(1, W)`` columns;
            ``(N, H, W)`` or ``(N, 1, H, W)`` one per sample.  Stored as the bool buffer
            ``mask`` (3-D as ``(N, 1, H, W)``).
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
        sampling = SamplingMask(mask)
        parts = {"sampling": sampling, "fft": FFT2(layout)}
        if real_input:
            parts["embed"] = RealToComplex()
        c_h_w = sampling.domain_shape
        if c_h_w[0] is not None and c_h_w[0] != 1:
            raise ValueError(f"SingleCoilFourier: mask of shape {tuple(sampling.mask.shape)} "
                             "has several coils; use MultiCoilFourier")
        shape = (1,) + c_h_w[1:]
        super().__init__(parts, shape, shape)
        self.real_input = bool(real_input)
        self.complex_domain = not self.real_input
        self.complex_range = True

    def _detail(self, t: torch.Tensor, name: str) -> str:
        if t.ndim != 4 or t.shape[1] != 1:
            return _nchw(name, 1, t)
        return self._mask_detail(t)

    def _check_x(self, x: torch.Tensor) -> None:
        self.check_domain(x, "x", lambda: self._detail(x, "x"))
        if self.real_input and x.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"SingleCoilFourier(real_input=True) expects a real x (float32/"
                            f"float64) of shape (N, 1, H, W), got {x.dtype}")
        complex_dtype(x, "x")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``y = B F x``: ``(N, 1, H, W)`` image -> ``(N, 1, H, W)`` complex k-space (a real
        image goes straight into the FFT, which embeds it)."""
        self._check_x(x)
        return self.sampling.apply(fft2(x, self.layout))

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """``F^H B y`` (its real part if ``real_input``): ``(N, 1, H, W)`` -> ``(N, 1, H, W)``."""
        self.check_range(y, "y", lambda: self._detail(y, "y"))
        complex_dtype(y, "y")
        x = ifft2(self.sampling.apply(y), self.layout)
        return x.real.contiguous() if self.real_input else x

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """``F^H B F x`` (real part if ``real_input``) as one circulant filter: no image
        shifts, real FFTs for a real domain (:mod:`.circulant`)."""
        self._check_x(x)
        if not self.real_input:
            x = x.to(complex_dtype(x, "x"))
        real = x.real.dtype if x.is_complex() else x.dtype

        def compute():
            return normal_filter(self.mask.to(x.device), self.layout, self.real_input, real)

        filt = compute() if torch.compiler.is_compiling() else \
            self._cached("_filter_cache", (x.device, real), self.mask, compute)
        return circulant_normal(x, filt, self.real_input)

    def extra_repr(self) -> str:
        return f"{self._fourier_extra_repr()}, real_input={self.real_input}"


@register_operator("multi_coil", examples=(
    OperatorExample("shared_maps", lambda: MultiCoilFourier(_mask(7, 9, seed=6),
                                                            _maps(3, 7, 9, seed=7)), (1, 7, 9)),
    OperatorExample("per_sample_unshifted", lambda: MultiCoilFourier(
        _mask(1, 5, seed=8), _maps(2, 4, 6, 5, seed=9), "unshifted")),
    OperatorExample("per_sample_masks_and_maps", lambda: MultiCoilFourier(
        _mask(3, 6, 5, seed=10), _maps(3, 2, 6, 5, seed=11)))))
class MultiCoilFourier(_MaskedFourier):
    """SENSE multi-coil Cartesian sampling ``Φ = B F S``.

    ``forward``: ``y_c = B F (S_c x)``; ``adjoint``: ``Σ_c conj(S_c) F^H B y_c``.

    Args:
        mask: binary mask in ``layout``: ``(H, W)`` (or broadcastable, e.g. ``(1, W)``),
            ``(N, H, W)`` / ``(N, 1, H, W)`` per sample, ``(N | 1, C, H, W)`` per coil.
        coil_maps: complex sensitivities ``(C, H, W)`` (shared by the batch) or
            ``(N, C, H, W)`` (per sample); numpy or tensor; real arrays are promoted.
            Stored (in the part ``coils``) as a float buffer of shape ``(..., 2)`` (real and
            imaginary parts) so that ``.to(torch.float64)`` changes its precision without
            discarding the imaginary part; :attr:`coil_maps` is the complex view and
            :attr:`coil_maps_ri` the buffer.
        layout: ``"centered"`` (default) or ``"unshifted"``.

    Shapes:
        ``forward``: complex ``(N, 1, H, W)`` -> ``(N, C, H, W)``; ``adjoint``: the reverse.
    """

    complex_domain = True

    def __init__(self, mask, coil_maps, layout: str = "centered"):
        sampling, coils = SamplingMask(mask), CoilExpansion(coil_maps)
        try:
            rng = unify_shapes(sampling.range_shape, coils.range_shape)
        except ValueError:
            raise ValueError(f"MultiCoilFourier: mask of shape {tuple(sampling.mask.shape)} does "
                             f"not broadcast to the coil images {format_shape(coils.range_shape)}"
                             f" of coil_maps {tuple(coils.maps.shape)}") from None
        super().__init__({"sampling": sampling, "fft": FFT2(layout), "coils": coils},
                         coils.domain_shape, rng)

    @property
    def coil_maps_ri(self) -> torch.Tensor:
        """The coil maps' float buffer ``(C, H, W, 2)`` or ``(N, C, H, W, 2)``."""
        return self.coils.maps_ri

    @property
    def coil_maps(self) -> torch.Tensor:
        """Complex coil maps ``(C, H, W)`` or ``(N, C, H, W)`` (a view of the buffer)."""
        return self.coils.maps

    @property
    def num_coils(self) -> int:
        return self.coils.num_coils

    def _detail(self, t: torch.Tensor, name: str, channels: int) -> str:
        if t.ndim != 4 or t.shape[1] != channels:
            return _nchw(name, channels, t)
        s = tuple(self.coils.maps_ri.shape[:-1])
        s = s if len(s) == 4 else (1,) + s
        if tuple(t.shape[-2:]) != s[-2:] or s[0] not in (1, t.shape[0]):
            return (f"{name} of shape {tuple(t.shape)} does not match coil_maps {s}: expected "
                    f"(N, *, {s[-2]}, {s[-1]}) with N == {s[0]} or maps shared by the batch")
        return self._mask_detail(t)

    def _check_x(self, x: torch.Tensor) -> torch.Tensor:
        self.check_domain(x, "x", lambda: self._detail(x, "x", 1))
        return x.to(complex_dtype(x, "x"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``y = B F S x``: complex ``(N, 1, H, W)`` -> ``(N, C, H, W)`` k-space."""
        x = self._check_x(x)
        return self.sampling.apply(fft2(x * self.coils.maps_for(x), self.layout))

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """``Σ_c conj(S_c) F^H B y_c``: ``(N, C, H, W)`` -> complex ``(N, 1, H, W)``."""
        self.check_range(y, "y", lambda: self._detail(y, "y", self.num_coils))
        y = y.to(complex_dtype(y, "y"))
        s = self.coils.maps_for(y)
        return (s.conj() * ifft2(self.sampling.apply(y), self.layout)).sum(dim=1, keepdim=True)

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
        k = k.masked_fill_(~shift(self.mask.to(k.device)), 0)
        v = torch.linalg.vecdot(s, torch.fft.ifft2(k, norm="ortho"), dim=1).unsqueeze(1)
        return torch.fft.fftshift(v, dim=(-2, -1)) if centered else v

    def _shifted_maps(self, x: torch.Tensor, shift) -> torch.Tensor:
        """``shift(coil maps)`` ``(N or 1, C, H, W)`` for ``x``; cached unless the maps need
        gradients or are an inference tensor (no version counter to detect changes), and
        not while ``torch.compile`` traces (the shift is then part of the graph)."""
        ri = self.coils.maps_ri
        if torch.compiler.is_compiling() or ri.requires_grad or ri.is_inference():
            return shift(self.coils.maps_for(x))
        return self._cached("_normal_cache", (x.device, x.dtype, self.layout), ri,
                            lambda: shift(self.coils.maps_for(x)).contiguous())

    def extra_repr(self) -> str:
        return f"{self._fourier_extra_repr()}, coil_maps={tuple(self.coil_maps.shape)}"


def _mask(*shape: int, seed: int) -> torch.Tensor:
    """Seeded random bool mask for the registered examples."""
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) < 0.5


def _maps(*shape: int, seed: int) -> np.ndarray:
    """Seeded random complex128 coil maps for the registered examples."""
    return torch.randn(*shape, dtype=torch.complex128,
                       generator=torch.Generator().manual_seed(seed)).numpy()
