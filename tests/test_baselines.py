"""Classical baselines: zero-filled, SigPy L1-wavelet and TV, both k-space layouts, 1/8 coils."""
from __future__ import annotations

import numpy as np
import pytest
import sigpy
import sigpy.mri
import torch

from mri_unfold.baselines import (DEFAULT_LAMBDA, l1_wavelet, run_baseline, sigpy_recon,
                                  total_variation, zero_filled)
from mri_unfold.fft import fft2
from mri_unfold.operators import MultiCoilFourier, SingleCoilFourier

N = 64


def _phantom() -> np.ndarray:
    return np.abs(sigpy.shepp_logan((N, N))).astype(np.float32)


def _centred_mask(seed: int = 0) -> np.ndarray:
    """~30 % variable-density random points + a fully sampled 8x8 centre (centred layout)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:N, :N] - N // 2
    prob = np.exp(-(yy ** 2 + xx ** 2) / (2 * (N / 5) ** 2))
    m = rng.random((N, N)) < 0.3 * prob / prob.mean()
    m[N // 2 - 4:N // 2 + 4, N // 2 - 4:N // 2 + 4] = True
    return m


def _psnr(t, p):
    return float(10 * np.log10(t.max() ** 2 / np.mean((t - p) ** 2)))


def test_sigpy_fft_is_our_centred_layout():
    x = np.random.default_rng(1).standard_normal((2, 5, 7)) + 1j
    ours = fft2(torch.from_numpy(x), "centered").numpy()
    np.testing.assert_allclose(sigpy.fft(x, axes=(-2, -1)), ours, atol=1e-12)


def test_zero_filled_single_and_multicoil():
    x = torch.from_numpy(_phantom()).to(torch.complex64)[None, None]
    m = _centred_mask()
    op = SingleCoilFourier(m)
    y = op(x)
    zf = zero_filled(y, op)
    assert zf.shape == (1, N, N) and zf.dtype == torch.float32
    torch.testing.assert_close(zf[0], op.adjoint(y)[0, 0].abs())
    maps = sigpy.mri.birdcage_maps((4, N, N)).astype(np.complex64)
    mop = MultiCoilFourier(m, maps)
    ym = mop(x)
    coil = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(ym[0].numpy(), axes=(-2, -1)),
                                        norm="ortho"), axes=(-2, -1))
    np.testing.assert_allclose(zero_filled(ym, mop)[0].numpy(),
                               np.sqrt((np.abs(coil) ** 2).sum(0)), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("method", [l1_wavelet, total_variation])
def test_sigpy_baselines_beat_zero_filled_single_coil(method):
    img = _phantom()
    op = SingleCoilFourier(_centred_mask())
    y = op(torch.from_numpy(img).to(torch.complex64)[None, None])
    zf = _psnr(img, zero_filled(y, op)[0].numpy())
    rec = method(y, op)
    assert rec.shape == (1, N, N) and rec.dtype == torch.float32
    gain = _psnr(img, rec[0].numpy()) - zf
    assert gain > 2.0, gain


def test_unshifted_layout_gives_the_same_result_as_centred():
    img = _phantom()
    m = _centred_mask()
    x = torch.from_numpy(img)[None, None]
    op_c = SingleCoilFourier(m, layout="centered", real_input=True)
    op_u = SingleCoilFourier(np.fft.ifftshift(m), layout="unshifted", real_input=True)
    r_c = l1_wavelet(op_c(x), op_c, max_iter=30)
    r_u = l1_wavelet(op_u(x), op_u, max_iter=30)
    torch.testing.assert_close(r_u, r_c, atol=1e-4, rtol=1e-4)


def test_multicoil_l1_wavelet_and_scale_invariance():
    img = _phantom()
    maps = sigpy.mri.birdcage_maps((8, N, N)).astype(np.complex64)
    op = MultiCoilFourier(_centred_mask(1), maps)
    y = op(torch.from_numpy(img).to(torch.complex64)[None, None])
    rec = l1_wavelet(y, op)[0].numpy()
    # the image recovered is |Σ conj(S) ...| = img * Σ|S|² ; compare after that weighting
    target = img * np.sqrt((np.abs(maps) ** 2).sum(0)) ** 2
    assert _psnr(target, rec) > _psnr(target, zero_filled(y, op)[0].numpy()) + 2
    # λ is relative to the zero-filled peak: scaling the data scales the result
    rec_scaled = l1_wavelet(y * 1e-4, op)[0].numpy()
    np.testing.assert_allclose(rec_scaled, rec * 1e-4, rtol=1e-3, atol=1e-4 * 1e-3 * rec.max())


def test_sigpy_recon_all_zero_kspace_and_errors():
    z = np.zeros((1, 8, 8), np.complex64)
    assert np.array_equal(sigpy_recon(z, np.ones((8, 8))), np.zeros((8, 8), np.complex64))
    with pytest.raises(ValueError, match="unknown baseline method 'foo'"):
        sigpy_recon(z, np.ones((8, 8)), method="foo")
    with pytest.raises(ValueError, match=r"kspace must have shape \(C, H, W\)"):
        sigpy_recon(z[0], np.ones((8, 8)))
    with pytest.raises(ValueError, match="unknown baseline 'bm3d'; valid: zero-filled, l1-wavelet, tv"):
        run_baseline("bm3d", torch.zeros(1, 1, 8, 8, dtype=torch.complex64), None)
    with pytest.raises(TypeError, match="baselines need a Fourier operator"):
        zero_filled(torch.zeros(1, 1, 8, 8, dtype=torch.complex64), object())
    assert set(DEFAULT_LAMBDA) == {"l1-wavelet", "tv"}
