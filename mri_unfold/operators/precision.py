"""Keep an operator in full precision under autocast (:class:`Fp32Operator`).

Under ``torch.autocast`` (bf16/fp16) the networks' convolutions run in reduced precision;
the measurement operator should not: FFTs have no bf16 kernels on CPU, and Φ products in
bf16 lose the data consistency.  :class:`Fp32Operator` runs the wrapped operator with
autocast disabled on inputs promoted to fp32/complex64 (used by
:mod:`mri_unfold.fastpath` and the trainer).
"""
from __future__ import annotations

import torch

from .base import LinearOperator
from .block_cs import GaussianBlockCS
from .fourier import MultiCoilFourier, SingleCoilFourier
from .registry import OperatorExample, register_operator

__all__ = ["Fp32Operator", "full_precision"]

_REDUCED = {torch.bfloat16: torch.float32, torch.float16: torch.float32,
            torch.complex32: torch.complex64}


def full_precision(t: torch.Tensor) -> torch.Tensor:
    """bf16/fp16 -> float32, complex32 -> complex64; anything else unchanged."""
    target = _REDUCED.get(t.dtype)
    return t if target is None else t.to(target)


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@register_operator("fp32", examples=(
    OperatorExample("block_cs", lambda: Fp32Operator(GaussianBlockCS(0.25, 8, seed=0)),
                    (1, 8, 16)),
    OperatorExample("single_coil_real", lambda: Fp32Operator(SingleCoilFourier(
        torch.rand(6, 5, generator=_g(1)) < 0.5, real_input=True))),
    OperatorExample("multi_coil", lambda: Fp32Operator(MultiCoilFourier(
        torch.rand(6, 5, generator=_g(2)) < 0.5,
        torch.randn(3, 6, 5, dtype=torch.complex128, generator=_g(3)))))))
class Fp32Operator(LinearOperator):
    """Wrap an operator so that Φ, Φ^H, Φ^HΦ and ``linear_init`` run with autocast disabled
    on inputs promoted to fp32/complex64 (bf16/fp16 inputs are cast up; fp32, fp64 and
    complex inputs pass unchanged).

    Declarations (shapes, ``complex_domain``/``complex_range``, ``batch_size``,
    ``block_size``) and any other attribute are those of the wrapped operator ``op``.
    Shapes and dtypes: as ``op``.
    """

    def __init__(self, op: LinearOperator):
        super().__init__()
        if isinstance(op, Fp32Operator):
            op = op.op
        self.op = op
        self.complex_domain = op.complex_domain
        self.complex_range = op.complex_range
        self.block_size = op.block_size

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("op"), name)

    @property
    def domain_shape(self):
        return self.op.domain_shape

    @property
    def range_shape(self):
        return self.op.range_shape

    @property
    def batch_size(self):
        return self.op.batch_size

    @property
    def preserves_shape(self) -> bool:
        return self.op.preserves_shape

    def label(self) -> str:
        return f"Fp32Operator({self.op.label()})"

    def _run(self, fn, t: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=t.device.type, enabled=False):
            return fn(full_precision(t))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(self.op.forward, x)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self._run(self.op.adjoint, y)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(self.op.normal, x)

    def linear_init(self, y: torch.Tensor) -> torch.Tensor:
        return self._run(self.op.linear_init, y)

    def extra_repr(self) -> str:
        return "autocast disabled inside"
