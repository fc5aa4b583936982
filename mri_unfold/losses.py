"""Training losses of the unfolding networks.

* :func:`l1_loss` — mean absolute error (MADUN);
* :func:`mse_symmetry_loss` — ISTA-Net Eq. (14): ``mean |x − x_gt|² + γ Σ_k mean(sym_k²)``,
  exactly as the authors' training script computes it (one mean over all elements per
  term, the per-phase means summed, γ = 0.01);
* :func:`per_phase_loss` — ISTA-Net Eq. (15) (``L*``): the discrepancy of *every* phase
  output plus the same symmetry term.

* :func:`kspace_loss` — self-supervised losses on held-out k-space samples (SSDU): the
  normalised L1–L2 of Yaman et al. (``‖d‖₂/‖y‖₂ + ‖d‖₁/‖y‖₁``), normalised L2 or L1, per
  sample and averaged over the batch.

Tensors: reconstructions/targets ``(N, 1, H, W)`` real or complex (complex errors use
``|·|²``); symmetry residuals are the real ``aux["sym"]`` tensors of the ISTA models.
:func:`build_loss` returns a callable ``loss(x, target, aux) -> scalar tensor``.

Example:
    >>> import torch
    >>> from mri_unfold.losses import build_loss
    >>> loss = build_loss("mse_sym", gamma=0.01)
    >>> x, t = torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2)
    >>> round(float(loss(x, t, {"sym": [torch.full((1, 1, 2, 2), 2.0)], "phases": [x]})), 6)
    1.04
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

GAMMA = 0.01


def _sq_err(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if a.shape != b.shape:
        raise ValueError(f"reconstruction {tuple(a.shape)} and target {tuple(b.shape)} differ in shape")
    d = a - b
    return d.abs().pow(2) if d.is_complex() else d.pow(2)


def l1_loss(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mean |x − target|`` over all elements (scalar)."""
    if x.shape != target.shape:
        raise ValueError(f"reconstruction {tuple(x.shape)} and target {tuple(target.shape)} differ in shape")
    return (x - target).abs().mean()


def symmetry_term(sym: Sequence[torch.Tensor]) -> torch.Tensor | float:
    """``Σ_k mean(sym_k²)`` (0.0 for an empty list)."""
    total: torch.Tensor | float = 0.0
    for s in sym:
        total = total + (s.abs().pow(2) if s.is_complex() else s.pow(2)).mean()
    return total


def mse_symmetry_loss(x: torch.Tensor, target: torch.Tensor, sym: Sequence[torch.Tensor],
                      gamma: float = GAMMA) -> torch.Tensor:
    """ISTA-Net Eq. (14): ``mean |x − target|² + γ Σ_k mean(sym_k²)`` (scalar)."""
    return _sq_err(x, target).mean() + gamma * symmetry_term(sym)


def per_phase_loss(phases: Sequence[torch.Tensor], target: torch.Tensor,
                   sym: Sequence[torch.Tensor], gamma: float = GAMMA) -> torch.Tensor:
    """ISTA-Net Eq. (15) ``L*``: ``Σ_k mean |x(k) − target|² + γ Σ_k mean(sym_k²)``."""
    if not phases:
        raise ValueError("per_phase_loss needs the per-phase outputs (aux['phases']), got none")
    fidelity = sum(_sq_err(p, target).mean() for p in phases)
    return fidelity + gamma * symmetry_term(sym)


#: Names of :func:`kspace_loss`.
KSPACE_LOSSES = ("l1l2", "l2", "l1")


def kspace_loss(pred: torch.Tensor, target: torch.Tensor, kind: str = "l1l2") -> torch.Tensor:
    """Normalised loss between predicted and measured k-space samples (SSDU).

    Args:
        pred / target: ``(N, ...)`` complex (or real) tensors of one shape: the network's
            k-space at the held-out locations and the measured values there (zero elsewhere).
        kind: ``"l1l2"`` ``‖d‖₂/‖y‖₂ + ‖d‖₁/‖y‖₁`` (the paper's), ``"l2"`` ``‖d‖₂²/‖y‖₂²``
            or ``"l1"`` ``‖d‖₁/‖y‖₁``, per sample (``d = pred − target``).
    Returns:
        The batch mean, a real scalar.
    Raises:
        ValueError: shapes differ, unknown kind.
    """
    if pred.shape != target.shape:
        raise ValueError(f"predicted k-space {tuple(pred.shape)} and measured k-space "
                         f"{tuple(target.shape)} differ in shape")
    if kind not in KSPACE_LOSSES:
        raise ValueError(f"unknown k-space loss {kind!r}; valid: {', '.join(KSPACE_LOSSES)}")
    d = (pred - target).abs().flatten(1)
    t = target.abs().flatten(1)
    tiny = torch.finfo(d.dtype).tiny
    l2 = d.pow(2).sum(1) / t.pow(2).sum(1).clamp_min(tiny)
    l1 = d.sum(1) / t.sum(1).clamp_min(tiny)
    out = {"l1l2": l2.clamp_min(tiny).sqrt() + l1, "l2": l2, "l1": l1}[kind]
    return out.mean()


LOSSES = ("l1", "mse_sym", "per_phase")


def build_loss(name: str, **opts) -> Callable[[torch.Tensor, torch.Tensor, dict], torch.Tensor]:
    """Loss by name: ``"l1"`` (no options), ``"mse_sym"`` / ``"per_phase"`` (``gamma``).

    Returns ``loss(x, target, aux)`` where ``aux`` is the model's aux dict
    (``{"sym": [...], "phases": [...]}``; ``None`` is accepted for ``"l1"``).
    """
    allowed = {"l1": (), "mse_sym": ("gamma",), "per_phase": ("gamma",)}
    if name not in allowed:
        raise ValueError(f"unknown loss {name!r}; valid losses: {', '.join(LOSSES)}")
    bad = [k for k in opts if k not in allowed[name]]
    if bad:
        raise ValueError(f"unknown option(s) {bad} for loss {name!r}; valid: {list(allowed[name]) or 'none'}")
    gamma = float(opts.get("gamma", GAMMA))

    def _aux(aux, key):
        if aux is None or key not in aux:
            raise ValueError(f"loss {name!r} needs aux[{key!r}]: call the model with return_aux=True")
        return aux[key]

    if name == "l1":
        return lambda x, target, aux=None: l1_loss(x, target)
    if name == "mse_sym":
        return lambda x, target, aux: mse_symmetry_loss(x, target, _aux(aux, "sym"), gamma)
    return lambda x, target, aux: per_phase_loss(_aux(aux, "phases"), target, _aux(aux, "sym"), gamma)


__all__ = ["l1_loss", "mse_symmetry_loss", "per_phase_loss", "symmetry_term", "build_loss", "LOSSES",
           "kspace_loss", "KSPACE_LOSSES"]
