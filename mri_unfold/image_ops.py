"""Display/evaluation operations on images: magnitude, root-sum-of-squares, centre crops.

These are deliberately *not* part of any operator: an adjoint ``Φ^H y`` returns the full
complex (or real) image; taking magnitudes, combining coils or cropping to the fastMRI
evaluation size happens afterwards, here.

Cropping follows fastMRI (``fastmri.data.transforms.center_crop``): the crop of size
``h`` from a side of length ``H`` starts at ``(H - h) // 2``, which also fixes the
convention for odd sizes.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from fastmri.data.transforms import center_crop as _fastmri_center_crop
from fastmri.data.transforms import complex_center_crop as _fastmri_complex_center_crop

__all__ = ["magnitude", "rss", "center_crop", "complex_center_crop"]


def magnitude(x: torch.Tensor) -> torch.Tensor:
    """Pixel-wise magnitude ``|x|``.

    Args:
        x: complex64/complex128 (or real) tensor of any shape, e.g. ``(N, 1, H, W)``.
    Returns:
        Real tensor of the same shape (float32 for complex64, float64 for complex128).
    """
    if not torch.is_tensor(x):
        raise TypeError(f"magnitude expects a torch tensor, got {type(x).__name__}")
    return x.abs()


def rss(x: torch.Tensor, dim: int = 1, keepdim: bool = False) -> torch.Tensor:
    """Root-sum-of-squares coil combination ``sqrt(Σ_c |x_c|²)`` over ``dim``.

    Args:
        x: coil images, complex or real, e.g. ``(N, C, H, W)``.
        dim: the coil dimension (default 1).
        keepdim: keep ``dim`` with size 1 (e.g. ``(N, 1, H, W)``).
    Returns:
        Real tensor with ``dim`` removed (or kept with size 1), e.g. ``(N, H, W)``.
    """
    if not torch.is_tensor(x):
        raise TypeError(f"rss expects a torch tensor, got {type(x).__name__}")
    if not -x.ndim <= dim < x.ndim:
        raise ValueError(f"rss: dim={dim} is out of range for a tensor of shape "
                         f"{tuple(x.shape)}")
    return torch.sqrt((x.abs() ** 2).sum(dim=dim, keepdim=keepdim))


def _check_crop(shape: Sequence[int], have: tuple[int, int], what: str) -> tuple[int, int]:
    try:
        h, w = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: shape must be a pair (h, w), got {shape!r}") from None
    if not (0 < h <= have[0] and 0 < w <= have[1]):
        raise ValueError(f"{what}: crop shape {(h, w)} must be positive and no larger than the "
                         f"image size {have}")
    return h, w


def center_crop(x: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Centre crop of the last two dims (fastMRI semantics; complex tensors allowed).

    Args:
        x: ``(..., H, W)`` real or complex tensor.
        shape: ``(h, w)`` with ``0 < h <= H``, ``0 < w <= W``.
    Returns:
        ``x[..., (H-h)//2 : (H-h)//2 + h, (W-w)//2 : (W-w)//2 + w]`` (a view).
    """
    if not torch.is_tensor(x) or x.ndim < 2:
        raise ValueError("center_crop: x must be a tensor with at least 2 dims (..., H, W)")
    hw = _check_crop(shape, tuple(x.shape[-2:]), "center_crop")
    return _fastmri_center_crop(x, hw)


def complex_center_crop(x: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Centre crop of a fastMRI-style real tensor ``(..., H, W, 2)`` (re/im last).

    Native complex tensors do not need this: use :func:`center_crop`.
    """
    if not torch.is_tensor(x) or x.ndim < 3 or x.shape[-1] != 2:
        raise ValueError("complex_center_crop: x must have shape (..., H, W, 2), got "
                         f"{tuple(x.shape) if torch.is_tensor(x) else type(x).__name__}")
    hw = _check_crop(shape, tuple(x.shape[-3:-1]), "complex_center_crop")
    return _fastmri_complex_center_crop(x, hw)
