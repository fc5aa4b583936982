"""Image-quality metrics: PSNR, SSIM and NMSE.

Every metric takes ``target`` (the reference) first and ``prediction`` second, as numpy arrays or torch
tensors (any real dtype, any device; computed in float64 on the CPU) of shape

* ``(H, W)`` — one image,
* ``(N, H, W)`` — a volume / batch of slices, or ``(N, 1, H, W)`` (the channel is dropped),

and return a Python ``float``.

``data_range`` (PSNR and SSIM):

* ``None`` (default) -> ``target.max()`` over the **whole input** (one value for a volume) — the
  fastMRI convention (``fastmri.evaluate``), meant for non-negative magnitude images;
* a number -> used as is.  The compressive-sensing papers (ISTA-Net, MADUN, ADMM-Net) evaluate
  8-bit images on the 0..255 scale with ``data_range=255``; images in [0, 1] need
  ``data_range=1`` (or multiply by 255 and pass 255).

Definitions:

* ``psnr = 20 log10(data_range / sqrt(mse))`` with ``mse`` the mean over all pixels (the papers'
  formula; ``inf`` when the images are identical);
* ``ssim`` = :func:`skimage.metrics.structural_similarity` with a 7x7 uniform window
  (skimage's defaults: K1 = 0.01, K2 = 0.03, sample covariance), computed per slice and averaged
  over slices, all with the same ``data_range`` (as ``fastmri.evaluate.ssim``);
* ``nmse = ||target - prediction||^2 / ||target||^2`` over the whole input.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from scipy import stats
from skimage.metrics import structural_similarity

__all__ = ["psnr", "ssim", "nmse", "quality", "psnr_255", "ssim_255", "ci95"]

SSIM_WINDOW = 7


def _as_array(x, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        if x.is_complex():
            raise ValueError(f"{name} is complex; pass a real image (e.g. its magnitude)")
        x = x.detach().to("cpu", torch.float64).numpy()
    x = np.asarray(x)
    if np.iscomplexobj(x):
        raise ValueError(f"{name} is complex; pass a real image (e.g. its magnitude)")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise ValueError(f"{name} must be numeric, got dtype {x.dtype}")
    x = x.astype(np.float64, copy=False)
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim not in (2, 3):
        raise ValueError(f"{name} must have shape (H, W), (N, H, W) or (N, 1, H, W); "
                         f"got {tuple(x.shape)}")
    return x


def _pair(target, prediction) -> tuple[np.ndarray, np.ndarray]:
    t, p = _as_array(target, "target"), _as_array(prediction, "prediction")
    if t.shape != p.shape:
        raise ValueError(f"target and prediction shapes differ: {tuple(t.shape)} vs {tuple(p.shape)}")
    return t, p


def _data_range(t: np.ndarray, data_range) -> float:
    if data_range is None:
        dr = float(t.max())
        if not dr > 0:
            raise ValueError(f"data_range=None uses target.max(), which is {dr:g}; pass "
                             "data_range explicitly (e.g. 255 for 8-bit images)")
        return dr
    dr = float(data_range)
    if not (dr > 0 and math.isfinite(dr)):
        raise ValueError(f"data_range must be a positive finite number, got {data_range!r}")
    return dr


def psnr(target, prediction, data_range=None) -> float:
    """Peak signal-to-noise ratio in dB: ``20 log10(data_range / sqrt(mean((target-prediction)**2)))``.

    Args:
        target: reference image(s), ``(H, W)``, ``(N, H, W)`` or ``(N, 1, H, W)``.
        prediction: same shape.
        data_range: peak value; ``None`` -> ``target.max()`` (fastMRI), 255 for the CS papers.

    Returns:
        PSNR in dB over all pixels (``inf`` when identical).
    """
    t, p = _pair(target, prediction)
    dr = _data_range(t, data_range)
    mse = float(np.mean((t - p) ** 2))
    if mse == 0:
        return math.inf
    return 20.0 * math.log10(dr / math.sqrt(mse))


def ssim(target, prediction, data_range=None) -> float:
    """Mean structural similarity (7x7 window) over the slices.

    Args:
        target, prediction: ``(H, W)``, ``(N, H, W)`` or ``(N, 1, H, W)``; H and W at least 7.
        data_range: ``None`` -> ``target.max()`` of the whole input (fastMRI), 255 for the papers.

    Returns:
        SSIM averaged over slices (1.0 for identical images).
    """
    t, p = _pair(target, prediction)
    if min(t.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(f"ssim needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, "
                         f"got {tuple(t.shape[-2:])}")
    dr = _data_range(t, data_range)
    if t.ndim == 2:
        t, p = t[None], p[None]
    vals = [structural_similarity(a, b, win_size=SSIM_WINDOW, data_range=dr) for a, b in zip(t, p)]
    return float(np.mean(vals))


def nmse(target, prediction) -> float:
    """Normalised mean squared error ``||target - prediction||^2 / ||target||^2`` over all pixels.

    Raises:
        ValueError: shape mismatch, or ``target`` identically zero.
    """
    t, p = _pair(target, prediction)
    denom = float(np.sum(t**2))
    if denom == 0:
        raise ValueError("nmse is undefined for an all-zero target")
    return float(np.sum((t - p) ** 2)) / denom


def quality(target, prediction, data_range=None) -> dict[str, float]:
    """``{"psnr", "ssim", "nmse"}`` of ``prediction`` against ``target`` with one
    ``data_range`` (``None`` -> ``target.max()``, the fastMRI per-volume convention)."""
    t, p = _pair(target, prediction)
    dr = _data_range(t, data_range)
    return {"psnr": psnr(t, p, dr), "ssim": ssim(t, p, dr), "nmse": nmse(t, p)}


def psnr_255(target, prediction) -> float:
    """The CS papers' PSNR: :func:`psnr` with ``data_range=255`` (float64
    ``20 log10(255 / sqrt(mean((target − prediction)²)))``), and 100 for identical images as
    in the authors' test scripts."""
    value = psnr(target, prediction, data_range=255)
    return 100.0 if math.isinf(value) else value


def ssim_255(target, prediction) -> float:
    """:func:`ssim` with ``data_range=255`` (scikit-image, 7x7 uniform window), as the CS
    papers' test scripts."""
    return ssim(target, prediction, data_range=255)


def ci95(values) -> tuple[float, float, float, float]:
    """``(mean, std, ci_low, ci_high)`` of the finite ``values``: sample std (ddof 1) and the
    Student-t 95 % interval of the mean (``nan`` spread for a single value; all ``nan``
    without values)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return (math.nan,) * 4
    mean = float(v.mean())
    if len(v) < 2:
        return mean, math.nan, math.nan, math.nan
    std = float(v.std(ddof=1))
    half = float(stats.t.ppf(0.975, len(v) - 1)) * std / math.sqrt(len(v))
    return mean, std, mean - half, mean + half

