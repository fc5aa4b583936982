"""SingleCoilFourier.normal as one circulant filter (no shifts; real FFTs for real images)
equals the composition of the parts, F^H B F, for every layout, size parity and mask form."""
from __future__ import annotations

import pytest
import torch

from mri_unfold.fft import fft2, ifft2
from mri_unfold.operators import SingleCoilFourier
from mri_unfold.operators.circulant import normal_filter


def _g(seed):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("layout", ["centered", "unshifted"])
@pytest.mark.parametrize("shape", [(8, 6), (7, 9), (6, 5)])
@pytest.mark.parametrize("per_sample", [False, True])
@pytest.mark.parametrize("real_input", [False, True])
def test_normal_equals_the_composed_parts(layout, shape, per_sample, real_input):
    mshape = (3, *shape) if per_sample else shape
    mask = torch.rand(*mshape, generator=_g(1)) < 0.4
    op = SingleCoilFourier(mask, layout=layout, real_input=real_input).double()
    if real_input:
        x = torch.randn(3, 1, *shape, dtype=torch.float64, generator=_g(2))
    else:
        x = torch.randn(3, 1, *shape, dtype=torch.complex128, generator=_g(2))
    m = op.mask
    want = ifft2(torch.where(m, fft2(x, layout), torch.zeros((), dtype=torch.complex128)),
                 layout)
    want = want.real if real_input else want
    got = op.normal(x)
    assert got.dtype == x.dtype and got.shape == x.shape
    assert (got - want).abs().max() <= 1e-12
    assert (got - op.adjoint(op(x))).abs().max() <= 1e-12


def test_real_filter_is_the_symmetrised_mask_half_spectrum():
    mask = torch.zeros(4, 4, dtype=torch.bool)
    mask[0, 1] = True                       # unshifted: k = (0, 1); its mirror is (0, 3)
    f = normal_filter(mask, "unshifted", True, torch.float32)
    assert f.shape == (4, 3)
    assert f[0, 1] == 0.5 and f.sum() == 0.5    # (0, 3) lies in the dropped half
    full = normal_filter(mask, "unshifted", False, torch.float32)
    assert torch.equal(full, mask.float())


def test_float32_and_gradients_match_the_parts():
    mask = torch.rand(16, 16, generator=_g(3)) < 0.3
    op = SingleCoilFourier(mask, real_input=True)
    x = torch.randn(2, 1, 16, 16, generator=_g(4), requires_grad=True)
    ref = ifft2(torch.where(mask, fft2(x), torch.zeros((), dtype=torch.complex64))).real
    got = op.normal(x)
    assert got.dtype == torch.float32 and (got - ref).abs().max() <= 1e-6
    w = torch.randn(2, 1, 16, 16, generator=_g(5))
    g1, = torch.autograd.grad((got * w).sum(), x)
    g2, = torch.autograd.grad((ref * w).sum(), x)
    assert (g1 - g2).abs().max() <= 1e-5


def test_cached_filter_follows_an_in_place_mask_change():
    mask = torch.zeros(8, 8, dtype=torch.bool)
    mask[3:5] = True
    op = SingleCoilFourier(mask, real_input=True)
    x = torch.randn(1, 1, 8, 8, generator=_g(6))
    before = op.normal(x)
    assert torch.equal(op.normal(x), before)            # served from the cache
    op.mask[:, :2] = True                               # in-place write: version counter
    ref = ifft2(torch.where(op.mask, fft2(x), torch.zeros((), dtype=torch.complex64))).real
    assert (op.normal(x) - ref).abs().max() <= 1e-6
    assert (op.normal(x) - before).abs().max() > 1e-3
