"""The orthonormal periodised DWT (equal to PyWavelets), FISTA for L1-wavelet and the batched
``l1-wavelet-fista`` baseline (same objective and λ convention as the SigPy one)."""
from __future__ import annotations

import numpy as np
import pytest
import pywt
import sigpy
import torch

from mri_unfold.baselines import l1_wavelet, l1_wavelet_fista, run_baseline, zero_filled
from mri_unfold.errors import InvalidValue
from mri_unfold.masks import make_mask
from mri_unfold.operators import MultiCoilFourier, SingleCoilFourier
from mri_unfold.solvers import fista_l1, max_eigenvalue
from mri_unfold.wavelets import Wavelet2D, soft_threshold


@pytest.mark.parametrize("wavelet, levels", [("db4", 2), ("haar", 5), ("sym8", 1)])
def test_wavelet_is_pywavelets_periodization_and_orthonormal(wavelet, levels):
    x = torch.randn(2, 1, 64, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    w = Wavelet2D((64, 32), wavelet)
    assert w.levels == levels                  # as many levels as pywt allows for the filter
    c = w.forward(x)
    ref = pywt.coeffs_to_array(pywt.wavedec2(x[1, 0].numpy(), wavelet, mode="periodization",
                                             level=levels))[0]
    assert c.shape == x.shape and c.dtype == torch.float64
    np.testing.assert_array_equal(c[1, 0].numpy(), ref)
    assert abs(float(c.norm() - x.norm())) < 1e-10             # Ψ is orthonormal
    assert float((w.inverse(c) - x).abs().max()) < 1e-10       # Ψ^T Ψ = I
    z = torch.complex(x, 2 * x)
    assert torch.allclose(w.forward(z), torch.complex(c, 2 * c))


def test_wavelet_errors_name_the_problem():
    with pytest.raises(InvalidValue, match="wavelet 'bior2.2' is not orthogonal"):
        Wavelet2D((32, 32), "bior2.2")
    with pytest.raises(InvalidValue, match=r"db4 DWT of 48x40 images: levels must be in 1..3"):
        Wavelet2D((48, 40), levels=4)
    with pytest.raises(InvalidValue, match=r"expects \(N, C, 32, 32\), got \(1, 1, 16, 16\)"):
        Wavelet2D((32, 32)).forward(torch.zeros(1, 1, 16, 16))


def test_soft_threshold_real_and_complex():
    z = torch.tensor([3.0, -0.5, -2.0])
    assert torch.allclose(soft_threshold(z, 1.0), torch.tensor([2.0, 0.0, -1.0]), atol=1e-6)
    assert soft_threshold(z, 1.0)[1] == 0
    c = torch.tensor([3 + 4j])                                 # |c| = 5
    assert torch.allclose(soft_threshold(c, 1.0), c * 0.8)


def test_fista_with_identity_data_term_is_the_exact_wavelet_shrinkage():
    """Φ = F with every sample kept: Φ^H Φ = I, so the minimiser of ½‖Φx − y‖² + λ‖Ψx‖₁ is
    Ψ^T soft(Ψ x0, λ) and FISTA (step 1) reaches it at the first iteration."""
    g = torch.Generator().manual_seed(1)
    x0 = torch.rand(3, 1, 32, 32, generator=g, dtype=torch.float64)
    op = SingleCoilFourier(np.ones((32, 32)), real_input=True)
    w = Wavelet2D((32, 32))
    assert torch.allclose(max_eigenvalue(op.normal, x0), torch.ones(3, 1, 1, 1,
                                                                    dtype=torch.float64))
    got = fista_l1(op(x0), op, w, 0.05, max_iter=5, lipschitz=1.0)
    assert torch.allclose(got, w.inverse(soft_threshold(w.forward(x0), 0.05)), atol=1e-12)


def _objective(x, y, op, lamda, w):
    return float(0.5 * (op(x) - y).abs().square().sum() + lamda * w.forward(x).abs().sum())


def test_fista_baseline_minimises_the_objective_better_than_sigpy_at_equal_lambda():
    img = torch.from_numpy(np.abs(sigpy.shepp_logan((64, 64))).astype(np.float32))[None, None]
    mask = make_mask("poisson", (64, 64), acceleration=3, seed=0).mask
    op = SingleCoilFourier(mask, real_input=True)
    y = op(img)
    lam = 3e-3
    ours, theirs = l1_wavelet_fista(y, op, lamda=lam, max_iter=200), l1_wavelet(y, op, lamda=lam)
    assert ours.shape == (1, 64, 64) and ours.dtype == torch.float32
    peak = float(zero_filled(y, op).max())          # both solve on k-space / zero-filled peak
    w = Wavelet2D((64, 64))
    f_ours = _objective(ours[:, None].double() / peak, y.to(torch.complex128) / peak,
                        op.to(torch.float64), lam, w)
    f_theirs = _objective(theirs[:, None].double() / peak, y.to(torch.complex128) / peak,
                          op.to(torch.float64), lam, w)
    assert f_ours < f_theirs
    err = lambda r: float(((r - img[:, 0]) ** 2).mean())    # noqa: E731
    assert err(ours) < err(zero_filled(y, op))
    assert torch.equal(run_baseline("l1-wavelet-fista", y, op, lamda=lam, max_iter=200), ours)


def test_fista_baseline_takes_per_sample_lambdas_and_multicoil_operators():
    g = torch.Generator().manual_seed(2)
    x = torch.rand(2, 1, 32, 32, generator=g).to(torch.complex64)
    maps = torch.from_numpy(sigpy.mri.birdcage_maps((3, 32, 32)).astype(np.complex64))
    op = MultiCoilFourier(make_mask("gaussian2d", (32, 32), acceleration=2, seed=1).mask, maps)
    y = op(x)
    both = l1_wavelet_fista(y, op, lamda=[1e-3, 1e-1], max_iter=30)
    one = l1_wavelet_fista(y[1:], op, lamda=1e-1, max_iter=30)
    assert both.shape == (2, 32, 32)
    assert torch.allclose(both[1], one[0], atol=1e-5)
