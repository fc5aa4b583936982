"""3-D operators: the Cartesian 3-D operator and readout decoupling, 3-D NUFFT and Toeplitz,
stack-of-stars and its kz decoupling, 3-D trajectories and DCF, the learned k-space mask."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mri_unfold.fft import fftn, ifftn
from mri_unfold.operators import (CartesianFourier3D, CoilExpansion, LearnedKSpaceMask,
                                  NonCartesianFourier, StackOfStarsFourier, check_operator)
from mri_unfold.operators.nufft import nufft1, nufft2
from mri_unfold.operators.toeplitz import apply_toeplitz, toeplitz_kernel
from mri_unfold.trajectories import (kooshball_dcf, kooshball_spokes, kooshball_trajectory,
                                     stack_of_stars_trajectory)


def _g(seed):
    return torch.Generator().manual_seed(seed)


def test_fftn_is_fft2_on_the_last_two_dims_and_separable():
    x = torch.randn(2, 3, 5, 6, 7, dtype=torch.complex128, generator=_g(0))
    from mri_unfold.fft import fft2
    assert torch.allclose(fftn(x, dims=(-2, -1)), fft2(x), atol=1e-12)
    three = fftn(x)
    assert torch.allclose(three, fftn(fft2(x), dims=(-3,)), atol=1e-12)
    assert torch.allclose(ifftn(three), x, atol=1e-12)
    # DC of the centred 3-D layout sits at (X//2, Y//2, Z//2): a constant volume
    k = fftn(torch.ones(5, 6, 7, dtype=torch.complex128))
    assert abs(k[2, 3, 3] - math.sqrt(5 * 6 * 7)) < 1e-9 and float(k.abs().sum()) == \
        pytest.approx(math.sqrt(210), rel=1e-9)


def test_readout_decoupling_is_exact():
    """IFFT along kx of the 3-D operator's k-space == the 2-D operator of each position."""
    g = _g(1)
    mask = torch.rand(7, 6, generator=g) < 0.4
    maps = torch.randn(3, 5, 7, 6, dtype=torch.complex128, generator=g)
    op = CartesianFourier3D(mask, maps)
    x = torch.randn(1, 1, 5, 7, 6, dtype=torch.complex128, generator=g)
    hybrid = ifftn(op(x), dims=(-3,))[0]                      # (C, X, Y, Z)
    per_position = op.position_operator(range(5))(x[0].transpose(0, 1))   # (X, C, Y, Z)
    assert torch.allclose(hybrid.transpose(0, 1), per_position, atol=1e-12)
    assert op.readout_fully_sampled and tuple(op.mask.shape) == (1, 7, 6)
    assert op.domain_shape == (1, 5, 7, 6) and op.range_shape == (3, 5, 7, 6)
    full = CartesianFourier3D(torch.rand(5, 7, 6, generator=g) < 0.5, maps)
    assert not full.readout_fully_sampled
    with pytest.raises(ValueError, match="changes along the readout"):
        full.position_operator([0])
    with pytest.raises(ValueError, match=r"does not fit the coil maps' volume \(5, 7, 6\)"):
        CartesianFourier3D(torch.ones(6, 6), maps)


def test_coil_expansion_in_3d():
    s = torch.randn(2, 4, 3, 5, 2, dtype=torch.complex128, generator=_g(2))
    op = CoilExpansion(s, spatial_dims=3)
    assert op.batch_size == 2 and op.num_coils == 4 and op.domain_shape == (1, 3, 5, 2)
    check_operator(op)
    with pytest.raises(ValueError, match=r"\(C, X, Y, Z\) or \(N, C, X, Y, Z\)"):
        CoilExpansion(torch.ones(3, 4), spatial_dims=3)


def test_nufft_3d_matches_the_direct_dft_and_torchkbnufft():
    g = _g(3)
    shape = (5, 6, 4)
    x = torch.randn(2, 2, *shape, dtype=torch.complex128, generator=g)
    om = (torch.rand(1, 30, 3, generator=g, dtype=torch.float64) * 2 - 1) * math.pi
    grid = torch.stack(torch.meshgrid(*[torch.arange(n) - n // 2 for n in shape],
                                      indexing="ij"), -1).reshape(-1, 3).double()
    ref = x.reshape(2, 2, -1) @ torch.exp(-1j * (grid @ om[0].T)) / math.sqrt(120)
    assert float((nufft2(x, om) - ref).abs().max()) < 1e-10
    kb = nufft2(x.to(torch.complex64), om.float(), backend="torchkbnufft").to(torch.complex128)
    assert float((kb - ref).abs().max() / ref.abs().max()) < 3e-3
    y = torch.randn(2, 2, 30, dtype=torch.complex128, generator=g)
    lhs = torch.vdot(nufft2(x, om).flatten(), y.flatten())
    rhs = torch.vdot(x.flatten(), nufft1(y, om, shape).flatten())
    assert abs(lhs - rhs) < 1e-10 * abs(lhs)


def test_toeplitz_3d_equals_adjoint_of_forward():
    g = _g(4)
    shape = (6, 5, 4)
    om = (torch.rand(1, 80, 3, generator=g, dtype=torch.float64) * 2 - 1) * math.pi
    w = torch.rand(1, 80, generator=g, dtype=torch.float64)
    x = torch.randn(1, 2, *shape, dtype=torch.complex128, generator=g)
    direct = nufft1(nufft2(x, om) * w, om, shape)
    kern = toeplitz_kernel(om, w, shape)
    assert tuple(kern.shape) == (1, 1, 12, 10, 8) and not kern.is_complex()
    assert float((apply_toeplitz(x, kern) - direct).abs().max()) < 1e-9 * float(direct.abs().max())


def test_stack_of_stars_decouples_along_kz_and_its_normals():
    g = _g(5)
    traj = stack_of_stars_trajectory(8, 4, num_spokes=6)
    maps = torch.randn(2, 8, 8, 4, dtype=torch.complex128, generator=g)
    op = StackOfStarsFourier(traj, (8, 8, 4), maps, dcf=np.abs(np.linalg.norm(traj, axis=1)))
    x = torch.randn(1, 1, 8, 8, 4, dtype=torch.complex128, generator=g)
    y = op(x)                                                     # (1, C, Z, K)
    slices = op.slice_operator(range(4))(x[0].permute(3, 0, 1, 2))   # (Z, C, K)
    assert torch.allclose(ifftn(y, dims=(-2,))[0].transpose(0, 1), slices, atol=1e-12)
    rotated = stack_of_stars_trajectory(8, 4, num_spokes=6, rotate=True)
    assert rotated.shape == (4, 96, 2) and np.allclose(rotated[0], traj)
    kz = StackOfStarsFourier(rotated, (8, 8, 4), maps, partitions=[1, 1, 0, 1])
    with pytest.raises(ValueError, match="decouple only"):
        kz.slice_operator([0])
    for o in (op, kz):
        assert float((o.normal(x) - o.adjoint(o(x))).abs().max()) < 1e-9 * float(x.abs().max())
    with pytest.raises(ValueError, match=r"outside \[-pi, pi\] radians"):
        StackOfStarsFourier(traj * 1.5, (8, 8, 4))


def test_kooshball_trajectory_dcf_and_operator():
    assert kooshball_spokes(32, 1) == math.ceil(math.pi / 2 * 32 * 32)
    assert kooshball_spokes(32, 8) == math.ceil(math.pi / 2 * 32 * 32 / 8)
    t = kooshball_trajectory(12, acceleration=1)
    assert t.shape == (kooshball_spokes(12, 1) * 24, 3) and np.abs(t).max() <= math.pi
    dirs = t.reshape(-1, 24, 3)[:, 0] / -math.pi                    # spoke directions
    assert np.allclose(np.linalg.norm(dirs, axis=1), 1) and (dirs[:, 2] >= 0).all()
    # golden means spread the directions: every octant of the half-sphere gets spokes
    octants = {(a > 0, b > 0) for a, b in dirs[:40, :2]}
    assert len(octants) == 4
    n = 12
    w = kooshball_dcf(t, (n, n, n))
    op = NonCartesianFourier(t, (n, n, n), dcf=w)
    v = torch.zeros(1, 1, n, n, n, dtype=torch.complex128)
    gz = np.mgrid[:n, :n, :n] - n // 2
    v[0, 0][torch.from_numpy((gz ** 2).sum(0) < 16)] = 1
    rec = op.adjoint(op(v)).real
    scale = float((rec * v.real).sum() / (rec * rec).sum())
    err = float(torch.linalg.norm(scale * rec - v.real) / torch.linalg.norm(v.real))
    assert err < 0.25, err                              # gridding with the 3-D ramp (0.208)
    flat = NonCartesianFourier(t, (n, n, n))
    rec_flat = flat.adjoint(flat(v)).real
    scale = float((rec_flat * v.real).sum() / (rec_flat * rec_flat).sum())
    assert float(torch.linalg.norm(scale * rec_flat - v.real) / torch.linalg.norm(v.real)) > \
        2 * err                                         # without a DCF: blurred
    with pytest.raises(ValueError, match=r"traj must be a real \(K, 3\)"):
        NonCartesianFourier(t[:, :2], (n, n, n))


def test_learned_kspace_mask_factory():
    op = LearnedKSpaceMask((20, 16), 0.25, acs=(6, 4), seed=0)
    m = op.mask
    assert tuple(m.shape) == (20, 16) and int(m.sum()) == round(0.25 * 320)
    assert bool(m[7:13, 6:10].all())                    # the 6 x 4 ACS box
    with op.training_step(3):
        sample = op.learned.current_mask(torch.zeros(1, dtype=torch.complex64))
        assert sample.dtype == torch.float32 and set(sample.unique().tolist()) <= {0.0, 1.0}


def test_networks_run_on_3d_non_cartesian_scans():
    """Stack of stars: decoupled along kz, the 2-D network per slice; kooshball: the 2-D
    network on SliceStack (3-D data consistency, slice-wise CNN)."""
    from mri_unfold.models import build
    from mri_unfold.operators import SliceStack

    g = _g(8)
    n = 12
    vol = torch.zeros(1, 1, n, n, 6, dtype=torch.complex64)
    vol[..., 3:9, 3:9, 1:5] = 1
    model = build("ista_net_plus", num_phases=2, channels=4, image_channels=2, seed=0).eval()
    traj = stack_of_stars_trajectory(n, 6, num_spokes=10)
    sos = StackOfStarsFourier(traj, (n, n, 6), dcf=np.linalg.norm(traj, axis=1) + 0.1)
    y = ifftn(sos(vol), dims=(-2,))[0].transpose(0, 1)            # (Z, 1, K) per slice
    with torch.inference_mode():
        out = model(y, sos.slice_operator(range(6)))
    assert tuple(out.shape) == (6, 1, n, n) and bool(torch.isfinite(out.abs()).all())
    t = kooshball_trajectory(n, num_spokes=60)
    koosh = NonCartesianFourier(t, (n, n, 6 * 2), dcf=kooshball_dcf(t, (n, n, 12)))
    wrap = SliceStack(koosh)
    v = torch.randn(1, 1, n, n, 12, dtype=torch.complex64, generator=g)
    assert torch.allclose(wrap.volumes(wrap.slices(v)), v)
    k = koosh(v)
    assert torch.equal(wrap.unpack(wrap.pack(k)), k)
    assert torch.allclose(wrap.adjoint(wrap.pack(k)), wrap.slices(koosh.adjoint(k)))
    with torch.inference_mode():
        out = model(wrap.pack(k), wrap)
    assert tuple(out.shape) == (12, 1, n, n) and bool(torch.isfinite(out.abs()).all())
    with pytest.raises(ValueError, match="SliceStack needs a 3-D operator"):
        SliceStack(NonCartesianFourier(t[:, :2] / 2, (n, n)))
