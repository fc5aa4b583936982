"""NonCartesianFourier: exact against direct sums and the Cartesian operators, Toeplitz normal,
autograd, per-sample batches, state round trip, the CUDA backend's code path (torchkbnufft on
CPU) and every bad input with its message.  (The adjoint/linearity/normal contract itself is
checked on the registered examples by tests/test_operator_contract.py.)"""
from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import pytest
import torch

from mri_unfold.data import KSpaceSample, SampleMetadata
from mri_unfold.operators import (MultiCoilFourier, NonCartesianFourier, ShapeError,
                                  SingleCoilFourier, check_operator)
from mri_unfold.trajectories import make_trajectory, radial_trajectory


def _g(seed):
    return torch.Generator().manual_seed(seed)


def _cartesian_grid(h, w):
    a = 2 * math.pi * (torch.arange(h, dtype=torch.float64) - h // 2) / h
    b = 2 * math.pi * (torch.arange(w, dtype=torch.float64) - w // 2) / w
    return torch.stack(torch.meshgrid(a, b, indexing="ij"), -1).reshape(-1, 2)


def _direct(x, traj):
    """Σ_pq x[p, q] exp(-i (ω0 (p - H//2) + ω1 (q - W//2))) / sqrt(HW), ``x`` (H, W)."""
    h, w = x.shape
    p = torch.arange(h, dtype=torch.float64) - h // 2
    q = torch.arange(w, dtype=torch.float64) - w // 2
    ph = traj[:, 0, None, None] * p[None, :, None] + traj[:, 1, None, None] * q[None, None]
    return (x[None] * torch.exp(-1j * ph)).sum((-2, -1)) / math.sqrt(h * w)


def test_cartesian_grid_equals_the_cartesian_operators():
    h, w = 8, 7
    x = torch.randn(2, 1, h, w, dtype=torch.complex128, generator=_g(0))
    maps = torch.randn(3, h, w, dtype=torch.complex128, generator=_g(1))
    grid = _cartesian_grid(h, w)
    nc = NonCartesianFourier(grid, (h, w))
    ref = SingleCoilFourier(torch.ones(h, w, dtype=torch.bool))
    assert torch.allclose(nc(x).reshape(2, 1, h, w), ref(x), atol=1e-12)
    nc3 = NonCartesianFourier(grid, (h, w), coil_maps=maps)
    ref3 = MultiCoilFourier(torch.ones(h, w, dtype=torch.bool), maps)
    assert torch.allclose(nc3(x).reshape(2, 3, h, w), ref3(x), atol=1e-12)
    # fully sampled, orthonormal: the normal is the identity times sum |S|^2
    assert torch.allclose(nc.normal(x), x, atol=1e-11)


def test_forward_matches_the_direct_sum_in_both_precisions():
    traj = (torch.rand(23, 2, generator=_g(2), dtype=torch.float64) * 2 - 1) * math.pi
    x = torch.randn(1, 1, 6, 5, dtype=torch.complex128, generator=_g(3))
    ref = _direct(x[0, 0], traj)
    op = NonCartesianFourier(traj, (6, 5))
    assert (op(x)[0, 0] - ref).abs().max() < 1e-11
    y32 = op(x.to(torch.complex64))
    assert y32.dtype == torch.complex64
    assert float((y32[0, 0] - ref).abs().max() / ref.abs().max()) < 1e-5


def test_units_cycles_and_radians_agree():
    kappa = (torch.rand(30, 2, generator=_g(4), dtype=torch.float64) - 0.5) * torch.tensor([8., 6.])
    x = torch.randn(1, 1, 8, 6, dtype=torch.complex128, generator=_g(5))
    a = NonCartesianFourier(kappa, (8, 6), units="cycles")
    b = NonCartesianFourier(kappa * 2 * math.pi / torch.tensor([8., 6.], dtype=torch.float64),
                            (8, 6))
    assert torch.allclose(a.traj, b.traj, atol=1e-15)
    assert torch.allclose(a(x), b(x), atol=1e-13)


@pytest.mark.parametrize("dtype,tol", [(torch.complex64, 2e-5), (torch.complex128, 1e-10)])
def test_toeplitz_normal_equals_adjoint_of_forward_on_radial(dtype, tol):
    t = make_trajectory("golden-radial", 48, acceleration=2)
    maps = torch.randn(3, 48, 48, dtype=torch.complex128, generator=_g(6))
    op = NonCartesianFourier(t.traj, (48, 48), coil_maps=maps, dcf=t.dcf)
    x = torch.randn(2, 1, 48, 48, dtype=dtype, generator=_g(7))
    ref = op.adjoint(op(x))
    n = op.normal(x)
    assert n.dtype == dtype and n.shape == x.shape
    assert float((n - ref).norm() / ref.norm()) < tol


def test_kernel_is_cached_and_refreshed_when_the_trajectory_changes():
    t = radial_trajectory(16, num_spokes=9)
    op = NonCartesianFourier(t, (16, 16))
    x = torch.randn(1, 1, 16, 16, dtype=torch.complex64, generator=_g(8))
    k1 = op.kernel(x)
    assert op.kernel(x) is k1
    with torch.no_grad():
        op.traj.mul_(0.5)
    k2 = op.kernel(x)
    assert k2 is not k1 and not torch.allclose(k1, k2)
    assert torch.allclose(op.normal(x), op.adjoint(op(x)), atol=1e-4)


def test_gradients_flow_to_the_image():
    traj = (torch.rand(15, 2, generator=_g(9), dtype=torch.float64) * 2 - 1) * math.pi
    maps = torch.randn(2, 4, 3, dtype=torch.complex128, generator=_g(10))
    op = NonCartesianFourier(traj, (4, 3), coil_maps=maps,
                             dcf=torch.rand(15, generator=_g(11), dtype=torch.float64))
    x = torch.randn(1, 1, 4, 3, dtype=torch.complex128, generator=_g(12), requires_grad=True)
    y = torch.randn(1, 2, 15, dtype=torch.complex128, generator=_g(13), requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: op(v), (x,))
    assert torch.autograd.gradcheck(lambda v: op.adjoint(v), (y,))
    assert torch.autograd.gradcheck(lambda v: op.normal(v), (x,))
    real = NonCartesianFourier(traj, (4, 3), real_input=True)
    xr = torch.randn(2, 1, 4, 3, dtype=torch.float64, generator=_g(14), requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: real.normal(v), (xr,))


def test_per_sample_parameters_equal_one_operator_per_sample():
    traj = (torch.rand(3, 20, 2, generator=_g(15), dtype=torch.float64) * 2 - 1) * math.pi
    maps = torch.randn(3, 2, 6, 5, dtype=torch.complex128, generator=_g(16))
    dcf = torch.rand(3, 20, generator=_g(17), dtype=torch.float64)
    op = NonCartesianFourier(traj, (6, 5), coil_maps=maps, dcf=dcf)
    assert op.batch_size == 3 and op.domain_shape == (1, 6, 5) and op.range_shape == (2, 20)
    x = torch.randn(3, 1, 6, 5, dtype=torch.complex128, generator=_g(18))
    y, n = op(x), op.normal(x)
    for i in range(3):
        one = NonCartesianFourier(traj[i], (6, 5), coil_maps=maps[i], dcf=dcf[i])
        assert torch.allclose(y[i:i + 1], one(x[i:i + 1]), atol=1e-12)
        assert torch.allclose(n[i:i + 1], one.normal(x[i:i + 1]), atol=1e-11)


def test_mask_zeroes_samples_and_weight_maps_raw_kspace_into_the_range():
    traj = (torch.rand(12, 2, generator=_g(19), dtype=torch.float64) * 2 - 1) * math.pi
    mask = torch.tensor([1, 0] * 6, dtype=torch.bool)
    dcf = torch.linspace(0.5, 2.0, 12, dtype=torch.float64)
    op = NonCartesianFourier(traj, (4, 4), dcf=dcf, mask=mask)
    x = torch.randn(1, 1, 4, 4, dtype=torch.complex128, generator=_g(20))
    y = op(x)
    assert torch.equal(y[0, 0, 1::2], torch.zeros(6, dtype=y.dtype))
    raw = NonCartesianFourier(traj, (4, 4))(x)
    assert torch.allclose(op.weight(raw), y, atol=1e-13)
    gridding = NonCartesianFourier(traj, (4, 4)).adjoint(raw * (dcf * mask))
    assert torch.allclose(op.adjoint(op.weight(raw)), gridding, atol=1e-12)


def test_state_dict_rebuilds_the_operator_and_copies_work():
    t = make_trajectory("spiral", 16, acceleration=2, interleaves=4)
    maps = torch.randn(2, 16, 16, dtype=torch.complex64, generator=_g(21))
    op = NonCartesianFourier(t.traj, (16, 16), coil_maps=maps, dcf=t.dcf, real_input=True)
    x = torch.rand(1, 1, 16, 16, generator=_g(22))
    y = op(x)
    again = NonCartesianFourier.from_state(op.state_dict(), real_input=True)
    assert torch.equal(again(x), y)
    assert sorted(op.state_dict()) == ["coils.maps_ri", "dcf", "grid", "traj"]
    assert torch.equal(copy.deepcopy(op)(x), y)
    assert torch.equal(pickle.loads(pickle.dumps(op))(x), y)


def test_torchkbnufft_backend_is_adjoint_and_close_to_finufft():
    pytest.importorskip("torchkbnufft")
    t = make_trajectory("golden-radial", 24, acceleration=2)
    kb = NonCartesianFourier(t.traj, (24, 24), dcf=t.dcf, backend="torchkbnufft")
    fi = NonCartesianFourier(t.traj, (24, 24), dcf=t.dcf, backend="finufft")
    rep = check_operator(kb, rtol=1e-2)
    assert rep.errors["adjoint"] < 1e-12 and rep.errors["normal"] < 1e-2
    x = torch.randn(1, 1, 24, 24, dtype=torch.complex64, generator=_g(23))
    assert float((kb(x) - fi(x)).norm() / fi(x).norm()) < 1e-2


# ------------------------------------------------------------------------- bad input
def _op(**kw):
    traj = (torch.rand(20, 2, generator=_g(24), dtype=torch.float64) * 2 - 1) * math.pi
    return NonCartesianFourier(kw.pop("traj", traj), (6, 6), **kw)


def test_kspace_length_differs_from_the_trajectory():
    op = _op()
    with pytest.raises(ShapeError, match=r"the k-space has 19 samples per coil but the "
                                         r"trajectory has K = 20"):
        op.adjoint(torch.zeros(1, 1, 19, dtype=torch.complex64))
    with pytest.raises(ValueError, match=r"trajectory must be a \(19, 2\) tensor"):
        KSpaceSample(kspace=torch.zeros(1, 19, dtype=torch.complex64), mask=torch.ones(19),
                     target=None, coil_maps=None, metadata=SampleMetadata("f", 0),
                     trajectory=torch.zeros(20, 2), image_shape=(6, 6))


def test_nan_in_the_trajectory():
    traj = torch.zeros(20, 2)
    traj[3, 1] = float("nan")
    with pytest.raises(ValueError, match=r"traj contains 1 NaN/Inf coordinates"):
        _op(traj=traj)


def test_coordinates_outside_the_documented_range():
    with pytest.raises(ValueError, match=r"traj has 1 coordinates outside \[-pi, pi\] radians "
                                         r"\(units='radians'; largest \|coordinate\| 4"):
        _op(traj=torch.tensor([[0.0, 0.0], [4.0, 0.0]]))
    with pytest.raises(ValueError, match=r"outside \[-3, 3\] x \[-3, 3\] cycles per FOV"):
        _op(traj=torch.tensor([[3.5, 0.0]]), units="cycles")
    with pytest.raises(ValueError, match=r"units must be one of radians, cycles, got 'm'"):
        _op(units="m")


def test_dcf_of_the_wrong_length_or_sign():
    with pytest.raises(ValueError, match=r"dcf must have shape \(20,\) or \(N, 20\) — one value "
                                         r"per trajectory sample \(K = 20\) — got \(19,\)"):
        _op(dcf=torch.ones(19))
    with pytest.raises(ValueError, match=r"dcf must be finite and >= 0"):
        _op(dcf=-torch.ones(20))
    with pytest.raises(ValueError, match=r"dcf must have shape \(19,\)"):
        KSpaceSample(kspace=torch.zeros(1, 19, dtype=torch.complex64), mask=torch.ones(19),
                     target=None, coil_maps=None, metadata=SampleMetadata("f", 0),
                     trajectory=torch.zeros(19, 2), dcf=torch.ones(18), image_shape=(6, 6))


def test_coil_maps_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"coil_maps must have shape \(C, 6, 6\) or "
                                         r"\(N, C, 6, 6\) for image_shape \(6, 6\), got \(2, 6, 5\)"):
        _op(coil_maps=torch.ones(2, 6, 5, dtype=torch.complex64))
    with pytest.raises(ValueError, match=r"per-sample parameters disagree on the batch size: "
                                         r"traj has 2, coil_maps has 3"):
        _op(traj=torch.full((2, 20, 2), 0.1), coil_maps=torch.ones(3, 2, 6, 6, dtype=torch.complex64))
    op = _op(coil_maps=torch.ones(2, 6, 6, dtype=torch.complex64))
    with pytest.raises(ShapeError, match=r"expected \(N, 2, 20\) k-space"):
        op.adjoint(torch.zeros(1, 3, 20, dtype=torch.complex64))


def test_image_and_other_arguments():
    with pytest.raises(ShapeError, match=r"x must be \(N, 1, 6, 6\) images"):
        _op()(torch.zeros(1, 1, 6, 5, dtype=torch.complex64))
    with pytest.raises(TypeError, match=r"real_input=True\) expects real images"):
        _op(real_input=True)(torch.zeros(1, 1, 6, 6, dtype=torch.complex64))
    with pytest.raises(ValueError, match=r"image_shape must be two \(H, W\) or three \(X, Y, Z\) "
                                         r"positive ints, got \(6,\)"):
        NonCartesianFourier(torch.zeros(3, 2), (6,))
    with pytest.raises(ValueError, match=r"traj must be a real \(K, 2\) or \(N, K, 2\) array"):
        NonCartesianFourier(torch.zeros(3, 3), (6, 6))
    with pytest.raises(ValueError, match=r"backend must be one of auto, finufft, torchkbnufft"):
        _op(backend="cuda")
    with pytest.raises(ValueError, match=r"mask must"):
        _op(mask=np.full(20, 0.5))
