"""mri_unfold.fft against numpy.fft (orthonormal; centred = ifftshift -> fft2 -> fftshift)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from mri_unfold.fft import LAYOUTS, fft2, ifft2

SHAPES = [(8, 8), (7, 9), (5, 6), (2, 3, 11, 4)]


def _rand(shape, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def _numpy_fft2(a, layout):
    if layout == "unshifted":
        return np.fft.fft2(a, norm="ortho")
    ax = (-2, -1)
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(a, axes=ax), norm="ortho"), axes=ax)


def _numpy_ifft2(a, layout):
    if layout == "unshifted":
        return np.fft.ifft2(a, norm="ortho")
    ax = (-2, -1)
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(a, axes=ax), norm="ortho"), axes=ax)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", SHAPES)
def test_fft2_and_ifft2_match_numpy_ortho(layout, shape):
    a = _rand(shape, seed=len(shape) + shape[-1])
    t = torch.from_numpy(a)
    k = fft2(t, layout)
    assert k.dtype == torch.complex128 and k.shape == t.shape
    np.testing.assert_allclose(k.numpy(), _numpy_fft2(a, layout), rtol=0, atol=1e-12)
    np.testing.assert_allclose(ifft2(t, layout).numpy(), _numpy_ifft2(a, layout),
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(ifft2(k, layout).numpy(), a, rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape", [(8, 8), (7, 9)])
def test_centered_layout_puts_dc_at_centre_and_unshifted_at_origin(shape):
    ones = torch.ones(shape, dtype=torch.complex128)
    h, w = shape
    dc = np.sqrt(h * w)  # orthonormal: DC of a constant image is sum / sqrt(HW)
    kc, ku = fft2(ones, "centered"), fft2(ones, "unshifted")
    assert kc[h // 2, w // 2].real == pytest.approx(dc, abs=1e-12)
    assert ku[0, 0].real == pytest.approx(dc, abs=1e-12)
    assert kc.abs().sum().item() == pytest.approx(dc, abs=1e-9)  # only one nonzero sample
    # and the centred image centre is the point whose spectrum is flat with zero phase
    delta = torch.zeros(shape, dtype=torch.complex128)
    delta[h // 2, w // 2] = 1
    np.testing.assert_allclose(fft2(delta, "centered").numpy(), np.full(shape, 1 / dc),
                               atol=1e-12)


def test_fft_matches_fastmri_fft2c():
    import fastmri

    a = _rand((2, 1, 7, 10), seed=3)
    t = torch.from_numpy(a)
    ref = torch.view_as_complex(fastmri.fft2c(torch.view_as_real(t).contiguous()))
    np.testing.assert_allclose(fft2(t, "centered").numpy(), ref.numpy(), atol=1e-12)
    ref_i = torch.view_as_complex(fastmri.ifft2c(torch.view_as_real(t).contiguous()))
    np.testing.assert_allclose(ifft2(t, "centered").numpy(), ref_i.numpy(), atol=1e-12)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_parseval_and_real_promotion(layout):
    x = torch.randn(3, 5, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    k = fft2(x, layout)
    assert k.dtype == torch.complex128
    assert torch.linalg.vector_norm(k).item() == pytest.approx(
        torch.linalg.vector_norm(x).item(), rel=1e-13)
    assert fft2(x.float(), layout).dtype == torch.complex64


def test_bad_layout_is_named():
    with pytest.raises(ValueError, match=r"layout must be one of \('centered', 'unshifted'\), "
                                         r"got 'shifted'"):
        fft2(torch.zeros(2, 2, dtype=torch.complex64), "shifted")
    with pytest.raises(ValueError, match="layout must be one of"):
        ifft2(torch.zeros(2, 2, dtype=torch.complex64), "fastmri")
