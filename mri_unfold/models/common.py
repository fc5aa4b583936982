"""Pieces shared by the unfolding networks (no architecture-specific code here).

Image tensors are ``(N, 1, H, W)``: real for real-domain operators, complex otherwise.
CNN tensors are real ``(N, C, H, W)``; complex images enter/leave the CNN only through
:func:`to_cnn` / :func:`from_cnn` (which use :mod:`mri_unfold.complex_channels`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..complex_channels import channels_to_complex, complex_to_channels

INITS = ("adjoint", "linear")
#: Valid ``image_channels``: 1 = real images, 2 = complex images as (real, imag) channels.
IMAGE_CHANNELS = (1, 2)


class _SoftThreshold(torch.autograd.Function):
    """The authors' ``sign(x) * relu(|x| - θ)`` in two elementwise passes, with a
    hand-written backward on the saved output ``out``: ``∂/∂x = 1[out != 0]``,
    ``∂/∂θ = -Σ sign(out)`` (reduced to θ's shape).  Autograd's own backward of the
    authors' five-op form takes five to eight passes over the C-channel feature maps;
    this takes three.

    ``θ ≥ 0`` (a shrinkage): ``out = x - clamp(x, -θ, θ)``.  ``θ < 0`` (the authors' form
    then *expands* every nonzero ``x`` by ``|θ|``; several released checkpoints hold such
    thresholds): ``out = x - sign(x) θ``.  Both equal the authors' values bit for bit
    (IEEE negation is exact), and the backward above is the authors' gradient in both."""

    @staticmethod
    def forward(ctx, x, thr, shrink):
        out = x - torch.clamp(x, -thr, thr) if shrink else x - torch.sign(x) * thr
        ctx.save_for_backward(out)
        ctx.thr_shape, ctx.thr_dtype = thr.shape, thr.dtype
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        sign = torch.sign(out)
        gx = grad * sign.abs() if ctx.needs_input_grad[0] else None
        gt = None
        if ctx.needs_input_grad[1]:
            gt = -(grad * sign).sum().to(ctx.thr_dtype)
            gt = gt.expand(ctx.thr_shape).clone() if len(ctx.thr_shape) else gt
        return gx, gt, None


def _soft_threshold_authors(x: torch.Tensor, thr: torch.Tensor) -> torch.Tensor:
    return torch.mul(torch.sign(x), F.relu(torch.abs(x) - thr))


def soft_threshold(x: torch.Tensor, thr: torch.Tensor) -> torch.Tensor:
    """``sign(x) * relu(|x| - thr)``, the authors' values and gradients for any sign of
    ``thr``.  ``x`` any real tensor; ``thr`` a tensor of one element (the models' ``θ_k``,
    shape ``(1,)``); the result has their promoted dtype (bf16 ``x`` with a float32 ``thr``:
    float32, as the authors' form).

    On CPU the fused :class:`_SoftThreshold` is used (choosing its branch reads ``θ``'s
    sign, free on CPU).  On accelerators (where reading ``θ`` would synchronise the
    device) and inside ``torch.compile`` (which fuses the elementwise ops itself) the
    authors' form runs as written.
    """
    if thr.numel() != 1:
        raise ValueError(f"soft_threshold takes a one-element threshold, got shape "
                         f"{tuple(thr.shape)}")
    if thr.device.type != "cpu" or torch.compiler.is_compiling():
        return _soft_threshold_authors(x, thr)
    return _SoftThreshold.apply(x, thr, bool(thr.detach().reshape(()) >= 0))


def initial_estimate(y: torch.Tensor, op, init: str) -> torch.Tensor:
    """x(0): ``"adjoint"`` -> ``Φ^H y``; ``"linear"`` -> ``Qinit y`` (``op.linear_init``)."""
    if init == "adjoint":
        return op.adjoint(y)
    if init == "linear":
        return op.linear_init(y)
    raise ValueError(f"init must be one of {INITS}, got {init!r}")


def to_cnn(x: torch.Tensor) -> torch.Tensor:
    """Image -> CNN tensor: complex ``(N,1,H,W)`` -> real ``(N,2,H,W)``; real passes through."""
    return complex_to_channels(x) if x.is_complex() else x


def from_cnn(t: torch.Tensor, complex_domain: bool) -> torch.Tensor:
    """CNN tensor -> image: inverse of :func:`to_cnn` for the operator's domain."""
    return channels_to_complex(t) if complex_domain else t


def image_channels_for(op) -> int:
    """CNN channels an operator's image needs: 2 for complex domains, else 1."""
    return 2 if getattr(op, "complex_domain", False) else 1


#: Most unrolled phases/stages a model may declare (the papers use 9-25).  A checkpoint's
#: config is checked against it before anything is built: a forged ``num_phases = 10**6``
#: would take minutes to construct even on the meta device.
MAX_PHASES = 1000


def check_num_phases(value, name: str = "num_phases") -> int:
    """Validate a phase/stage count: an int in ``1..MAX_PHASES``; returns it.

    Raises:
        ValueError naming ``name`` and the value.
    """
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if value > MAX_PHASES:
        raise ValueError(f"{name} must be at most {MAX_PHASES}, got {value!r}")
    return value


def check_image_channels(image_channels) -> int:
    """Validate a model's ``image_channels`` config value (1 or 2) and return it.

    Raises:
        ValueError: anything else; ``None`` (the config of checkpoints written before the
            models built their weights at construction) points to ``resolve_config``.
    """
    if image_channels is None:
        raise ValueError("image_channels must be 1 (real) or 2 (complex), got None (configs of "
                         "older checkpoints store null: fill it in from the weights with "
                         "mri_unfold.models.resolve_config)")
    if isinstance(image_channels, bool) or image_channels not in IMAGE_CHANNELS:
        raise ValueError(f"image_channels must be 1 (real) or 2 (complex), got "
                         f"{image_channels!r}")
    return int(image_channels)


def check_operator_fits(model, op) -> None:
    """Raise ``ValueError`` unless ``op``'s image domain needs ``model.image_channels``
    CNN channels (:func:`image_channels_for`); the message names the model class, its
    ``image_channels``, the operator class and what it needs."""
    need = image_channels_for(op)
    have = model.image_channels
    if need != have:
        kind = "complex" if need == 2 else "real"
        raise ValueError(f"{type(model).__name__} model expects {have}-channel images but the "
                         f"operator gives {need}: built with image_channels={have} but "
                         f"{type(op).__name__} has a {kind} image domain (needs "
                         f"image_channels={need})")


def to_blocks(t: torch.Tensor, b: int) -> torch.Tensor:
    """``(N, C, H, W)`` -> ``(N*(H/b)*(W/b), C, b, b)``: each block an independent image
    (row-major block order), as the authors' ISTA-Net code convolves 33x33 blocks."""
    n, c, h, w = t.shape
    if h % b or w % b:
        raise ValueError(f"blockwise CNN needs sides that are multiples of {b}, got {(h, w)}")
    return t.reshape(n, c, h // b, b, w // b, b).permute(0, 2, 4, 1, 3, 5).reshape(-1, c, b, b)


def from_blocks(t: torch.Tensor, n: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`to_blocks` for an image batch of ``n`` images of size ``h x w``."""
    c, b = t.shape[1], t.shape[-1]
    return t.reshape(n, h // b, w // b, c, b, b).permute(0, 3, 1, 4, 2, 5).reshape(n, c, h, w)
