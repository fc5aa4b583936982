"""Automatic λ for the classical baselines (issue 21): the held-out k-space rule, the
pipeline's default, and ``recon --lambda``."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mri_unfold import metrics
from mri_unfold.auto_lambda import LAMBDA_GRID, central_slices, choose_lambda, heldout_split
from mri_unfold.baselines import run_baseline, zero_filled
from mri_unfold.cli import main
from mri_unfold.data import simulate_kspace
from mri_unfold.errors import UserError
from mri_unfold.masks import make_mask
from mri_unfold.operators import MultiCoilFourier, NonCartesianFourier, SingleCoilFourier
from mri_unfold.reconstruct import reconstruct_samples
from mri_unfold.trajectories import make_trajectory

sys.path.insert(0, str(Path(__file__).parent))
from fake_fastmri import phantom  # noqa: E402

SHAPE = (48, 48)


def _problem(real: bool = True):
    img = np.abs(phantom(SHAPE, 0)).astype(np.float32)
    mask = make_mask("poisson", SHAPE, acceleration=3, center_fraction=0.12, seed=0).mask
    op = SingleCoilFourier(mask, real_input=real)
    x = torch.from_numpy(img / img.max())[None, None]
    return img / img.max(), op, op(x if real else x.to(torch.complex64))


def test_the_grid_is_half_decades():
    assert LAMBDA_GRID[0] == 1e-5 and LAMBDA_GRID[-1] == 0.1 and len(LAMBDA_GRID) == 9
    assert LAMBDA_GRID[1] == 3.16e-5 and LAMBDA_GRID[3] == 3.16e-4
    assert central_slices(10) == [3, 4, 5] and central_slices(2) == [0, 1]


def test_heldout_split_partitions_the_measurements():
    _, op, y = _problem()
    y_fit, op_fit, y_held, op_held = heldout_split(y, op, 0.2, seed=0)
    m = op.mask.bool().expand(1, *SHAPE)
    fit, held = op_fit.mask.bool().reshape(1, *SHAPE), op_held.mask.bool().reshape(1, *SHAPE)
    assert torch.equal(fit | held, m) and not bool((fit & held).any())
    assert abs(int(held.sum()) - 0.2 * int(m.sum())) <= 2
    assert torch.equal(y_fit + y_held, y)
    # real images: conjugate pairs held out together, so no held sample is "seen" twice
    assert op_fit.real_input and op_held.real_input


@pytest.mark.parametrize("method", ["l1-wavelet", "tv", "l1-wavelet-fista"])
def test_the_chosen_lambda_beats_zero_filled_on_a_phantom(method):
    img, op, y = _problem()
    choice = choose_lambda(method, y, op)
    assert choice.lamda in LAMBDA_GRID and sorted(choice.losses) == sorted(LAMBDA_GRID)
    assert choice.losses[choice.lamda] == min(choice.losses.values())
    rec = run_baseline(method, y, op, lamda=choice.lamda)[0].numpy()
    zf = zero_filled(y, op)[0].numpy()
    assert metrics.psnr(img, rec, 1.0) > metrics.psnr(img, zf, 1.0) + 1.0
    # and the choice is no worse than the grid's median λ by more than 1 dB
    med = LAMBDA_GRID[len(LAMBDA_GRID) // 2]
    med_rec = run_baseline(method, y, op, lamda=med)[0].numpy()
    assert metrics.psnr(img, rec, 1.0) > metrics.psnr(img, med_rec, 1.0) - 1.0


def test_multi_coil_and_non_cartesian_operators_are_split():
    img, op, _ = _problem(real=False)
    maps = torch.ones(2, *SHAPE, dtype=torch.complex64) / np.sqrt(2)
    mc = MultiCoilFourier(op.mask.reshape(SHAPE), maps)
    x = torch.from_numpy(img)[None, None].to(torch.complex64)
    choice = choose_lambda("l1-wavelet-fista", mc(x), mc, grid=(1e-4, 1e-2))
    assert set(choice.losses) == {1e-4, 1e-2}
    t = make_trajectory("radial", SHAPE[0], acceleration=2)
    nc = NonCartesianFourier(t.traj, SHAPE, dcf=t.dcf)
    y_fit, op_fit, y_held, op_held = heldout_split(nc(x), nc, 0.2)
    assert op_fit.mask.shape == op_held.mask.shape == (1, nc.num_samples)
    assert not bool((op_fit.mask & op_held.mask).any())
    assert torch.equal(y_fit + y_held, nc(x))


def test_refusals():
    _, op, y = _problem()
    with pytest.raises(UserError, match="an automatic λ applies to l1-wavelet, tv, "
                                        "l1-wavelet-fista, not 'sense'"):
        choose_lambda("sense", y, op)
    with pytest.raises(UserError, match="the λ grid is empty"):
        choose_lambda("tv", y, op, grid=())


def test_the_pipeline_chooses_lambda_unless_given():
    img, _, _ = _problem()
    mask = make_mask("poisson", SHAPE, acceleration=3, center_fraction=0.12, seed=0).mask
    samples = [simulate_kspace(img, mask, slice_index=k) for k in range(4)]
    auto = reconstruct_samples(samples, method="l1-wavelet-fista", progress=False)
    assert auto.info["lambda"] in LAMBDA_GRID and auto.info["lambda_slices"] == [0, 1, 2]
    assert auto.info["lambda_losses"][auto.info["lambda"]] == min(
        auto.info["lambda_losses"].values())
    given = reconstruct_samples(samples, method="l1-wavelet-fista", progress=False,
                                method_options={"lamda": 3e-3})
    assert given.info["lambda"] == 3e-3 and "lambda_losses" not in given.info
    assert auto.metrics["network"]["psnr"] > auto.metrics["zero-filled"]["psnr"]


def test_recon_lambda_option(tmp_path, capsys):
    img, _, _ = _problem()
    mask = make_mask("poisson", SHAPE, acceleration=3, center_fraction=0.12, seed=0).mask
    k = tmp_path / "k.npy"
    np.save(k, simulate_kspace(img, mask).kspace[0].numpy())
    base = ["recon", str(k), "--method", "l1-wavelet-fista", "--no-progress"]
    assert main([*base, "--output", str(tmp_path / "a.npy")]) == 0
    out = capsys.readouterr().out
    assert "chosen by the held-out k-space loss on slices 0" in out
    assert main([*base, "--lambda", "0.002", "--output", str(tmp_path / "b.npy")]) == 0
    assert "(lambda 0.002, given)" in capsys.readouterr().out
    assert main([*base, "--lambda", "-1", "--output", str(tmp_path / "c.npy")]) == 2
    assert "--lambda -1: expected 'auto' or a number > 0" in capsys.readouterr().err
    assert not (tmp_path / "c.npy").exists()


def test_a_study_can_choose_lambda_per_image(tmp_path):
    """``methods.lambdas = ["auto"]``: each test image's λ from its own measurements."""
    import json
    from study_fixtures import STUDY, make_study
    text = (STUDY.replace('lambdas = [1e-3, 1e-2]', 'lambdas = ["auto"]')
            .replace('learned_dims = [2]', 'learned_dims = []')
            .replace('model = "ista_net_plus"', 'model = ""')
            .replace('kinds = ["radial", "gaussian2d"]', 'kinds = ["radial"]')
            .replace('accelerations = [3, 5]', 'accelerations = [3]')
            .replace('grid_acceleration = 5', 'grid_acceleration = 3'))
    path = make_study(tmp_path, text)
    assert main(["study", str(path), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    info = json.loads((tmp_path / "out" / "cells" / "radial_3x__l1-wavelet-fista" /
                       "cell.json").read_text())
    assert info["lambda"] is None and info["lambda_choice"].startswith("auto")
    assert len(info["lambdas"]) == 4 and set(info["lambdas"]) <= set(LAMBDA_GRID)
    bad = make_study(tmp_path / "bad", STUDY.replace('lambdas = [1e-3, 1e-2]',
                                                     'lambdas = ["auto", 1e-3]'))
    assert main(["study", str(bad), "--out", str(tmp_path / "o2"), "--no-progress"]) == 2


def test_no_lambda_better_than_zero_filling_falls_back(tmp_path, capsys, monkeypatch):
    """When even the best λ predicts the held-out samples worse than zero-filling, the scan's
    undersampling is beyond the method: the pipeline returns the zero-filled image and says
    so (here forced by scaling every candidate's loss above zero-filling's)."""
    import mri_unfold.auto_lambda as auto
    real = auto.choose_lambda

    def worse(*a, **k):
        c = real(*a, **k)
        c.losses = {lam: c.zero_loss + 0.1 + v for lam, v in c.losses.items()}
        return c

    monkeypatch.setattr("mri_unfold.reconstruct.pipeline.choose_lambda", worse)
    img, _, _ = _problem()
    mask = make_mask("poisson", SHAPE, acceleration=3, center_fraction=0.12, seed=0).mask
    samples = [simulate_kspace(img, mask)]
    res = reconstruct_samples(samples, method="l1-wavelet-fista", progress=False)
    assert res.info["fallback"] == "zero-filled" and res.info["zero_filled_loss"] == 2.0
    np.testing.assert_array_equal(res.reconstruction, res.zero_filled)
    k = tmp_path / "k.npy"
    np.save(k, samples[0].kspace[0].numpy())
    assert main(["recon", str(k), "--method", "l1-wavelet-fista", "--output",
                 str(tmp_path / "o.npy"), "--no-progress"]) == 0
    assert "the output is the zero-filled image" in capsys.readouterr().out
