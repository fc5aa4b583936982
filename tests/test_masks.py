"""mri_unfold.masks: every kind, fastMRI parity, ratios, seeds, RNG hygiene, IO, layouts, PSF."""
from __future__ import annotations

import math

import h5py
import numpy as np
import pytest
import scipy.io
import sigpy.mri
import torch
from fastmri.data import subsample

from mri_unfold.masks import (KINDS, MaskResult, load_mask, make_mask, mask_stats,
                              peak_sidelobe_ratio, psf, save_mask, to_centered, to_unshifted)
from mri_unfold.masks.radial import radial_lines
from mri_unfold.operators import SingleCoilFourier

SHAPES = [(64, 64), (65, 77), (128, 96), (256, 256)]
RATIOS = [0.1, 0.25, 0.5]
DETERMINISTIC_KINDS = [k for k in KINDS if k not in ("random", "poisson")]


def _check_basic(res: MaskResult, kind, shape):
    assert isinstance(res, MaskResult)
    assert res.kind == kind
    assert res.mask.shape == shape and res.mask.dtype == np.float32
    assert set(np.unique(res.mask)) <= {0.0, 1.0}
    h, w = shape
    assert res.mask[h // 2, w // 2] == 1.0  # DC sampled, centred layout


@pytest.mark.parametrize("kind", DETERMINISTIC_KINDS)
@pytest.mark.parametrize("shape", SHAPES)
def test_ratio_within_two_points(kind, shape):
    for ratio in RATIOS:
        res = make_mask(kind, shape, ratio=ratio, seed=3)
        _check_basic(res, kind, shape)
        assert res.requested_ratio == ratio
        assert abs(res.ratio - ratio) <= 0.02, (kind, shape, ratio, res.ratio)
        assert res.acceleration == pytest.approx(1 / res.ratio)


@pytest.mark.parametrize("shape,ratio", [((64, 64), 0.25), ((65, 77), 0.1), ((128, 96), 0.5)])
def test_poisson_ratio_within_two_points(shape, ratio):
    res = make_mask("poisson", shape, ratio=ratio, seed=1)
    _check_basic(res, "poisson", shape)
    assert abs(res.ratio - ratio) <= 0.02


def test_poisson_equals_sigpy_when_sigpy_converges():
    res = make_mask("poisson", (64, 64), acceleration=4, seed=5)
    ref = sigpy.mri.poisson((64, 64), 4.0, calib=(5, 5), dtype=np.float32, seed=5, tol=0.1)
    assert res.num_low_frequencies == 25  # round(0.08 * 64) = 5 -> 5 x 5 calibration
    np.testing.assert_array_equal(res.mask, ref)


@pytest.mark.parametrize("shape", SHAPES)
def test_fastmri_random_ratio(shape):
    # fastMRI "random" keeps each outer column with probability p: the column count is binomial.
    # Each seed: within 5 points, or 4 binomial standard deviations where 5 points is less.
    # Mean of 20 seeds: within 2 points (or 3.5 standard errors).
    w = shape[1]
    for ratio in RATIOS:
        res = [make_mask("random", shape, ratio=ratio, seed=s) for s in range(20)]
        n_low = res[0].num_low_frequencies
        p = (w * ratio - n_low) / (w - n_low)
        sd = math.sqrt((w - n_low) * p * (1 - p)) / w
        got = np.array([r.ratio for r in res])
        assert abs(got.mean() - ratio) <= max(0.02, 3.5 * sd / math.sqrt(len(got))), (shape, ratio)
        assert np.abs(got - ratio).max() <= max(0.05, 4 * sd), (shape, ratio, got)


@pytest.mark.parametrize("kind,cls", [("random", subsample.RandomMaskFunc),
                                      ("equispaced", subsample.EquispacedMaskFractionFunc),
                                      ("magic", subsample.MagicMaskFractionFunc)])
@pytest.mark.parametrize("shape", [(64, 64), (65, 77), (320, 368)])
def test_identical_to_fastmri(kind, cls, shape):
    for acc, cf, seed in [(4, 0.08, 0), (8, 0.04, 123), (4, 0.08, 7)]:
        res = make_mask(kind, shape, acceleration=acc, center_fraction=cf, seed=seed)
        ref, n_low = cls([cf], [acc])((1, *shape, 2), seed=seed)
        ref = ref.numpy().reshape(1, shape[1])
        np.testing.assert_array_equal(res.mask, np.broadcast_to(ref, shape))
        assert res.num_low_frequencies == n_low
        assert res.center_fraction == cf and res.seed == seed
    # default centre fraction is recorded and reproduces fastMRI as well
    res = make_mask(kind, shape, acceleration=5, seed=11)
    ref, n_low = cls([res.center_fraction], [5.0])((1, *shape, 2), seed=11)
    np.testing.assert_array_equal(res.mask[0], ref.numpy().reshape(-1))
    assert res.num_low_frequencies == n_low


def test_fastmri_random_default_center_fraction_is_fastmri_convention():
    assert make_mask("random", (64, 320), acceleration=4, seed=0).num_low_frequencies == 26
    assert make_mask("random", (64, 320), acceleration=8, seed=0).center_fraction == 0.04


@pytest.mark.parametrize("kind", KINDS)
def test_reproducible_and_seed_dependent(kind):
    shape = (64, 72)
    a = make_mask(kind, shape, acceleration=4, seed=10)
    b = make_mask(kind, shape, acceleration=4, seed=10)
    np.testing.assert_array_equal(a.mask, b.mask)
    c = make_mask(kind, shape, acceleration=4, seed=11)
    if kind == "radial":
        assert a.seed is None and np.array_equal(a.mask, c.mask)  # deterministic
    elif kind in ("equispaced", "magic"):  # the seed only picks the offset among ~acc values
        masks = {make_mask(kind, shape, acceleration=4, seed=s).mask.tobytes() for s in range(8)}
        assert a.seed == 10 and len(masks) >= 2
    else:
        assert a.seed == 10 and not np.array_equal(a.mask, c.mask)


def test_seed_none_draws_and_records_a_seed():
    a = make_mask("random2d", (32, 32), acceleration=4, seed=None)
    assert isinstance(a.seed, int)
    b = make_mask("random2d", (32, 32), acceleration=4, seed=a.seed)
    np.testing.assert_array_equal(a.mask, b.mask)


@pytest.mark.parametrize("kind", KINDS)
def test_global_rng_untouched(kind):
    np.random.seed(1234)
    torch.manual_seed(1234)
    np_state = np.random.get_state()
    t_state = torch.get_rng_state()
    make_mask(kind, (48, 48), acceleration=4, seed=2)
    make_mask(kind, (48, 48), acceleration=4)
    after = np.random.get_state()
    assert np.array_equal(np_state[1], after[1]) and np_state[2:] == after[2:]
    assert torch.equal(t_state, torch.get_rng_state())


def test_acceleration_and_ratio_are_equivalent():
    a = make_mask("random2d", (40, 40), acceleration=4, seed=0)
    b = make_mask("random2d", (40, 40), ratio=0.25, seed=0)
    np.testing.assert_array_equal(a.mask, b.mask)
    assert a.ratio == 0.25 and a.acceleration == 4.0


def test_2d_centres_fully_sampled():
    for kind in ("random2d", "gaussian2d"):
        res = make_mask(kind, (64, 64), ratio=0.2, center_fraction=0.125, seed=0)
        assert res.mask[28:36, 28:36].all() and res.num_low_frequencies == 64
        assert mask_stats(res.mask)["center_size"] >= 8
    disc = make_mask("random2d", (64, 64), ratio=0.2, center_fraction=0.25, seed=0,
                     center_shape="disc")
    yy, xx = np.mgrid[:64, :64]
    inside = ((yy - 31.5) / 8) ** 2 + ((xx - 31.5) / 8) ** 2 <= 1
    assert disc.mask[inside].all() and disc.num_low_frequencies == int(inside.sum())


def test_gaussian2d_is_denser_in_the_middle():
    m = make_mask("gaussian2d", (128, 128), ratio=0.2, seed=0, sigma=0.15).mask
    inner, outer = m[40:88, 40:88].mean(), np.concatenate([m[:20].ravel(), m[-20:].ravel()]).mean()
    assert inner > 3 * outer


def test_radial_lines_and_golden_angle():
    res = make_mask("radial", (128, 128), ratio=0.2, golden_angle=True)
    assert abs(res.ratio - 0.2) <= 0.02 and res.num_low_frequencies == 0
    assert not np.array_equal(res.mask, make_mask("radial", (128, 128), ratio=0.2).mask)
    one = radial_lines((9, 9), 1)  # angle 0: the centre row
    expected = np.zeros((9, 9), np.float32)
    expected[4] = 1
    np.testing.assert_array_equal(one, expected)
    two = radial_lines((9, 9), 2)  # + the centre column
    expected[:, 4] = 1
    np.testing.assert_array_equal(two, expected)


def test_shared_radial_mask_and_ours_agree_on_ratio(shared):
    theirs = load_mask(shared / "data/mri/masks/radial_20.mat", layout="unshifted")
    ours = make_mask("radial", (256, 256), ratio=0.2).mask
    assert abs(theirs.mean() - ours.mean()) < 0.01


@pytest.mark.parametrize("kwargs,match", [
    (dict(acceleration=0.5), "acceleration must be a finite number >= 1"),
    (dict(ratio=0.0), r"ratio must be a number in \(0, 1\]"),
    (dict(ratio=1.5), r"ratio must be a number in \(0, 1\]"),
    (dict(), "give either acceleration"),
    (dict(acceleration=4, ratio=0.25), "not both"),
])
def test_bad_ratio_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_mask("random2d", (32, 32), **kwargs)


def test_unknown_kind_lists_valid_kinds():
    with pytest.raises(ValueError) as e:
        make_mask("spiral", (32, 32), acceleration=4)
    assert str(e.value) == ("unknown mask kind 'spiral'; valid kinds: random, equispaced, magic, "
                            "random2d, gaussian2d, radial, poisson")


@pytest.mark.parametrize("kind", ["random", "equispaced", "random2d", "gaussian2d", "poisson"])
def test_shape_too_small_for_centre(kind):
    with pytest.raises(ValueError, match="too small"):
        make_mask(kind, (8, 8), acceleration=10, center_fraction=0.04, seed=0)


def test_centre_larger_than_budget_and_other_errors():
    with pytest.raises(ValueError, match="exceeds the 102 points allowed"):
        make_mask("random2d", (32, 32), ratio=0.1, center_fraction=0.5, seed=0)
    with pytest.raises(ValueError, match="allows at most"):
        make_mask("random", (32, 64), acceleration=8, center_fraction=0.3, seed=0)
    with pytest.raises(ValueError, match="no separate fully sampled centre"):
        make_mask("radial", (32, 32), acceleration=4, center_fraction=0.1)
    with pytest.raises(ValueError, match="shape must be two positive integers"):
        make_mask("random2d", (32,), acceleration=4)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        make_mask("random2d", (32, 32), acceleration=4, seed=-1)
    with pytest.raises(TypeError, match=r"does not accept option\(s\) \['sigma'\]"):
        make_mask("random2d", (32, 32), acceleration=4, sigma=0.3)


# ---------------------------------------------------------------- layouts and IO
@pytest.mark.parametrize("shape", [(4, 6), (5, 7), (65, 77)])
def test_layout_round_trip_and_dc_position(shape):
    m = np.arange(shape[0] * shape[1], dtype=np.float32).reshape(shape)
    np.testing.assert_array_equal(to_centered(to_unshifted(m)), m)
    np.testing.assert_array_equal(to_unshifted(to_centered(m)), m)
    assert to_centered(m)[shape[0] // 2, shape[1] // 2] == m[0, 0]
    t = torch.from_numpy(m)
    assert torch.equal(to_unshifted(t), torch.from_numpy(to_unshifted(m)))


def test_load_shared_radial_masks(shared):
    for pct in (10, 20, 30, 50):
        path = shared / f"data/mri/masks/radial_{pct}.mat"
        m = load_mask(path, layout="unshifted")
        raw = scipy.io.loadmat(path)["mask_matrix"]
        assert m.shape == (256, 256) and m.dtype == np.float32
        assert set(np.unique(m)) == {0.0, 1.0}
        assert abs(m.mean() - pct / 100) < 0.005
        assert m[128, 128] == 1.0 and raw[0, 0] == 1
        np.testing.assert_array_equal(to_unshifted(m), raw.astype(np.float32))
    assert load_mask(shared / "data/mri/masks/radial_20.mat",
                     layout="unshifted").mean() == pytest.approx(0.20192, abs=1e-5)


def test_masks_from_matlab_files_are_c_contiguous(tmp_path, shared):
    """MATLAB files are column-major.  A Fortran-ordered mask kept its strides into the
    operator's buffer, and a compiled training step traced with one layout then failed
    (``expected ... stride``) and fell back to eager."""
    m = load_mask(shared / "data/mri/masks/radial_20.mat", layout="unshifted")
    assert m.flags["C_CONTIGUOUS"] and m.shape == (256, 256)
    f_ordered = np.asfortranarray(make_mask("random2d", (12, 10), acceleration=3, seed=0).mask)
    scipy.io.savemat(tmp_path / "f.mat", {"mask": f_ordered})
    assert load_mask(tmp_path / "f.mat", layout="centered").flags["C_CONTIGUOUS"]
    op = SingleCoilFourier(f_ordered)
    assert op.mask.is_contiguous() and op.mask.stride() == (10, 1)
    assert SingleCoilFourier(torch.from_numpy(f_ordered).T).mask.stride() == (12, 1)


def test_load_mat_v73_npy_npz(tmp_path):
    m = make_mask("random2d", (12, 10), acceleration=3, seed=0).mask
    p73 = tmp_path / "m73.mat"
    with h5py.File(p73, "w", userblock_size=512) as f:
        f.create_dataset("mask", data=m.T.astype(np.uint8))  # MATLAB stores column-major
    np.testing.assert_array_equal(load_mask(p73, layout="centered"), m)
    np.save(tmp_path / "m.npy", to_unshifted(m).astype(bool))
    np.testing.assert_array_equal(load_mask(tmp_path / "m.npy", layout="unshifted"), m)
    np.savez(tmp_path / "m.npz", a=m, b=m)
    np.testing.assert_array_equal(load_mask(tmp_path / "m.npz", layout="centered", key="b"), m)
    with pytest.raises(ValueError, match=r"holds 2 arrays \['a', 'b'\]; choose one with key="):
        load_mask(tmp_path / "m.npz", layout="centered")
    scipy.io.savemat(tmp_path / "v5.mat", {"x": m, "y": m})
    with pytest.raises(ValueError, match="no variable 'z'"):
        load_mask(tmp_path / "v5.mat", layout="centered", key="z")


def test_load_mask_errors(tmp_path, shared):
    radial = shared / "data/mri/masks/radial_20.mat"
    with pytest.raises(ValueError, match="pass layout='unshifted' or 'centered'"):
        load_mask(radial)
    with pytest.raises(FileNotFoundError, match="mask file not found"):
        load_mask(tmp_path / "nope.npy", layout="centered")
    np.save(tmp_path / "bad.npy", np.full((4, 4), 0.5))
    with pytest.raises(ValueError, match=r"bad.npy: mask must contain only 0 and 1.*0\.5"):
        load_mask(tmp_path / "bad.npy", layout="centered")
    np.save(tmp_path / "three.npy", np.ones((2, 4, 4)))
    with pytest.raises(ValueError, match=r"expected a 2-D mask \(H, W\), got shape \(2, 4, 4\)"):
        load_mask(tmp_path / "three.npy", layout="centered")
    (tmp_path / "m.txt").write_text("1 0")
    with pytest.raises(ValueError, match="unsupported mask file type '.txt'"):
        load_mask(tmp_path / "m.txt", layout="centered")


def test_save_mask_round_trip(tmp_path):
    m = make_mask("gaussian2d", (20, 24), acceleration=4, seed=1).mask
    save_mask(tmp_path / "g.npy", m, layout="unshifted")
    np.testing.assert_array_equal(np.load(tmp_path / "g.npy"), to_unshifted(m))
    np.testing.assert_array_equal(load_mask(tmp_path / "g.npy", layout="unshifted"), m)
    assert [p.name for p in tmp_path.iterdir()] == ["g.npy"]  # no temporary left behind


# ---------------------------------------------------------------- design diagnostics
def test_psf_peak_and_values():
    m = make_mask("random2d", (32, 40), acceleration=4, seed=0).mask
    p = psf(m)
    assert p.shape == (32, 40) and p[16, 20] == 1.0 and p.max() == 1.0
    ref = np.abs(np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(m.astype(np.float64)))))
    np.testing.assert_allclose(p, ref / ref[16, 20], atol=1e-12)
    full = np.ones((8, 8))
    assert psf(full)[4, 4] == 1.0 and psf(full).sum() == pytest.approx(1.0)
    assert peak_sidelobe_ratio(full) == math.inf


def test_peak_sidelobe_ratio_equispaced_is_coherent():
    # every 4th column and nothing else: 4 aliases of equal height -> 0 dB
    m = np.zeros((16, 16), np.float32)
    m[:, ::4] = 1
    assert peak_sidelobe_ratio(to_centered(m)) == pytest.approx(0.0, abs=1e-9)
    rnd = make_mask("random2d", (64, 64), acceleration=4, seed=0).mask
    assert peak_sidelobe_ratio(rnd) > 15.0


def test_mask_stats_values():
    res = make_mask("equispaced", (64, 64), acceleration=4, center_fraction=0.125, seed=0)
    s = mask_stats(res.mask)
    assert s["shape"] == (64, 64) and s["samples"] == int(res.mask.sum())
    assert s["ratio"] == pytest.approx(res.ratio) and s["acceleration"] == pytest.approx(
        res.acceleration)
    assert s["acs_lines"] >= res.num_low_frequencies == 8
    m = np.zeros((10, 10))
    m[3:7, 3:8] = 1  # centred 4x4 box around DC (5, 5)? rows 3..6 -> window (10-4+1)//2 = 3
    s = mask_stats(m)
    assert s["center_size"] == 4 and s["center_points"] == 16 and s["acs_lines"] == 0
    assert mask_stats(np.zeros((4, 4)))["acceleration"] == math.inf
