"""Trajectories (radial, golden-angle, spiral, files) and density compensation (ramp,
Pipe–Menon, unit-norm scaling): numbers against their definitions, seeding without the
global RNGs, and the errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mri_unfold.baselines import zero_filled
from mri_unfold.data import DataFileError
from mri_unfold.metrics import psnr
from mri_unfold.operators import NonCartesianFourier
from mri_unfold.trajectories import (GOLDEN_ANGLE, load_trajectory, make_trajectory,
                                     nyquist_spokes, pipe_menon_dcf, radial_ramp_dcf,
                                     radial_trajectory, spiral_trajectory,
                                     spokes_for_acceleration)
from mri_unfold.trajectories.density import operator_norm


def test_spokes_from_an_acceleration_relative_to_nyquist():
    assert nyquist_spokes(256) == pytest.approx(402.1238596594935)
    assert spokes_for_acceleration(256, 1) == 403
    assert spokes_for_acceleration(256, 8) == 51
    assert spokes_for_acceleration(256, 402.1238596594935) == 1
    with pytest.raises(ValueError, match=r"acceleration must be a finite number > 0, got 0"):
        spokes_for_acceleration(256, 0)


def test_radial_geometry_uniform_and_golden():
    t = radial_trajectory(32, num_spokes=5, ordering="uniform").reshape(5, 64, 2)
    assert t.shape == (5, 64, 2) and np.abs(t).max() <= math.pi
    r = np.linalg.norm(t, axis=-1)
    assert np.allclose(r[:, 32], 0) and np.allclose(r[0, 0], math.pi)
    assert np.allclose(np.diff(r[0, 32:]), 2 * math.pi / 64)
    angles = np.arctan2(t[:, -1, 1], t[:, -1, 0])
    assert np.allclose(np.mod(np.diff(angles), math.pi), math.pi / 5)
    g = radial_trajectory(32, num_spokes=4, readout=16, ordering="golden").reshape(4, 16, 2)
    ga = np.arctan2(g[:, -1, 1], g[:, -1, 0])
    assert np.allclose(np.mod(np.diff(ga), 2 * math.pi), GOLDEN_ANGLE)
    assert GOLDEN_ANGLE == pytest.approx(math.radians(111.24611797498107))
    with pytest.raises(ValueError, match=r"readout must be an even number >= 2"):
        radial_trajectory(32, num_spokes=4, readout=7)
    with pytest.raises(ValueError, match=r"exactly one of num_spokes or acceleration"):
        radial_trajectory(32)


def test_seeded_rotation_is_reproducible_and_leaves_the_global_rngs_alone():
    np_state, torch_state = np.random.get_state()[1].copy(), torch.random.get_rng_state()
    a = radial_trajectory(16, num_spokes=3, seed=5)
    b = radial_trajectory(16, num_spokes=3, seed=5)
    c = radial_trajectory(16, num_spokes=3, seed=6)
    s1, s2 = spiral_trajectory(16, seed=1), spiral_trajectory(16, seed=1)
    assert np.array_equal(a, b) and not np.allclose(a, c) and np.array_equal(s1, s2)
    assert np.array_equal(np.random.get_state()[1], np_state)
    assert torch.equal(torch.random.get_rng_state(), torch_state)


def test_variable_density_spiral():
    n = 64
    u = spiral_trajectory(n, interleaves=4, alpha=1.0)
    v = spiral_trajectory(n, interleaves=4, alpha=2.0)
    for t in (u, v):
        assert np.abs(t).max() <= math.pi
        kappa = np.linalg.norm(t.reshape(4, -1, 2), axis=-1) * n / (2 * math.pi)
        assert np.allclose(kappa[:, 0], 0) and np.allclose(kappa[:, -1], n / 2)
    inner = [np.mean(np.linalg.norm(t, axis=-1) < math.pi / 4) for t in (u, v)]
    # the fraction inside a quarter of k_max is t < 1/4 ** (1/alpha): 0.25 and 0.5
    assert inner[0] == pytest.approx(0.25, abs=0.01) and inner[1] == pytest.approx(0.5, abs=0.01)
    with pytest.raises(ValueError, match=r"alpha must be >= 1"):
        spiral_trajectory(n, alpha=0.5)


def test_ramp_and_pipe_menon_agree_on_uniform_radial_at_nyquist():
    n = 64
    p = spokes_for_acceleration(n, 1)
    t = radial_trajectory(n, num_spokes=p, ordering="uniform")
    ramp = radial_ramp_dcf(p, 2 * n, n)
    pm = pipe_menon_dcf(t, (n, n))
    kappa = np.linalg.norm(t, axis=-1) * n / (2 * math.pi)
    band = (kappa > 0.1 * n / 2) & (kappa < 0.9 * n / 2)
    rel = np.abs(pm[band] - ramp[band]) / ramp[band]
    assert np.median(rel) < 1e-3 and np.quantile(rel, 0.9) < 2e-2
    assert ramp.sum() == pytest.approx(math.pi * n * n / 4, rel=1e-3)   # the disc's area


def test_pipe_menon_is_uniform_on_a_cartesian_grid():
    n = 32
    a = 2 * math.pi * (np.arange(n) - n // 2) / n
    grid = np.stack(np.meshgrid(a, a, indexing="ij"), -1).reshape(-1, 2)
    w = pipe_menon_dcf(grid, (n, n), sigma=0.7).reshape(n, n)
    assert np.abs(w[8:24, 8:24] - 1).max() < 2e-3   # away from the grid's edges
    # the default narrow kernel: uniform, at ∫C / (the kernel's sum over the lattice)
    j = np.arange(-8, 9)
    lattice = np.exp(-j ** 2 / (2 * 0.4 ** 2)).sum() ** 2
    w = pipe_menon_dcf(grid, (n, n)).reshape(n, n)
    assert np.abs(w[8:24, 8:24] / (2 * math.pi * 0.4 ** 2 / lattice) - 1).max() < 2e-3
    with pytest.raises(ValueError, match=r"sigma must be >= 0.25 cycles"):
        pipe_menon_dcf(grid, (n, n), sigma=0.2)


def _smooth_phantom(n: int) -> np.ndarray:
    """A smooth disc-limited object in [0, 1], ``(n, n)`` float32."""
    yy, xx = np.mgrid[:n, :n] / n
    img = np.exp(-((yy - 0.5) ** 2 + (xx - 0.45) ** 2) / 0.06) * (1 + 0.3 * np.cos(6 * xx))
    return (img * (((yy - 0.5) ** 2 + (xx - 0.5) ** 2) < 0.16)).astype(np.float32)


@pytest.mark.parametrize("kind", ["radial", "golden-radial", "spiral"])
def test_fully_sampled_gridding_with_pipe_menon_reaches_35_db(kind):
    """Gridding ``|F^H W y|`` (scaled by its gain on a constant image, as the zero-filled
    baseline is) of fully sampled data is the image: >= 35 dB on a smooth phantom with the
    Pipe–Menon DCF of every trajectory kind (the σ = 1 cycle kernel gave 24 and 21 dB)."""
    n = 64
    img = _smooth_phantom(n)
    t = make_trajectory(kind, n, acceleration=1, dcf="pipe-menon")
    op = NonCartesianFourier(t.traj, (n, n), dcf=t.dcf)
    y = op(torch.from_numpy(img).to(torch.complex128)[None, None])
    rec = zero_filled(y, op)[0].numpy()
    assert psnr(img, rec, data_range=1.0) >= 35


def test_ramp_is_capped_below_nyquist_and_make_trajectory_normalises():
    w = radial_ramp_dcf(10, 64, 32)
    assert w.max() == pytest.approx(0.5)                 # Δκ = 32 / 64 cycles
    assert radial_ramp_dcf(10, 64, 32, nyquist_cap=False).max() == pytest.approx(
        16 * 0.5 * math.pi / 10)
    t = make_trajectory("golden-radial", 32, acceleration=4)
    assert t.info["spokes"] == 13 and t.info["readout"] == 64 and t.info["dcf"] == "ramp"
    assert operator_norm(t.traj, t.dcf, (32, 32)) == pytest.approx(1.0, abs=1e-3)
    raw = make_trajectory("golden-radial", 32, acceleration=4, normalize=False)
    assert np.allclose(raw.dcf * t.info["dcf_scale"], t.dcf)
    with pytest.raises(ValueError, match=r"dcf='ramp' is the radial ramp; trajectory 'spiral'"):
        make_trajectory("spiral", 32, dcf="ramp")


def test_trajectories_from_npy_files(tmp_path):
    t = radial_trajectory(8, num_spokes=2).reshape(2, 16, 2)
    np.save(tmp_path / "t.npy", t)
    loaded = load_trajectory(tmp_path / "t.npy")
    assert loaded.units == "radians" and np.array_equal(loaded.traj, t.reshape(-1, 2))
    made = make_trajectory(str(tmp_path / "t.npy"), 8, dcf="none")
    assert np.array_equal(made.traj, t.reshape(-1, 2)) and made.dcf is None
    np.save(tmp_path / "bad.npy", np.zeros((4, 3)))
    with pytest.raises(DataFileError, match=r"expected a real \(\.\.\., 2\) trajectory array"):
        load_trajectory(tmp_path / "bad.npy")
    with pytest.raises(FileNotFoundError, match=r"trajectory file not found"):
        load_trajectory(tmp_path / "missing.npy")


def test_trajectories_from_ismrmrd_files(tmp_path):
    ismrmrd = pytest.importorskip("ismrmrd")
    path = tmp_path / "radial.h5"
    ds = ismrmrd.Dataset(str(path), "dataset", create_if_needed=True)
    kappa = radial_trajectory(8, num_spokes=3).reshape(3, 16, 2) * 8 / (2 * math.pi)
    noise = ismrmrd.Acquisition.from_array(np.zeros((2, 16), np.complex64))
    noise.setFlag(19)
    ds.append_acquisition(noise)
    for spoke in kappa:
        acq = ismrmrd.Acquisition.from_array(np.zeros((2, 16), np.complex64),
                                             spoke.astype(np.float32))
        ds.append_acquisition(acq)
    ds.close()
    loaded = load_trajectory(path)
    assert loaded.units == "cycles"
    assert np.allclose(loaded.traj, kappa.reshape(-1, 2), atol=1e-6)
    made = make_trajectory(str(path), 8, dcf="pipe-menon", normalize=False)
    assert np.allclose(made.traj, radial_trajectory(8, num_spokes=3), atol=1e-6)
    assert made.dcf.shape == (48,) and (made.dcf > 0).all()


def test_ramp_from_any_radial_trajectory_is_proportional_to_the_analytic_ramp():
    from mri_unfold.trajectories import ramp_from_trajectory

    t = radial_trajectory(32, num_spokes=13, readout=64, ordering="golden", seed=3)
    ratio = radial_ramp_dcf(13, 64, 32) / ramp_from_trajectory(t, (32, 32))
    assert np.allclose(ratio, ratio[0], rtol=1e-9)          # capped below Nyquist, centre too
    with pytest.raises(ValueError, match=r"needs radial spokes through the k-space centre"):
        ramp_from_trajectory(np.full((5, 2), 0.3), (32, 32))
