"""Reconstructing a study's images with one mask and scoring them in both conventions.

Metrics per test image (:mod:`mri_unfold.metrics`), on magnitudes:

* ``psnr``, ``ssim``, ``nmse`` — data range = the maximum of the image's **volume** (for
  image folders every image is its own volume): the fastMRI convention;
* ``psnr255``, ``ssim255``, ``nmse255`` — the CS papers' convention: reconstruction clipped
  to [0, 1], both images on the 0..255 scale, data range 255 (images normalised to [0, 1],
  as every image source gives them).
"""
from __future__ import annotations

import numpy as np
import torch

from ..baselines import run_baseline
from ..metrics import nmse, psnr, psnr_255, ssim, ssim_255
from ..operators import SingleCoilFourier

__all__ = ["METRICS", "score", "measure", "classical_recon", "network_recon", "operator_for"]

#: Metric columns of ``results.csv`` (higher is better except the ``nmse`` ones).
METRICS = ("psnr", "ssim", "nmse", "psnr255", "ssim255", "nmse255")


def operator_for(mask: np.ndarray, complex_images: bool) -> SingleCoilFourier:
    """Single-coil Cartesian sampling with a centred ``(H, W)`` mask (real images: the
    ``real_input`` operator, as the CS-MRI papers)."""
    return SingleCoilFourier(mask, real_input=not complex_images)


def measure(op, images: torch.Tensor) -> torch.Tensor:
    """``y = Φ x`` for ``(N, 1, H, W)`` images (complex for complex-domain operators)."""
    if op.complex_domain and not images.is_complex():
        images = images.to(torch.complex64)
    return op(images)


def score(targets: torch.Tensor, recons: torch.Tensor, volumes: list[str]) -> list[dict]:
    """Metrics of every image (module doc).

    Args:
        targets: ``(N, 1, H, W)`` or ``(N, H, W)`` reference images (complex -> magnitude).
        recons: magnitudes ``(N, H, W)``.
        volumes: the volume of each image (the data range is the volume's maximum).
    Returns:
        one dict of :data:`METRICS` per image.
    """
    t = targets.abs() if targets.is_complex() else targets
    t = t.reshape(len(t), *t.shape[-2:]).double().cpu().numpy()
    r = recons.reshape(t.shape).double().cpu().numpy()
    peak = {}
    for v, img in zip(volumes, t):
        peak[v] = max(peak.get(v, 0.0), float(img.max()))
    rows = []
    for v, a, b in zip(volumes, t, r):
        dr = peak[v] if peak[v] > 0 else 1.0
        a255, b255 = np.clip(a, 0, 1) * 255, np.clip(b, 0, 1) * 255
        rows.append({"psnr": psnr(a, b, dr), "ssim": ssim(a, b, dr), "nmse": nmse(a, b),
                     "psnr255": psnr_255(a255, b255), "ssim255": ssim_255(a255, b255),
                     "nmse255": nmse(a255, b255)})
    return rows


def classical_recon(method: str, op, y: torch.Tensor, lamda: float | None,
                    max_iter: int) -> torch.Tensor:
    """One classical method of :data:`mri_unfold.baselines.BASELINES` -> ``(N, H, W)``
    magnitudes; ``lamda`` None for methods without one, ``max_iter`` 0 = its default."""
    opts = {}
    if lamda is not None:
        opts["lamda"] = lamda
    if max_iter and method != "zero-filled":
        opts["max_iter"] = max_iter
    return run_baseline(method, y, op, **opts).float()


@torch.no_grad()
def network_recon(model, op, y: torch.Tensor, device) -> torch.Tensor:
    """``|model(y, op)|`` ``(N, H, W)`` float32 on the CPU (the model in eval mode)."""
    model.eval()
    x = model(y.to(device), op.to(device))
    x = x.abs() if x.is_complex() else x
    return x.reshape(len(x), *x.shape[-2:]).float().cpu()
