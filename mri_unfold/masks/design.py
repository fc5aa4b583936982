"""Mask-design diagnostics: sampling statistics and the point-spread function (PSF).

The PSF of a mask ``M`` (centred layout) is the image-domain response to a point:
``|ifft2c(M)|`` normalised so that its peak — always at ``(H // 2, W // 2)``, value
``sum(M) / sqrt(H W)`` before normalisation — equals 1.  Incoherent (random-like) masks have low,
noise-like side lobes; regular undersampling gives coherent aliasing peaks.  The
peak-to-side-lobe ratio ``PSF(0) / max_{i != 0} |PSF(i)|`` (in dB:
``20 log10``) summarises this (Lustig, Donoho & Pauly 2007 use its inverse).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import InvalidValue
from ..fft import ifft2
from .result import center_window


def _mask2d(mask) -> np.ndarray:
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    m = np.asarray(mask, dtype=np.float64)
    if m.ndim != 2:
        raise InvalidValue(f"mask must be 2-D (H, W), got shape {m.shape}")
    return m


def psf(mask) -> np.ndarray:
    """Normalised point-spread function of a centred-layout mask.

    Args:
        mask: ``(H, W)`` 0/1 numpy array or tensor, centred layout.

    Returns:
        ``float64`` array ``(H, W)``, ``|ifft2c(mask)| / max``, peak 1 at ``(H // 2, W // 2)``
        (all zeros for an empty mask).
    """
    m = _mask2d(mask)
    p = ifft2(torch.from_numpy(m), "centered").abs().numpy()
    peak = p.max()
    return p / peak if peak > 0 else p


def peak_sidelobe_ratio(mask, db: bool = True) -> float:
    """Peak over the largest side lobe of :func:`psf` (the peak pixel excluded).

    Returns:
        ``20 log10(peak / max side lobe)`` when ``db`` (else the plain ratio); ``inf`` for a
        fully sampled mask (no side lobes).
    """
    p = psf(mask)
    h, w = p.shape
    peak = p[h // 2, w // 2]
    p = p.copy()
    p[h // 2, w // 2] = 0.0
    side = p.max()
    if side <= 1e-12 * max(peak, 1e-300):
        return math.inf
    r = peak / side
    return 20.0 * math.log10(r) if db else float(r)


def mask_stats(mask) -> dict:
    """Sampling statistics of a centred-layout mask.

    Returns:
        dict with ``shape`` (H, W), ``samples`` (int), ``ratio``, ``acceleration`` (``inf`` when
        empty), ``acs_lines`` (number of fully sampled columns in the widest fully sampled centred
        column window — the ACS lines of a 1-D Cartesian mask), ``center_size`` (side of the
        largest fully sampled centred square), ``center_points`` (``center_size ** 2``) and
        ``psr_db`` (:func:`peak_sidelobe_ratio`).
    """
    m = _mask2d(mask) != 0
    h, w = m.shape
    samples = int(m.sum())
    ratio = samples / m.size
    full_cols = m.all(axis=0)
    acs = 0
    while acs < w and full_cols[center_window(w, acs + 1)].all():
        acs += 1
    side = 0
    while side < min(h, w) and m[center_window(h, side + 1), center_window(w, side + 1)].all():
        side += 1
    return {
        "shape": (h, w),
        "samples": samples,
        "ratio": ratio,
        "acceleration": math.inf if samples == 0 else 1.0 / ratio,
        "acs_lines": acs,
        "center_size": side,
        "center_points": side * side,
        "psr_db": peak_sidelobe_ratio(m),
    }
