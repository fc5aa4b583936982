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


def soft_threshold(x: torch.Tensor, thr: torch.Tensor) -> torch.Tensor:
    """``sign(x) * relu(|x| - thr)`` (the authors' exact form)."""
    return torch.mul(torch.sign(x), F.relu(torch.abs(x) - thr))


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
