"""mri_unfold.metrics: PSNR/SSIM/NMSE against hand-computed and independent reference values."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.ndimage import uniform_filter

from mri_unfold.metrics import nmse, psnr, ssim


def _img(seed=0, shape=(32, 40)):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, size=shape)


def test_psnr_constant_error_of_one_on_255_scale():
    t = _img()
    assert psnr(t, t + 1.0, data_range=255) == pytest.approx(48.1308036, abs=1e-6)
    assert psnr(t, t - 1.0, data_range=255) == pytest.approx(20 * math.log10(255), abs=1e-9)


def test_psnr_is_the_papers_formula_exactly():
    t = _img(1)
    p = t + np.random.default_rng(2).normal(0, 3, t.shape)
    mse = np.mean((t - p) ** 2)
    assert psnr(t, p, data_range=255) == 20 * math.log10(255 / math.sqrt(mse))


def test_psnr_default_range_is_target_max_over_the_volume():
    t = np.stack([np.full((8, 8), 2.0), np.full((8, 8), 4.0)])
    p = t + 0.5  # mse 0.25, volume max 4 -> 20 log10(4 / 0.5)
    assert psnr(t, p) == pytest.approx(20 * math.log10(8.0), abs=1e-12)


def test_psnr_identical_is_inf():
    t = _img()
    assert psnr(t, t, data_range=255) == math.inf


def test_nmse_known_values():
    t = np.array([[3.0, 4.0], [0.0, 0.0]])
    p = np.array([[3.0, 3.0], [1.0, 0.0]])  # ||t-p||^2 = 2, ||t||^2 = 25
    assert nmse(t, p) == pytest.approx(0.08, abs=1e-15)
    assert nmse(t, t) == 0.0
    with pytest.raises(ValueError, match="all-zero target"):
        nmse(np.zeros((2, 2)), t)


def _ssim_reference(x, y, data_range):
    """Independent SSIM (Wang et al. 2004): 7x7 uniform window, sample covariance, valid crop."""
    n = 49
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = uniform_filter(x, 7), uniform_filter(y, 7)
    cov = n / (n - 1)
    vx = cov * (uniform_filter(x * x, 7) - mx * mx)
    vy = cov * (uniform_filter(y * y, 7) - my * my)
    vxy = cov * (uniform_filter(x * y, 7) - mx * my)
    s = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s[3:-3, 3:-3].mean()


def test_ssim_identical_is_one_and_matches_independent_reference():
    t = _img(3)
    p = np.clip(t + np.random.default_rng(4).normal(0, 60, t.shape), 0, 255)
    assert ssim(t, t, data_range=255) == 1.0
    ref = _ssim_reference(t, p, 255.0)
    assert 0.3 < ref < 0.95
    assert ssim(t, p, data_range=255) == pytest.approx(ref, abs=1e-10)


def test_ssim_volume_is_mean_of_slices_with_volume_max():
    t = np.stack([_img(5, (16, 16)), 0.5 * _img(6, (16, 16))])
    p = t + np.random.default_rng(7).normal(0, 5, t.shape)
    dr = t.max()
    expected = np.mean([_ssim_reference(t[i], p[i], dr) for i in range(2)])
    assert ssim(t, p) == pytest.approx(expected, abs=1e-10)
    assert ssim(t[:, None], p[:, None]) == pytest.approx(expected, abs=1e-10)  # (N,1,H,W)


def test_numpy_tensor_parity():
    t = _img(8)
    p = t + np.random.default_rng(9).normal(0, 4, t.shape)
    tt, pt = torch.from_numpy(t).float(), torch.from_numpy(p).float()
    for f in (psnr, ssim):
        assert f(tt, pt, data_range=255) == pytest.approx(
            f(t.astype(np.float32), p.astype(np.float32), data_range=255), abs=1e-12)
    assert nmse(tt, pt) == pytest.approx(nmse(t.astype(np.float32), p.astype(np.float32)),
                                         abs=1e-15)
    assert psnr(tt, pt, data_range=255) == pytest.approx(psnr(t, p, data_range=255), abs=1e-4)


def test_errors():
    t = _img()
    with pytest.raises(ValueError, match=r"shapes differ: \(32, 40\) vs \(32, 39\)"):
        psnr(t, t[:, :-1], data_range=255)
    with pytest.raises(ValueError, match="shapes differ"):
        ssim(t, t.T)
    with pytest.raises(ValueError, match="complex"):
        psnr(torch.ones(8, 8, dtype=torch.complex64), torch.ones(8, 8, dtype=torch.complex64))
    with pytest.raises(ValueError, match="target.max"):
        psnr(np.zeros((8, 8)), np.ones((8, 8)))
    with pytest.raises(ValueError, match="data_range must be a positive"):
        ssim(t, t, data_range=-1)
    with pytest.raises(ValueError, match="at least 7x7"):
        ssim(np.ones((5, 9)), np.ones((5, 9)))
    with pytest.raises(ValueError, match=r"\(H, W\), \(N, H, W\)"):
        nmse(np.ones((2, 3, 4, 5)), np.ones((2, 3, 4, 5)))
