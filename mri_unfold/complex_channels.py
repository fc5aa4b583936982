"""The CNN boundary for complex images — the only place complex data becomes channels.

Operators work on native complex tensors.  Convolutional networks see real tensors with
real and imaginary parts as channels.  These two helpers are the only conversion
between the two views used anywhere in the project.

Layout: a complex image ``(N, C, H, W)`` becomes a real tensor ``(N, 2*C, H, W)`` with
channel order ``[re_0, im_0, re_1, im_1, ...]`` (real/imaginary interleaved per complex
channel; for the usual ``C == 1`` that is simply ``[real, imag]``).
"""
from __future__ import annotations

import torch


def complex_to_channels(x: torch.Tensor) -> torch.Tensor:
    """Complex ``(N, C, H, W)`` -> real ``(N, 2C, H, W)`` (``[re, im]`` per channel).

    Args:
        x: complex64/complex128 tensor with a channel dimension at index 1.
    Returns:
        float32/float64 tensor (the matching real dtype), contiguous.
    """
    if not x.is_complex():
        raise TypeError(f"complex_to_channels expects a complex tensor, got {x.dtype}")
    n, c, *rest = x.shape
    r = torch.view_as_real(x)  # (N, C, H, W, 2)
    return r.movedim(-1, 2).reshape(n, 2 * c, *rest).contiguous()


def channels_to_complex(x: torch.Tensor) -> torch.Tensor:
    """Real ``(N, 2C, H, W)`` -> complex ``(N, C, H, W)``; inverse of :func:`complex_to_channels`."""
    if x.is_complex():
        raise TypeError("channels_to_complex expects a real tensor with 2C channels")
    n, c2, *rest = x.shape
    if c2 % 2:
        raise ValueError(f"channels_to_complex needs an even channel count, got {c2}")
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()
    r = x.reshape(n, c2 // 2, 2, *rest).movedim(2, -1).contiguous()
    return torch.view_as_complex(r)
