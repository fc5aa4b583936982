"""Iterative solvers on any operator of :mod:`mri_unfold.operators`.

:func:`conjugate_gradient` solves ``(Φ^H Φ + λ I) x = Φ^H y`` per sample with only the
operator's ``adjoint`` and ``normal`` — Cartesian, multi-coil (SENSE) and, unchanged,
non-Cartesian operators.  :func:`fista_l1` solves ``min ½‖Φ x − y‖² + λ ‖Ψ x‖₁`` for an
orthonormal transform ``Ψ`` (e.g. :class:`mri_unfold.wavelets.Wavelet2D`) for the whole
batch at once; :func:`max_eigenvalue` estimates ``‖Φ^H Φ‖`` (its step size).  Inner products are real parts of complex ones, the convention
under which the operators' adjoints are exact (real-domain operators included).
"""
from __future__ import annotations

import math

import torch

from .wavelets import soft_threshold

__all__ = ["conjugate_gradient", "cg_sense", "fista_l1", "max_eigenvalue"]


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


def max_eigenvalue(normal, like: torch.Tensor, iters: int = 20, seed: int = 0) -> torch.Tensor:
    """Per-sample largest eigenvalue of the self-adjoint PSD map ``normal`` by power
    iteration from a seeded random start (private generator) shaped and typed like ``like``
    ``(N, ...)``; returns ``(N, 1, ..., 1)`` real."""
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(like.shape, generator=g, dtype=like.real.dtype)
    v = (torch.complex(v, torch.randn(like.shape, generator=g, dtype=v.dtype))
         if like.is_complex() else v).to(like.device)
    lam = torch.ones(len(like), *([1] * (like.ndim - 1)), device=like.device)
    for _ in range(iters):
        v = v / _dot(v, v).sqrt().clamp_min(1e-30)
        w = normal(v)
        lam = _dot(v, w)
        v = w
    return lam.to(like.real.dtype)


def fista_l1(y: torch.Tensor, op, transform, lamda, *, max_iter: int = 100,
             lipschitz: torch.Tensor | float | None = None, normal=None) -> torch.Tensor:
    """``argmin_x ½‖Φ x − y‖² + λ ‖Ψ x‖₁`` per sample by FISTA (Beck & Teboulle 2009).

    Args:
        y: measurements ``(N, ...)`` in ``op``'s range.
        op: the operator (``adjoint``, ``normal``); ``x`` lives in its domain (real for
            real-domain operators).
        transform: orthonormal ``Ψ`` with ``forward``/``inverse`` on ``(N, C, H, W)`` (the
            proximal map is then ``Ψ^T soft(Ψ x, t λ)`` exactly).
        lamda: λ ``>= 0``, a number or a per-sample tensor ``(N, 1, 1, 1)``.
        max_iter: iterations.
        lipschitz: ``‖Φ^H Φ‖`` (per sample or one number); default :func:`max_eigenvalue`.
        normal: ``Φ^H Φ`` as a function (default ``op.normal``), e.g. a cheaper closed form.
    Returns:
        ``x`` ``(N, 1, H, W)`` in ``op``'s domain dtype.
    """
    aty = op.adjoint(y)
    normal = op.normal if normal is None else normal
    lip = max_eigenvalue(normal, aty) * 1.01 if lipschitz is None else lipschitz
    step = 1.0 / torch.as_tensor(lip, dtype=aty.real.dtype, device=aty.device).clamp_min(1e-12)
    thresh = step * torch.as_tensor(lamda, dtype=aty.real.dtype, device=aty.device)
    x = z = aty
    t = 1.0
    for _ in range(max_iter):
        v = torch.addcmul(z, step, normal(z) - aty, value=-1.0)  # z − s (Φ^H Φ z − Φ^H y)
        x_new = transform.inverse(soft_threshold(transform.forward(v), thresh))
        t_new = (1 + math.sqrt(1 + 4 * t * t)) / 2
        z = torch.lerp(x, x_new, 1 + (t - 1) / t_new)           # x_new + β (x_new − x)
        x, t = x_new, t_new
    return x
