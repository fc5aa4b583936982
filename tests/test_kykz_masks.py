"""ky–kz masks of 3-D scans: accelerations, the ACS block, elliptical scanning, partial
Fourier in kz, CAIPI lattices, seeds, errors, and ``mri-unfold masks --acs``."""
from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest
import torch
from sigpy.mri.samp import _poisson

from mri_unfold.cli import main
from mri_unfold.errors import InvalidValue
from mri_unfold.masks import mask_stats
from mri_unfold.masks.kykz import (acs_block, allowed_region, caipi_factors, make_kykz_mask)

SHAPE = (64, 48)


@pytest.mark.parametrize("kind", ["poisson", "gaussian2d", "random2d"])
@pytest.mark.parametrize("accel", [4, 8])
def test_random_kinds_hit_the_acceleration_with_the_acs_block(kind, accel):
    res = make_kykz_mask(kind, SHAPE, acceleration=accel, acs=(12, 10), seed=3)
    m = res.mask
    assert m.shape == SHAPE and m.dtype == np.float32 and set(np.unique(m)) <= {0.0, 1.0}
    assert m[26:38, 19:29].all() and res.num_low_frequencies == 120      # centred 12 x 10
    if kind == "poisson":
        assert abs(res.acceleration - accel) < 0.02 * accel ** 2 + 0.05
    else:
        assert int(m.sum()) == round(64 * 48 / accel)                     # exact count
    again = make_kykz_mask(kind, SHAPE, acceleration=accel, acs=(12, 10), seed=3).mask
    other = make_kykz_mask(kind, SHAPE, acceleration=accel, acs=(12, 10), seed=4).mask
    assert np.array_equal(m, again) and not np.array_equal(m, other)


def test_gaussian_density_is_higher_near_dc():
    m = make_kykz_mask("gaussian2d", (96, 96), acceleration=6, acs=(8, 8), seed=0).mask
    inner = m[28:68, 28:68].mean() - 64 / 1600
    outer = (m.sum() - m[28:68, 28:68].sum()) / (96 * 96 - 1600)
    assert inner > 2 * outer


def test_elliptical_scanning_and_partial_fourier():
    m = make_kykz_mask("random2d", SHAPE, acceleration=3, acs=(8, 8), elliptical=True,
                       partial_fourier=0.75, seed=1).mask
    ok = allowed_region(SHAPE, True, 0.75)
    assert not m[~ok].any() and int(m.sum()) == round(64 * 48 / 3)
    assert not m[:, :12].any() and m[:, 12:].any()            # first 48 - 36 kz skipped
    ky = (np.arange(64) - 32) / 32.0
    kz = (np.arange(48) - 24) / 24.0
    assert not ok[ky[:, None] ** 2 + kz[None] ** 2 > 1].any()
    with pytest.raises(InvalidValue, match="reaches outside the sampled region"):
        make_kykz_mask("poisson", SHAPE, acceleration=4, acs=(8, 30), partial_fourier=0.6)
    with pytest.raises(InvalidValue, match=r"partial_fourier must be in \[0.5, 1\]"):
        allowed_region(SHAPE, False, 0.4)


def test_caipi_lattice_factors_and_offsets():
    assert [caipi_factors(r) for r in (2, 4, 6, 8, 9, 12)] == \
        [(2, 1), (2, 2), (3, 2), (4, 2), (3, 3), (4, 3)]
    with pytest.raises(InvalidValue, match="integer acceleration"):
        caipi_factors(4.5)
    res = make_kykz_mask("caipi", (16, 16), acceleration=4, acs=(2, 2), seed=0)
    m = res.mask.astype(bool)
    dy, dz = np.nonzero(m)
    outer = ~((np.abs(dy - 8) <= 1) & (np.abs(dz - 8) <= 1))
    dy, dz = dy[outer] - 8, dz[outer] - 8
    assert ((dz % 2 == 0) & ((dy - dz // 2) % 2 == 0)).all()    # 2 x 2 lattice, shift 1
    assert int(m.sum()) == 64 + 3                                # lattice + the ACS points off it
    shifted = make_kykz_mask("caipi", (16, 16), acceleration=4, acs=(2, 2), seed=1).mask
    assert not np.array_equal(shifted, res.mask) and shifted.sum() == res.mask.sum()
    plain = make_kykz_mask("caipi", (16, 16), acceleration=4, acs=(2, 2), caipi_shift=0).mask
    assert (plain[::2, ::2] == 1).all() and plain[1::2, 1::2][plain[1::2, 1::2] > 0].size == 1
    with pytest.raises(TypeError, match="does not accept"):
        make_kykz_mask("caipi", SHAPE, acceleration=4, sigma=0.3)


def test_poisson_with_a_large_acs_block_does_not_stall():
    """sigpy's sampler can stall on its own calibration block (only the block comes back);
    the ky-kz masks add the ACS block themselves."""
    ny, nx, calib = 99, 95, (24, 24)
    y, x = np.mgrid[:ny, :nx].astype(np.float64)
    xx = np.maximum(abs(x - nx / 2) - 12, 0) / (nx / 2 - 12)
    yy = np.maximum(abs(y - ny / 2) - 12, 0) / (ny / 2 - 12)
    r = np.sqrt(xx ** 2 + yy ** 2)
    rx, ry = np.clip((1 + r) * nx / ny, 1, None), np.clip(1 + r, 1, None)
    assert _poisson(nx, ny, 30, rx, ry, calib, 0).sum() == 576        # sigpy alone: the block
    res = make_kykz_mask("poisson", (99, 95), acceleration=4, acs=(24, 24), seed=0)
    assert abs(res.acceleration - 4) < 0.25 and mask_stats(res.mask)["center_size"] >= 24


def test_errors_name_the_problem():
    with pytest.raises(InvalidValue, match="unknown ky-kz mask kind 'radial'"):
        make_kykz_mask("radial", SHAPE, acceleration=4)
    with pytest.raises(InvalidValue, match=r"acs must be two integers"):
        acs_block(SHAPE, (70, 4))
    with pytest.raises(InvalidValue, match="does not fit between"):
        make_kykz_mask("random2d", (16, 16), acceleration=8, acs=(8, 8))
    np.random.seed(5)
    torch.manual_seed(5)
    state, t_state = np.random.get_state(), torch.get_rng_state()
    make_kykz_mask("poisson", SHAPE, acceleration=4, acs=(8, 8), seed=2)
    make_kykz_mask("gaussian2d", SHAPE, acceleration=4, acs=(8, 8), seed=None)
    after = np.random.get_state()
    assert np.array_equal(state[1], after[1]) and torch.equal(t_state, torch.get_rng_state())


def test_masks_command_draws_kykz_masks(tmp_path, capsys):
    png = tmp_path / "kykz.png"
    rc = main(["masks", "--kind", "poisson", "--kind", "caipi", "--shape", "64", "48",
               "--acs", "12", "10", "--elliptical", "--acceleration", "4", "--seed", "1",
               "--output", str(png), "--save-npy", str(tmp_path / "npy")])
    assert rc == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {ln.split()[0]: ln.split() for ln in lines[1:3]}
    ref = make_kykz_mask("caipi", (64, 48), acceleration=4, acs=(12, 10), elliptical=True,
                         seed=1)
    assert float(rows["caipi"][2]) == pytest.approx(ref.acceleration, abs=5e-4)
    assert np.array_equal(np.load(tmp_path / "npy" / "caipi.npy"), ref.mask)
    img = matplotlib.image.imread(png)
    assert img.shape[:2] == (660, 640) and img[..., :3].std() > 0.1
    rc = main(["masks", "--kind", "caipi", "--shape", "32", "32", "--acs", "8", "8",
               "--acceleration", "4.5", "--output", str(tmp_path / "bad.png")])
    assert rc == 2 and not (tmp_path / "bad.png").exists()
    assert capsys.readouterr().err.strip() == ("mri-unfold: error: a caipi mask needs an "
                                               "integer acceleration (ry x rz), got 4.5")
