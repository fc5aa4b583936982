"""A 3-D operator seen as a batch of 2-D slices: 2-D networks with 3-D data consistency.

Readout decoupling (Cartesian) and kz decoupling (stack of stars) split a 3-D scan into
independent 2-D problems, but a 3-D radial ("kooshball") scan, a stack of stars with rotated
or skipped partitions, or any 3-D trajectory does not decouple.  :class:`SliceStack` wraps
such a 3-D operator ``A`` (images ``(N, 1, X, Y, Z)``) so that an unfolding network — whose
CNNs are 2-D — runs on it unchanged: the network's images are the ``Z`` slices ``(X, Y)`` of
each volume, stacked along the batch, ``(N·Z, 1, X, Y)``; its data consistency (``A``,
``A^H``, the Toeplitz ``A^H A``) acts on the whole volume; its measurements are ``A``'s
k-space flattened, zero-padded to a multiple of ``Z`` and dealt out to the ``Z`` slices
(``(N·Z, C, L)``, :meth:`SliceStack.pack`).  Every step is a permutation, a reshape or a
zero-padding (whose adjoint is the crop), so the wrapper is exactly linear with the exact
adjoint of ``A`` — the 2-D denoisers then regularise slice by slice ("2.5-D").

Shapes: ``A``: ``(N, 1, X, Y, Z)`` -> ``(N, C, *rest)`` (``M = prod(rest)`` samples per coil);
the wrapper: ``(N·Z, 1, X, Y)`` -> ``(N·Z, C, L)`` with ``L = ceil(M / Z)``; its
``batch_size`` is ``Z`` (one volume per ``Z`` images; a batch of ``n`` volumes is ``n·Z``).
"""
from __future__ import annotations

import math

import torch

from .base import LinearOperator
from .fourier3d import CartesianFourier3D
from .noncartesian import NonCartesianFourier
from .registry import OperatorExample, register_operator

__all__ = ["SliceStack"]


class SliceStack(LinearOperator):
    """``A`` acting on stacks of ``Z`` slices (module doc).

    Args:
        op: a 3-D operator with a declared domain ``(1, X, Y, Z)`` and range ``(C, ...)``
            (:class:`~mri_unfold.operators.CartesianFourier3D`,
            :class:`~mri_unfold.operators.NonCartesianFourier` in 3-D,
            :class:`~mri_unfold.operators.StackOfStarsFourier`).
    Raises:
        ValueError: an operator without a fully declared 3-D domain and range.
    """

    def __init__(self, op: LinearOperator):
        super().__init__()
        dom, rng = op.domain_shape, op.range_shape
        if dom is None or len(dom) != 4 or rng is None or any(d is None for d in (*dom, *rng)):
            raise ValueError(f"SliceStack needs a 3-D operator with a declared domain (1, X, Y, "
                             f"Z) and range, got {op.label()} {dom} -> {rng}")
        self.op = op
        _, self.x, self.y, self.z = (int(d) for d in dom)
        self.coils, self.rest = int(rng[0]), tuple(int(d) for d in rng[1:])
        self.samples = math.prod(self.rest)
        self.per_slice = -(-self.samples // self.z)
        self.domain_shape, self.range_shape = (1, self.x, self.y), (self.coils, self.per_slice)
        self.batch_size = self.z
        self.complex_domain, self.complex_range = op.complex_domain, op.complex_range

    def label(self) -> str:
        return f"SliceStack({self.op.label()})"

    def volumes(self, x: torch.Tensor) -> torch.Tensor:
        """Slices ``(n·Z, 1, X, Y)`` -> volumes ``(n, 1, X, Y, Z)``."""
        return x.reshape(-1, self.z, 1, self.x, self.y).permute(0, 2, 3, 4, 1)

    def slices(self, v: torch.Tensor) -> torch.Tensor:
        """Volumes ``(n, 1, X, Y, Z)`` -> slices ``(n·Z, 1, X, Y)``."""
        return v.permute(0, 4, 1, 2, 3).reshape(-1, 1, self.x, self.y)

    def pack(self, k: torch.Tensor) -> torch.Tensor:
        """``A``'s measurements ``(n, C, *rest)`` -> the wrapper's ``(n·Z, C, L)``."""
        n = k.shape[0]
        flat = k.reshape(n, self.coils, self.samples)
        flat = torch.nn.functional.pad(flat, (0, self.z * self.per_slice - self.samples))
        return flat.reshape(n, self.coils, self.z, self.per_slice).transpose(1, 2).reshape(
            n * self.z, self.coils, self.per_slice)

    def unpack(self, y: torch.Tensor) -> torch.Tensor:
        """The wrapper's measurements ``(n·Z, C, L)`` -> ``A``'s ``(n, C, *rest)`` (the
        padding dropped: the adjoint of :meth:`pack`)."""
        flat = y.reshape(-1, self.z, self.coils, self.per_slice).transpose(1, 2)
        flat = flat.reshape(flat.shape[0], self.coils, -1)[..., :self.samples]
        return flat.reshape(flat.shape[0], self.coils, *self.rest)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_domain(x, "x", lambda: f"x must be (n*{self.z}, 1, {self.x}, {self.y}) slices")
        return self.pack(self.op(self.volumes(x)))

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        self.check_range(y, "y")
        return self.slices(self.op.adjoint(self.unpack(y)))

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        self.check_domain(x, "x")
        return self.slices(self.op.normal(self.volumes(x)))


def _examples():
    g = torch.Generator().manual_seed(1)
    traj = (torch.rand(45, 3, generator=g, dtype=torch.float64) * 2 - 1) * math.pi
    maps = torch.randn(2, 4, 5, 3, dtype=torch.complex128, generator=g)
    return (
        OperatorExample("kooshball", lambda: SliceStack(NonCartesianFourier(
            traj, (4, 5, 3), maps, dcf=torch.rand(45, generator=g, dtype=torch.float64)))),
        OperatorExample("cartesian_3d", lambda: SliceStack(CartesianFourier3D(
            torch.rand(5, 3, generator=g) < 0.5, maps))),
    )


register_operator("slice_stack", examples=_examples())(SliceStack)
