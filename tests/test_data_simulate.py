"""k-space SIMULATION from magnitude images: phase, birdcage coils, consistency with Φ."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from mri_unfold.data.image_files import load_mat_image
from mri_unfold.data.simulate import birdcage_coil_maps, simulate_kspace, smooth_random_phase
from mri_unfold.fft import fft2
from mri_unfold.operators import MultiCoilFourier, SingleCoilFourier


def test_smooth_phase_seeded_bounded_smooth_and_no_global_rng():
    np_state, torch_state = np.random.get_state()[1].copy(), torch.get_rng_state().clone()
    a = smooth_random_phase((64, 48), order=2, max_phase=np.pi, seed=3)
    b = smooth_random_phase((64, 48), order=2, max_phase=np.pi, seed=np.random.default_rng(3))
    c = smooth_random_phase((64, 48), order=2, seed=4)
    assert np.array_equal(np.random.get_state()[1], np_state)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert a.shape == (64, 48) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert np.abs(a).max() == pytest.approx(np.pi, rel=1e-6)
    # Markov's inequality for a degree-2 polynomial bounded by pi on [-1, 1]: |p'| <= 4 pi
    assert np.abs(np.diff(a, axis=0)).max() <= 4 * np.pi * 2 / 63 + 1e-5
    assert np.abs(np.diff(a, axis=1)).max() <= 4 * np.pi * 2 / 47 + 1e-5
    assert np.ptp(smooth_random_phase((5, 5), order=0, seed=1)) == 0


def test_birdcage_maps_normalised():
    import sigpy.mri

    s = birdcage_coil_maps(6, (20, 17))
    assert s.shape == (6, 20, 17) and s.dtype == np.complex64
    np.testing.assert_allclose((np.abs(s) ** 2).sum(0), 1.0, rtol=1e-5)
    raw = sigpy.mri.birdcage_maps((6, 20, 17))
    # sigpy's own maps (already RSS-normalised by sigpy; our normalisation keeps them)
    np.testing.assert_allclose(s, sigpy.mri.birdcage_maps((6, 20, 17)), atol=1e-6)
    assert np.angle(s[1, 10, 8] / s[0, 10, 8]) != 0  # genuinely complex, coil-dependent


def test_single_coil_simulation_matches_operator(shared):
    img = load_mat_image(shared / "data" / "mri" / "chest_train" / "im-01.mat")[:64, :60]
    phase = smooth_random_phase(img.shape, seed=0)
    mask = np.zeros(img.shape, np.float32)
    mask[:, ::4] = 1
    mask[:, 26:34] = 1
    s = simulate_kspace(img, mask, phase=phase, fname="im-01.mat")
    assert s.kspace.shape == (1, 64, 60) and s.kspace.dtype == torch.complex64
    assert s.coil_maps is None and s.metadata.undersampled
    assert s.metadata.num_low_frequencies == 8 and s.metadata.extras["simulated"]
    np.testing.assert_array_equal(s.target.numpy(), img)
    x = torch.from_numpy(img * np.exp(1j * phase)).to(torch.complex64)
    op = SingleCoilFourier(mask)
    torch.testing.assert_close(s.kspace[None], op(x[None, None]))
    assert bool((s.kspace[0][torch.from_numpy(mask) == 0] == 0).all())
    full = simulate_kspace(img, np.ones(img.shape), phase=phase)
    recon = SingleCoilFourier(np.ones(img.shape)).adjoint(full.kspace[None])[0, 0]
    torch.testing.assert_close(recon.abs(), torch.from_numpy(img), atol=1e-5, rtol=0)
    assert not full.metadata.undersampled


def test_multicoil_simulation_matches_operator():
    rng = np.random.default_rng(1)
    img = rng.random((24, 21)).astype(np.float32)
    maps = birdcage_coil_maps(4, img.shape)
    mask = (rng.random(img.shape) < 0.5).astype(np.float32)
    s = simulate_kspace(torch.from_numpy(img), mask, coil_maps=maps)
    assert s.kspace.shape == (4, 24, 21) and s.coil_maps.shape == (4, 24, 21)
    op = MultiCoilFourier(mask, maps)
    x = torch.from_numpy(img).to(torch.complex64)[None, None]
    torch.testing.assert_close(s.kspace[None], op(x))
    # fully sampled: the SENSE adjoint returns the image exactly (Σ|S|² = 1)
    full = simulate_kspace(img, np.ones(img.shape), coil_maps=maps)
    back = MultiCoilFourier(np.ones(img.shape), maps).adjoint(full.kspace[None])
    torch.testing.assert_close(back, x, atol=1e-5, rtol=0)
    torch.testing.assert_close(full.kspace, fft2(torch.from_numpy(maps) * x[0]))


def test_simulation_errors():
    img = np.ones((8, 8), np.float32)
    with pytest.raises(ValueError, match=r"mask shape \(8, 7\) does not match the image shape "
                                         r"\(8, 8\)"):
        simulate_kspace(img, np.ones((8, 7)))
    with pytest.raises(ValueError, match="mask must contain only 0 and 1"):
        simulate_kspace(img, np.full((8, 8), 0.5))
    with pytest.raises(ValueError, match=r"coil_maps must have shape \(C, 8, 8\)"):
        simulate_kspace(img, np.ones((8, 8)), coil_maps=np.ones((2, 8, 9)))
    with pytest.raises(ValueError, match=r"image must be a real \(H, W\) magnitude image"):
        simulate_kspace(np.ones((1, 8, 8)), np.ones((8, 8)))
