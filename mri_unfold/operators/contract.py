"""The contract every operator passes: :func:`check_operator`.

Checked in double precision on a deep copy of the operator cast to float64 (its complex
buffers to complex128), with seeded random inputs (a private generator; the global RNG is
never touched):

* ``adjoint`` — the dot-product test ``Re <A x, y> == Re <x, A^H y>``, the error relative
  to ``||A x|| ||y||``, for a random ``y``;
* ``adjoint_ax`` — the same with ``y = A x``: ``||A x||² == Re <x, A^H A x>`` relative to
  ``||A x||²``.  A random ``y`` dilutes a scale error of the adjoint by about ``1/sqrt(n)``;
  this pair does not, so an adjoint off by a factor ``1 + e`` fails for ``e > rtol``;
* ``linearity`` — ``A(a x1 + b x2) == a A x1 + b A x2`` for real ``a``, ``b`` (operators
  are linear over the reals, the sense of their ``Re <., .>`` adjoint: ``x -> Re(x)`` on
  complex tensors is one), relative to ``|a| ||A x1|| + |b| ||A x2||``;
* ``normal`` — ``normal(x) == adjoint(forward(x))``, relative to ``||A^H A x||``;
* ``declarations`` — output shapes fit ``range_shape`` / ``domain_shape`` (with the
  declared ``batch_size``), outputs are complex exactly when ``complex_range`` /
  ``complex_domain`` say so, and shapes round-trip (``A^H y`` and ``normal(x)`` have
  ``x``'s shape).

A check that raises counts as failed (the exception is reported).
"""
from __future__ import annotations

import copy
import dataclasses

import torch

from .base import LinearOperator
from .shapes import fits, format_shape

__all__ = ["check_operator", "OperatorReport", "OperatorContractError"]


class OperatorContractError(AssertionError):
    """An operator failed :func:`check_operator`; ``report`` holds every result."""

    def __init__(self, message: str, report: "OperatorReport"):
        super().__init__(message)
        self.report = report


@dataclasses.dataclass
class OperatorReport:
    """Result of :func:`check_operator`.

    Attributes:
        operator: the operator's label.
        domain_shape: the per-sample input shape used; ``batch``: the batch size used.
        errors: relative error per numerical check (``adjoint``, ``adjoint_ax``,
            ``linearity``, ``normal``).
        failures: one line per failed check (empty when the operator passes).
    """

    operator: str
    domain_shape: tuple[int, ...]
    batch: int
    errors: dict[str, float] = dataclasses.field(default_factory=dict)
    failures: list[str] = dataclasses.field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def _inner(a: torch.Tensor, b: torch.Tensor) -> float:
    """``Re <a, b> = Re Σ conj(a) b`` (a real tensor counts as complex with zero imaginary
    part)."""
    a, b = a.reshape(-1), b.reshape(-1)
    if a.is_complex() or b.is_complex():
        return float(torch.vdot(a.to(torch.complex128), b.to(torch.complex128)).real)
    return float(torch.dot(a, b))


def _norm(t: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(t))


def _random(shape, is_complex: bool, g: torch.Generator) -> torch.Tensor:
    if is_complex:
        return torch.randn(shape, dtype=torch.complex128, generator=g)
    return torch.randn(shape, dtype=torch.float64, generator=g)


def _declared(report: OperatorReport, what: str, t: torch.Tensor, pattern, batch: int,
              is_complex: bool) -> None:
    if not fits(tuple(t.shape[1:]), pattern) or t.shape[0] != batch:
        report.failures.append(f"declarations: {what} has shape {tuple(t.shape)}, declared "
                               f"{format_shape(pattern, batch)}")
    if t.is_complex() != bool(is_complex):
        report.failures.append(f"declarations: {what} is {t.dtype}, declared "
                               f"{'complex' if is_complex else 'real'}")


def _run_checks(op: LinearOperator, report: OperatorReport, shape, g, rtol: float) -> None:
    cx, cy = op.complex_domain, op.complex_range
    x1, x2 = _random(shape, cx, g), _random(shape, cx, g)
    ax1 = op(x1)
    _declared(report, "forward(x)", ax1, op.range_shape, shape[0], cy)
    y = _random(tuple(ax1.shape), cy, g)
    aty = op.adjoint(y)
    _declared(report, "adjoint(y)", aty, op.domain_shape, shape[0], cx)
    if tuple(aty.shape) != tuple(shape):
        report.failures.append(f"declarations: adjoint(y) has shape {tuple(aty.shape)}, x has "
                               f"{tuple(shape)}")
        return
    scale = max(_norm(ax1) * _norm(y), 1e-300)
    report.errors["adjoint"] = abs(_inner(ax1, y) - _inner(x1, aty)) / scale
    # the same test with y = A x: <A x, A x> = <x, A^H A x> has no random cancellation, so a
    # scaled adjoint (1 + e) A^H shows its full relative error e (the random y dilutes it by
    # about 1/sqrt(n))
    report.errors["adjoint_ax"] = (abs(_norm(ax1) ** 2 - _inner(x1, op.adjoint(ax1)))
                                   / max(_norm(ax1) ** 2, 1e-300))

    a, b = 0.7, -2.1
    ax2 = op(x2)
    diff = op(a * x1 + b * x2) - (a * ax1 + b * ax2)
    report.errors["linearity"] = _norm(diff) / max(abs(a) * _norm(ax1) + abs(b) * _norm(ax2),
                                                   1e-300)
    n = op.normal(x1)
    _declared(report, "normal(x)", n, op.domain_shape, shape[0], cx)
    ref = op.adjoint(ax1)
    if tuple(n.shape) == tuple(ref.shape):
        report.errors["normal"] = _norm(n - ref) / max(_norm(ref), 1e-300)
    else:
        report.failures.append(f"normal: normal(x) has shape {tuple(n.shape)}, "
                               f"adjoint(forward(x)) {tuple(ref.shape)}")
    for name, err in report.errors.items():
        if not err <= rtol:  # also catches NaN
            report.failures.append(f"{name}: relative error {err:.3e} > rtol {rtol:.1e}")


def check_operator(op: LinearOperator, *, domain_shape=None, batch: int = 2,
                   rtol: float = 1e-10, generator: torch.Generator | None = None
                   ) -> OperatorReport:
    """Check ``op`` against the operator contract (module doc) in float64/complex128.

    Args:
        op: the operator (not modified: a deep copy is cast to float64).
        domain_shape: per-sample input shape; default ``op.domain_shape``, which must then
            have no free sizes.
        batch: batch size of the inputs, unless ``op.batch_size`` fixes it.
        rtol: largest accepted relative error of the numerical checks.
        generator: random generator for the inputs (default: seeded with 0).
    Returns:
        :class:`OperatorReport` (errors per check).
    Raises:
        OperatorContractError (an AssertionError): listing every failed check.
        ValueError: no usable ``domain_shape``.
    """
    shape = tuple(domain_shape) if domain_shape is not None else op.domain_shape
    if shape is None or any(d is None for d in shape):
        raise ValueError(f"check_operator: {op.label()} declares the domain "
                         f"{format_shape(shape)}; give domain_shape= with every size")
    if op.domain_shape is not None and not fits(shape, op.domain_shape):
        raise ValueError(f"check_operator: domain_shape {shape} does not fit the declared "
                         f"domain {format_shape(op.domain_shape)} of {op.label()}")
    n = op.batch_size if op.batch_size is not None else int(batch)
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    report = OperatorReport(op.label(), shape, n)
    op64 = copy.deepcopy(op).to(torch.float64)
    try:
        with torch.no_grad():
            _run_checks(op64, report, (n,) + shape, g, rtol)
    except Exception as e:  # noqa: BLE001 - a raising check is a failed check, reported
        report.failures.append(f"raised {type(e).__name__}: {e}")
    if report.failures:
        lines = "\n".join(f"  - {f}" for f in report.failures)
        raise OperatorContractError(f"{report.operator} fails the operator contract "
                                    f"(input {format_shape(shape, n)}):\n{lines}", report)
    return report
