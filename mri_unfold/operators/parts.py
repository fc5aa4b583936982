"""Small operators that MRI sampling is built from, and the identity.

* :class:`SamplingMask` ``B`` — keep the sampled k-space entries, set the others to exactly
  ``+0``; diagonal, self-adjoint and idempotent (``B^H B = B``).  Batched: one mask per
  sample is one operator.
* :class:`FFT2` ``F`` — the orthonormal 2-D DFT of the project's one convention
  (:mod:`mri_unfold.fft`), ``"centered"`` or ``"unshifted"`` layout; ``F^H F = I``.
* :class:`CoilExpansion` ``S`` — SENSE coil sensitivities: one image -> ``C`` coil images
  ``S_c x``; adjoint ``Σ_c conj(S_c) y_c``.  Shared ``(C, H, W)`` or per-sample maps.
* :class:`RealToComplex` — the embedding of real images into complex ones; its adjoint
  (w.r.t. ``Re <., .>``) is the real part.
* :class:`Identity`.

``SingleCoilFourier = SamplingMask @ FFT2 [@ RealToComplex]`` and
``MultiCoilFourier = SamplingMask @ FFT2 @ CoilExpansion`` (:mod:`.fourier`).

Tensors are ``(N, C, H, W)``.  Complex parts accept complex64/complex128 (float32/float64
are promoted to the matching complex dtype); buffers are cast to the input's precision and
device on every call.
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import InvalidValue
from ..fft import _check_layout, fft2, ifft2
from .base import LinearOperator
from .registry import OperatorExample, register_operator
from .shapes import Shape

__all__ = ["SamplingMask", "FFT2", "CoilExpansion", "RealToComplex", "Identity",
           "binary_mask", "complex_dtype"]

_COMPLEX_OF = {torch.float32: torch.complex64, torch.float64: torch.complex128,
               torch.complex64: torch.complex64, torch.complex128: torch.complex128}


def to_tensor(value, name: str) -> torch.Tensor:
    """A numpy array or tensor as a detached tensor (``TypeError`` naming ``name`` else)."""
    if torch.is_tensor(value):
        return value.detach()
    try:
        return torch.as_tensor(np.asarray(value))
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} must be a numpy array or torch tensor, got "
                        f"{type(value).__name__} ({e})") from e


def complex_dtype(t: torch.Tensor, name: str) -> torch.dtype:
    """Complex dtype matching ``t``'s precision (float32/complex64 -> complex64, ...).

    Raises:
        TypeError: any other dtype (naming ``name``).
    """
    try:
        return _COMPLEX_OF[t.dtype]
    except KeyError:
        raise TypeError(f"{name} must be complex64/complex128 (or float32/float64), got "
                        f"{t.dtype}") from None


def binary_mask(mask) -> torch.Tensor:
    """Validate a 0/1 (or bool) sampling mask; return it as a new contiguous bool tensor
    (a transposed or Fortran-ordered input, e.g. a mask read from MATLAB, would otherwise
    keep its strides, and a compiled model traced with one layout fails on the other).

    Accepted layouts (numpy array or tensor):

    * 1-D ``(W,)`` / 2-D ``(H, W)`` — one mask shared by the batch (a size-1 dimension
      broadcasts: ``(1, W)`` is a column mask, the same for every row);
    * 3-D ``(N, H, W)`` — one mask per sample; returned as ``(N, 1, H, W)``;
    * 4-D ``(N | 1, C | 1, H, W)`` — per sample and/or per coil.

    Raises:
        ValueError: another rank, a complex mask or values other than 0/1.
    """
    m = to_tensor(mask, "mask")
    if m.ndim == 0 or m.ndim > 4:
        raise ValueError(f"mask must be (H, W) or broadcastable to (N, C, H, W): (H, W) "
                         f"shared, (N, H, W) per sample or (N|1, C|1, H, W); got shape "
                         f"{tuple(m.shape)}")
    if m.is_complex():
        raise ValueError(f"mask must be real and binary (0/1 or bool), got dtype {m.dtype}")
    if m.dtype != torch.bool:
        is_binary = (m == 0) | (m == 1)
        if not bool(is_binary.all()):
            bad = torch.unique(m[~is_binary])[:5].tolist()
            raise ValueError(f"mask must be binary (values 0/1 or bool); found other values, "
                             f"e.g. {bad}")
    m = (m.clone() if m.dtype == torch.bool else m != 0).contiguous()
    return m.unsqueeze(1) if m.ndim == 3 else m


def _free(dims) -> Shape:
    """Per-sample ``(C, H, W)`` pattern of broadcasting dims: size 1 -> free (None)."""
    dims = (1,) * (3 - len(dims)) + tuple(dims)
    return tuple(None if d == 1 else int(d) for d in dims)


def _per_sample(t: torch.Tensor, ndim: int) -> int | None:
    """Batch size of a parameter tensor with a leading sample axis when ``t.ndim == ndim``."""
    return int(t.shape[0]) if t.ndim == ndim and t.shape[0] > 1 else None


@register_operator("sampling_mask", examples=(
    OperatorExample("shared", lambda: SamplingMask(torch.rand(5, 6, generator=_g(1)) < 0.5),
                    (2, 5, 6)),
    OperatorExample("per_sample", lambda: SamplingMask(
        torch.rand(3, 4, 5, generator=_g(2)) < 0.5), (2, 4, 5))))
class SamplingMask(LinearOperator):
    """``B k``: k-space ``(N, C, H, W)`` with the unsampled entries set to exactly ``+0``.

    Args:
        mask: binary mask, see :func:`binary_mask` for the accepted layouts.  Stored as the
            bool buffer ``mask`` (3-D masks as ``(N, 1, H, W)``).

    Declared domain = range: ``(C, H, W)`` with the mask's non-broadcast sizes; batch
    size ``N`` for per-sample masks.  Works for real and complex tensors (any dtype).
    """

    complex_domain = True
    preserves_shape = True

    def __init__(self, mask):
        super().__init__()
        self.register_buffer("mask", binary_mask(mask))

    @property
    def domain_shape(self) -> Shape:
        return _free(self.mask.shape[-3:])

    range_shape = domain_shape

    @property
    def batch_size(self) -> int | None:
        return _per_sample(self.mask, 4)

    def apply(self, k: torch.Tensor) -> torch.Tensor:
        """``B k`` as a new tensor (:func:`torch.where`), without checks."""
        zero = torch.zeros((), dtype=k.dtype, device=k.device)
        return torch.where(self.mask.to(k.device), k, zero)

    def apply_(self, k: torch.Tensor) -> torch.Tensor:
        """``B k`` in place (for intermediate k-space only; fills with exact ``+0``)."""
        return k.masked_fill_(~self.mask.to(k.device), 0)

    def forward(self, k: torch.Tensor) -> torch.Tensor:
        self.check_domain(k, "k")
        return self.apply(k)

    def adjoint(self, k: torch.Tensor) -> torch.Tensor:
        return self.forward(k)

    def normal(self, k: torch.Tensor) -> torch.Tensor:
        return self.forward(k)

    def extra_repr(self) -> str:
        return f"mask={tuple(self.mask.shape)}, sampled={float(self.mask.float().mean()):.4f}"


@register_operator("fft2", examples=(
    OperatorExample("centered_odd", lambda: FFT2("centered"), (2, 7, 9)),
    OperatorExample("unshifted", lambda: FFT2("unshifted"), (1, 6, 4))))
class FFT2(LinearOperator):
    """Orthonormal 2-D DFT ``F`` over the last two dims (:func:`mri_unfold.fft.fft2`).

    Args:
        layout: ``"centered"`` (DC at ``(H // 2, W // 2)``) or ``"unshifted"`` (DC at ``[0, 0]``).

    Shapes: ``(N, C, H, W)`` -> the same, complex (real input is promoted).  ``normal`` is
    the identity (``F^H F = I``).
    """

    complex_domain = True
    preserves_shape = True
    domain_shape = range_shape = (None, None, None)

    def __init__(self, layout: str = "centered"):
        super().__init__()
        _check_layout(layout)
        self.layout = layout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_domain(x)
        return fft2(x, self.layout)

    def adjoint(self, k: torch.Tensor) -> torch.Tensor:
        self.check_range(k, "k")
        return ifft2(k, self.layout)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        self.check_domain(x)
        return x.to(complex_dtype(x, "x"))

    def extra_repr(self) -> str:
        return f"layout={self.layout!r}"


@register_operator("coil_expansion", examples=(
    OperatorExample("shared", lambda: CoilExpansion(
        torch.randn(3, 5, 4, dtype=torch.complex128, generator=_g(3))), (1, 5, 4)),
    OperatorExample("per_sample", lambda: CoilExpansion(
        torch.randn(2, 4, 3, 5, dtype=torch.complex128, generator=_g(4)))),
    OperatorExample("volume", lambda: CoilExpansion(
        torch.randn(3, 4, 3, 5, dtype=torch.complex128, generator=_g(5)), spatial_dims=3))))
class CoilExpansion(LinearOperator):
    """SENSE coil expansion ``S``: ``x`` ``(N, 1, H, W)`` -> ``S_c x`` ``(N, C, H, W)``.

    Args:
        coil_maps: complex sensitivities ``(C, H, W)`` (shared by the batch) or
            ``(N, C, H, W)`` (per sample); numpy or tensor; real arrays are promoted.
            Stored as the float buffer ``maps_ri`` ``(..., 2)`` (real and imaginary parts,
            :func:`torch.view_as_real`) so that ``.to(torch.float64)`` keeps the imaginary
            part; :attr:`maps` is the complex view.
        spatial_dims: 2 (images ``(H, W)``, default) or 3 (volumes ``(X, Y, Z)``: maps
            ``(C, X, Y, Z)`` or ``(N, C, X, Y, Z)``, images ``(N, 1, X, Y, Z)``).

    ``adjoint``: ``Σ_c conj(S_c) y_c`` ``(N, C, H, W)`` -> ``(N, 1, H, W)``;
    ``normal``: ``x Σ_c |S_c|²``.
    """

    complex_domain = True

    def __init__(self, coil_maps, spatial_dims: int = 2):
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
        self.spatial_dims = int(spatial_dims)
        s = to_tensor(coil_maps, "coil_maps")
        if s.ndim not in (spatial_dims + 1, spatial_dims + 2):
            grid = "H, W" if spatial_dims == 2 else "X, Y, Z"
            raise ValueError(f"coil_maps must have shape (C, {grid}) or (N, C, {grid}), got "
                             f"{tuple(s.shape)}")
        s = s.to(complex_dtype(s, "coil_maps"))
        if not bool(torch.isfinite(torch.view_as_real(s)).all()):
            raise InvalidValue(f"coil_maps contain {int((~torch.isfinite(s)).sum())} NaN/Inf "
                               "values")
        self.register_buffer("maps_ri", torch.view_as_real(s).clone())

    @property
    def maps(self) -> torch.Tensor:
        """Complex maps ``(C, H, W)`` or ``(N, C, H, W)`` (a view of the buffer)."""
        return torch.view_as_complex(self.maps_ri)

    @property
    def num_coils(self) -> int:
        return int(self.maps_ri.shape[-self.spatial_dims - 2])

    @property
    def domain_shape(self) -> Shape:
        return (1,) + tuple(int(d) for d in self.maps_ri.shape[-self.spatial_dims - 1:-1])

    @property
    def range_shape(self) -> Shape:
        return tuple(int(d) for d in self.maps_ri.shape[-self.spatial_dims - 2:-1])

    @property
    def batch_size(self) -> int | None:
        return _per_sample(self.maps_ri, self.spatial_dims + 3)

    def maps_for(self, t: torch.Tensor) -> torch.Tensor:
        """Maps as ``(N or 1, C, H, W)`` (``(N or 1, C, X, Y, Z)`` for volumes) in ``t``'s
        complex precision and on its device."""
        ri = self.maps_ri.to(device=t.device, dtype=t.real.dtype)
        s = torch.view_as_complex(ri.contiguous())
        return s.unsqueeze(0) if s.ndim == self.spatial_dims + 1 else s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_domain(x)
        x = x.to(complex_dtype(x, "x"))
        return x * self.maps_for(x)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        self.check_range(y)
        y = y.to(complex_dtype(y, "y"))
        return (self.maps_for(y).conj() * y).sum(dim=1, keepdim=True)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        self.check_domain(x)
        x = x.to(complex_dtype(x, "x"))
        return x * self.maps_for(x).abs().square().sum(dim=1, keepdim=True)

    def extra_repr(self) -> str:
        return f"coil_maps={tuple(self.maps.shape)}"


@register_operator("real_to_complex", examples=(
    OperatorExample("images", lambda: RealToComplex(), (1, 4, 3)),))
class RealToComplex(LinearOperator):
    """Embedding of real tensors into complex ones, ``x -> x + 0i``.

    Its adjoint w.r.t. ``Re <., .>`` is the real part (``Re <x, y> = <x, Re y>`` for real
    ``x``), and ``normal`` is the identity.  Shapes: any ``(N, C, H, W)``; float32/float64
    -> complex64/complex128 and back.
    """

    complex_range = True
    preserves_shape = True
    domain_shape = range_shape = (None, None, None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_domain(x)
        if x.is_complex():
            raise TypeError(f"RealToComplex expects a real x (float32/float64), got {x.dtype}")
        return x.to(complex_dtype(x, "x"))

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        self.check_range(y)
        return y.real.contiguous() if y.is_complex() else y

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        self.check_domain(x)
        return x


@register_operator("identity", examples=(
    OperatorExample("real", lambda: Identity((1, 3, 4))),
    OperatorExample("complex", lambda: Identity((2, 3, 3), complex_domain=True))))
class Identity(LinearOperator):
    """``I x = x`` (the input tensor itself is returned).

    Args:
        domain_shape: declared per-sample shape (default ``None``: any shape).
        complex_domain: whether the (domain = range) space is complex.
    """

    preserves_shape = True

    def __init__(self, domain_shape: Shape | None = None, complex_domain: bool = False):
        super().__init__()
        self.domain_shape = self.range_shape = (None if domain_shape is None
                                                else tuple(domain_shape))
        self.complex_domain = bool(complex_domain)

    @property
    def H(self) -> LinearOperator:
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_domain(x)
        return x

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        self.check_range(y)
        return y

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)


def _g(seed: int) -> torch.Generator:
    """A private seeded generator for the registered examples."""
    return torch.Generator().manual_seed(seed)
