"""Iterative solvers on any operator of :mod:`mri_unfold.operators`.

:func:`conjugate_gradient` solves ``(Φ^H Φ + λ I) x = Φ^H y`` per sample with only the
operator's ``adjoint`` and ``normal`` — Cartesian, multi-coil (SENSE) and, unchanged,
non-Cartesian operators.  Inner products are real parts of complex ones, the convention
under which the operators' adjoints are exact (real-domain operators included).
"""
from __future__ import annotations

import torch

__all__ = ["conjugate_gradient", "cg_sense"]


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample ``Re <a, b>`` of ``(N, ...)`` tensors, shape ``(N, 1, ..., 1)``."""
    prod = (a.conj() * b).real if a.is_complex() else a * b
    return prod.flatten(1).sum(1).reshape(-1, *([1] * (a.ndim - 1)))


def conjugate_gradient(normal, b: torch.Tensor, x0: torch.Tensor | None = None, *,
                       lamda: float = 0.0, max_iter: int = 30, tol: float = 1e-6) -> torch.Tensor:
    """Solve ``(normal + λ I) x = b`` for every sample of the batch by conjugate gradient.

    Args:
        normal: a self-adjoint, positive semi-definite map (e.g. ``op.normal``).
        b: right-hand side ``(N, ...)`` real or complex (e.g. ``op.adjoint(y)``).
        x0: start (default zeros).
        lamda: Tikhonov weight λ >= 0.
        max_iter: iterations at most.
        tol: stop a sample when ``‖r‖ <= tol ‖b‖``.
    Returns:
        ``x`` with ``b``'s shape and dtype.
    """
    if lamda < 0:
        raise ValueError(f"lamda must be >= 0, got {lamda}")
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    r = b - (normal(x) + lamda * x) if x0 is not None else b.clone()
    p = r.clone()
    rr = _dot(r, r)
    stop = (tol * tol) * _dot(b, b)
    for _ in range(max_iter):
        if bool((rr <= stop).all()):
            break
        ap = normal(p) + lamda * p
        alpha = torch.where(rr > stop, rr / _dot(p, ap).clamp_min(1e-30), torch.zeros_like(rr))
        x = x + alpha * p
        r = r - alpha * ap
        rr_new = _dot(r, r)
        p = r + (rr_new / rr.clamp_min(1e-30)) * p
        rr = rr_new
    return x


def cg_sense(y: torch.Tensor, op, *, lamda: float = 0.0, max_iter: int = 30,
             tol: float = 1e-6) -> torch.Tensor:
    """CG-SENSE: ``argmin_x ‖Φ x − y‖² + λ ‖x‖²`` by CG on the normal equations.

    Args:
        y: measurements in ``op``'s range, ``(N, ...)``.
        op: any operator (single-/multi-coil Fourier with coil maps: SENSE).
    Returns:
        The image ``(N, 1, H, W)`` in ``op``'s domain.
    """
    return conjugate_gradient(op.normal, op.adjoint(y), lamda=lamda, max_iter=max_iter, tol=tol)
