"""ISTA-Net, ISTA-Net+ and FISTA-Net (Zhang & Ghanem, CVPR 2018), generic over Φ.

One class family; every phase ``k`` does

* gradient step  ``r = z − ρ_k Φ^HΦ z + ρ_k Φ^H y``  (``op.normal``, ``Φ^H y`` computed once;
  ``z = x(k)`` for ISTA-Net/ISTA-Net+, ``z = x(k) + μ_k (x(k) − x(k−1))`` for FISTA-Net);
* proximal step with learned transforms and a soft threshold ``θ_k``:

  - ISTA-Net:  ``x = G(soft(F(r), θ))``, ``F = f2 ∘ ReLU ∘ f1`` (1→C→C),
    ``G = g2 ∘ ReLU ∘ g1`` (C→C→1); symmetry residual ``sym = G(F(r)) − r``;
  - ISTA-Net+: ``x = r + conv_out(G̃(soft(F(D r), θ)))`` with ``D`` (1→C), ``F`` and
    ``G̃`` two C→C convs with a ReLU each, ``conv_out`` (C→1);
    ``sym = G̃(F(D r)) − D r`` (C channels).

All convolutions are raw weights without bias, 3x3, ``padding=1`` (the authors' code).
Parameter names: ``phases.{k}.step`` (ρ), ``phases.{k}.threshold`` (θ),
``phases.{k}.momentum`` (μ, FISTA-Net, phases k ≥ 1), and the conv weights
``phases.{k}.conv_d`` (ISTA-Net+), ``conv_f1``, ``conv_f2``, ``conv_g1``, ``conv_g2``,
``conv_out`` (ISTA-Net+).  Mapping to the authors' names: conv_D→conv_d,
conv1_forward→conv_f1, conv2_forward→conv_f2, conv1_backward→conv_g1,
conv2_backward→conv_g2, conv_G→conv_out, lambda_step→step, soft_thr→threshold.

Complex-domain operators: the CNN sees ``to_cnn(r)`` (2 channels, real/imag) and its
output returns through ``from_cnn``.  ``blockwise=True`` runs the CNN on every
``op.block_size`` block as an independent image (the authors' block-CS models).

Memory: ``model.grad_checkpoint = True`` (as MADUN's switch) recomputes every phase in the
backward pass (:func:`torch.utils.checkpoint.checkpoint`, ``use_reentrant=False``) instead
of keeping its activations; gradients equal the plain path.  Only active when autograd is.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .common import (INITS, check_image_channels, check_num_phases, check_operator_fits,
                     from_blocks, from_cnn, initial_estimate, soft_threshold, to_blocks, to_cnn)
from .registry import register_model

#: Initial values of the authors' code.
STEP_INIT = 0.5
THRESHOLD_INIT = 0.01


def _conv_weight(out_ch: int, in_ch: int, generator: torch.Generator | None) -> nn.Parameter:
    """Xavier-normal ``(out_ch, in_ch, 3, 3)`` float32 weight (private generator if given)."""
    w = torch.empty(out_ch, in_ch, 3, 3)
    nn.init.xavier_normal_(w, generator=generator)
    return nn.Parameter(w)


def _conv(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return F.conv2d(x, w, padding=1)


class IstaPhase(nn.Module):
    """One ISTA-Net phase.  CNN tensors are real ``(B, C_img, h, w)`` float.

    Parameters (float32): ``step`` ρ ``(1,)``, ``threshold`` θ ``(1,)``, ``conv_f1``
    ``(C, C_img, 3, 3)``, ``conv_f2`` / ``conv_g1`` ``(C, C, 3, 3)``, ``conv_g2``
    ``(C_img, C, 3, 3)``; the conv weights are drawn from ``generator`` in that order.
    """

    #: name of the conv weight whose input channels are the image channels
    input_conv = "conv_f1"

    def __init__(self, image_channels: int, channels: int, generator=None):
        super().__init__()
        self.step = nn.Parameter(torch.tensor([STEP_INIT]))
        self.threshold = nn.Parameter(torch.tensor([THRESHOLD_INIT]))
        self._make_convs(image_channels, channels, generator)

    def _make_convs(self, image_channels: int, channels: int, generator) -> None:
        self.conv_f1 = _conv_weight(channels, image_channels, generator)
        self.conv_f2 = _conv_weight(channels, channels, generator)
        self.conv_g1 = _conv_weight(channels, channels, generator)
        self.conv_g2 = _conv_weight(image_channels, channels, generator)

    def gradient_step(self, z: torch.Tensor, atb: torch.Tensor, op) -> torch.Tensor:
        """``r = z − ρ Φ^HΦ z + ρ Φ^H y`` in the image domain (same shape/dtype as ``z``)."""
        return z - self.step * op.normal(z) + self.step * atb

    def transform_f(self, t: torch.Tensor) -> torch.Tensor:
        return _conv(F.relu(_conv(t, self.conv_f1)), self.conv_f2)

    def transform_g(self, t: torch.Tensor) -> torch.Tensor:
        return _conv(F.relu(_conv(t, self.conv_g1)), self.conv_g2)

    def prox(self, r: torch.Tensor, need_sym: bool = True):
        """``r`` ``(B, C_img, h, w)`` -> (``x`` same shape, ``sym = G(F(r)) − r`` same shape,
        or ``None`` when ``need_sym`` is False)."""
        f = self.transform_f(r)
        x = self.transform_g(soft_threshold(f, self.threshold))
        return x, (self.transform_g(f) - r) if need_sym else None


class IstaPlusPhase(IstaPhase):
    """One ISTA-Net+ phase (residual form with the extra ``D`` and output convolutions).

    Conv weights (float32, drawn in this order): ``conv_d`` ``(C, C_img, 3, 3)``,
    ``conv_f1``, ``conv_f2``, ``conv_g1``, ``conv_g2`` ``(C, C, 3, 3)``, ``conv_out``
    ``(C_img, C, 3, 3)``.
    """

    input_conv = "conv_d"

    def _make_convs(self, image_channels: int, channels: int, generator) -> None:
        # creation order = the authors' (conv_D, forward, backward, conv_G)
        self.conv_d = _conv_weight(channels, image_channels, generator)
        self.conv_f1 = _conv_weight(channels, channels, generator)
        self.conv_f2 = _conv_weight(channels, channels, generator)
        self.conv_g1 = _conv_weight(channels, channels, generator)
        self.conv_g2 = _conv_weight(channels, channels, generator)
        self.conv_out = _conv_weight(image_channels, channels, generator)

    def prox(self, r: torch.Tensor, need_sym: bool = True):
        """``r`` ``(B, C_img, h, w)`` -> (``x`` same shape, ``sym`` ``(B, C, h, w)`` or ``None``)."""
        d = _conv(r, self.conv_d)
        f = self.transform_f(d)
        x = r + _conv(self.transform_g(soft_threshold(f, self.threshold)), self.conv_out)
        return x, (self.transform_g(f) - d) if need_sym else None


def fista_momenta(num_phases: int) -> list[float]:
    """FISTA's momentum schedule ``μ_k = (t_k − 1)/t_{k+1}``, ``t_0 = 1``,
    ``t_{k+1} = (1 + sqrt(1 + 4 t_k²))/2``, for phases ``k = 0..num_phases−1``
    (``μ_0 = 0``; then 0.2818, 0.4340, 0.5311, ...)."""
    t, out = 1.0, []
    for _ in range(num_phases):
        t_next = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0
        out.append((t - 1.0) / t_next)
        t = t_next
    return out


class _UnfoldedIsta(nn.Module):
    """Common driver of the ISTA family (see the module docstring).

    Args:
        num_phases: number of unfolded iterations N_p (9 in the papers).
        channels: feature maps C of the learned transforms (32).
        image_channels: CNN channels of the image: 1 for real-domain operators (default),
            2 for complex-domain ones (real and imaginary parts).  Every parameter is
            created in ``__init__``; an operator of the other kind raises ``ValueError``.
        init: ``"adjoint"`` (``x(0) = Φ^H y``) or ``"linear"`` (``x(0) = Qinit y``).
        blockwise: run the CNN on each ``op.block_size`` block as an independent image.
        seed: seed of a private generator for the initial conv weights (xavier-normal);
            ``None`` uses torch's default RNG (never reseeded).

    Call: ``model(y, op)`` -> ``x`` in ``op``'s image domain ``(N, 1, H, W)`` (float32 real,
    or complex64 for complex-domain operators); ``model(y, op, return_aux=True)`` ->
    ``(x, {"sym": [per-phase residual (N, C_sym, H, W) float], "phases": [x(1)..x(Np)]})``.

    Attributes:
        grad_checkpoint: ``False`` (default); ``True`` recomputes each phase in the backward
            pass (activation checkpointing) to save memory when training.
    """

    phase_class = IstaPhase

    def __init__(self, num_phases: int = 9, channels: int = 32, image_channels: int = 1,
                 init: str = "adjoint", blockwise: bool = False, seed: int | None = None):
        super().__init__()
        check_num_phases(num_phases)
        if not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be a positive integer, got {channels!r}")
        check_image_channels(image_channels)
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        self.config = dict(num_phases=num_phases, channels=channels, image_channels=image_channels,
                           init=init, blockwise=bool(blockwise), seed=seed)
        self.num_phases, self.channels, self.init = num_phases, channels, init
        self.blockwise = bool(blockwise)
        self.seed = seed
        self.image_channels = image_channels
        self.grad_checkpoint = False
        # one private generator draws every phase's convs in phase order (seed=None: torch's
        # default RNG, never reseeded)
        gen = torch.Generator().manual_seed(int(seed)) if seed is not None else None
        self.phases = nn.ModuleList(self._new_phase(k, gen) for k in range(num_phases))

    # ------------------------------------------------------------------ parameters
    def _new_phase(self, k: int, generator) -> IstaPhase:
        return self.phase_class(self.image_channels, self.channels, generator)

    @classmethod
    def image_channels_source(cls) -> tuple[str, int]:
        """``(state-dict key, axis)`` whose size is ``image_channels`` (the input channels of
        phase 0's input convolution); used by :func:`~mri_unfold.models.resolve_config`."""
        return f"phases.0.{cls.phase_class.input_conv}", 1

    # ------------------------------------------------------------------ forward
    def _prox(self, phase: IstaPhase, r: torch.Tensor, op, need_sym: bool):
        t = to_cnn(r)
        n, _, h, w = t.shape
        if self.blockwise:
            t = to_blocks(t, op.block_size)
        x_t, sym = phase.prox(t, need_sym)
        if self.blockwise:
            x_t = from_blocks(x_t, n, h, w)
            sym = from_blocks(sym, n, h, w) if need_sym else None
        return from_cnn(x_t, op.complex_domain), sym

    def _momentum_point(self, k: int, x: torch.Tensor, x_prev: torch.Tensor) -> torch.Tensor:
        return x

    def _phase(self, k: int, x: torch.Tensor, x_prev: torch.Tensor, atb: torch.Tensor, op,
               need_sym: bool):
        """Phase ``k``: momentum point, gradient step, proximal step -> ``(x(k+1), sym)``."""
        phase = self.phases[k]
        r = phase.gradient_step(self._momentum_point(k, x, x_prev), atb, op)
        return self._prox(phase, r, op, need_sym)

    def forward(self, y: torch.Tensor, op, return_aux: bool = False):
        """Reconstruct from measurements ``y`` (``op``'s measurement layout).

        The symmetry residuals cost two extra convolutions per phase; they are computed
        only when ``return_aux`` is True or the model is in training mode.

        Raises:
            ValueError: ``blockwise`` with an operator without blocks, or an operator whose
                image domain needs the other ``image_channels`` (real 1, complex 2).
        """
        if self.blockwise and not op.block_size:
            raise ValueError(f"blockwise=True needs a block-based operator; "
                             f"{type(op).__name__} has block_size=None")
        check_operator_fits(self, op)
        atb = op.adjoint(y)
        x = atb if self.init == "adjoint" else initial_estimate(y, op, self.init)
        need_sym = bool(return_aux or self.training)
        use_ckpt = self.grad_checkpoint and torch.is_grad_enabled()
        x_prev, syms, outs = x, [], []
        for k in range(len(self.phases)):
            if use_ckpt:
                x_new, sym = checkpoint(self._phase, k, x, x_prev, atb, op, need_sym,
                                        use_reentrant=False)
            else:
                x_new, sym = self._phase(k, x, x_prev, atb, op, need_sym)
            x_prev, x = x, x_new
            syms.append(sym)
            outs.append(x)
        if return_aux:
            return x, {"sym": syms, "phases": outs}
        return x


@register_model("ista_net")
class ISTANet(_UnfoldedIsta):
    """ISTA-Net (paper Eq. 4 and 10).  Config: see :class:`_UnfoldedIsta`."""

    phase_class = IstaPhase


@register_model("ista_net_plus")
class ISTANetPlus(_UnfoldedIsta):
    """ISTA-Net+ (residual ISTA-Net with ``D``/``G`` convolutions).  Config: see
    :class:`_UnfoldedIsta`; ``aux["sym"]`` entries have ``channels`` channels."""

    phase_class = IstaPlusPhase


@register_model("fista_net")
class FISTANet(_UnfoldedIsta):
    """FISTA-Net (paper section 3.4): ISTA-Net whose gradient step is taken at
    ``z(k) = x(k) + μ_k (x(k) − x(k−1))`` with a learnable ``μ_k`` per phase.

    Phase 0 has no momentum parameter (``x(−1) = x(0)``, so μ_0 would have no effect);
    phases ``k ≥ 1`` carry ``phases.{k}.momentum`` ``(1,)`` initialised to FISTA's schedule
    (:func:`fista_momenta`) when ``momentum_init="fista"`` or to a constant float.
    With all μ = 0 the network is exactly ISTA-Net with the same weights.

    Extra config: ``momentum_init`` ("fista" or float).
    """

    phase_class = IstaPhase

    def __init__(self, num_phases: int = 9, channels: int = 32, image_channels: int = 1,
                 init: str = "adjoint", blockwise: bool = False, seed: int | None = None,
                 momentum_init: str | float = "fista"):
        if not (momentum_init == "fista" or isinstance(momentum_init, (int, float))):
            raise ValueError(f"momentum_init must be 'fista' or a number, got {momentum_init!r}")
        self.momentum_init = momentum_init
        super().__init__(num_phases, channels, image_channels, init, blockwise, seed)
        self.config["momentum_init"] = momentum_init

    def _new_phase(self, k: int, generator) -> IstaPhase:
        phase = super()._new_phase(k, generator)
        if k > 0:
            mu = (fista_momenta(self.num_phases)[k] if self.momentum_init == "fista"
                  else float(self.momentum_init))
            phase.momentum = nn.Parameter(torch.tensor([mu]))
        return phase

    def _momentum_point(self, k: int, x: torch.Tensor, x_prev: torch.Tensor) -> torch.Tensor:
        if k == 0:
            return x
        return x + self.phases[k].momentum * (x - x_prev)


__all__ = ["ISTANet", "ISTANetPlus", "FISTANet", "IstaPhase", "IstaPlusPhase", "fista_momenta"]
