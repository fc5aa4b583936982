"""``mri-unfold study`` end to end on a tiny study: results and statistics against direct
computations, the learned mask's export, trained cells' checkpoints, figures that are real
images, the report, resuming (finished cells skipped, an interrupted cell redone whole) and
shards merged into the single run's results."""
from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch
from scipy import stats

from mri_unfold.checkpoints import load_checkpoint
from mri_unfold.cli import main
from mri_unfold.masks import load_mask, psf
from mri_unfold.metrics import psnr, ssim
from mri_unfold.operators import SingleCoilFourier
from mri_unfold.studies import load_study, prepare_study
from mri_unfold.studies.evaluate import METRICS
from mri_unfold.studies.plots import pool_for_display
from mri_unfold.studies.results import read_csv
from study_fixtures import make_study, png_pixels

N_CELLS = 18          # (radial, gaussian2d, learned-2d) x (3x, 5x) x 3 methods
N_TEST = 4


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    path = make_study(root)
    out = root / "out"
    assert main(["study", str(path), "--out", str(out), "--no-progress"]) == 0
    return path, out


def _rows(out):
    return read_csv(out / "results.csv")


def test_results_have_one_row_per_image_and_cell_with_both_conventions(tiny):
    path, out = tiny
    rows = _rows(out)
    assert len(rows) == N_CELLS * N_TEST
    cells = list(dict.fromkeys(r["cell"] for r in rows))
    assert len(cells) == N_CELLS and cells[0] == "radial_3x__zero-filled"
    assert "learned-2d_5x__ista_net_plus" in cells
    assert {r["method"] for r in rows} == {"zero-filled", "l1-wavelet-fista", "ista_net_plus"}
    # zero-filled rows against a direct computation on the study's own mask
    plan = prepare_study(load_study(path))
    mask = np.load(out / "masks" / "radial_5x.npy")
    op = torch.fft
    x = plan.data.test[:, 0].double()
    k = op.fftshift(op.fft2(op.ifftshift(x, dim=(-2, -1)), norm="ortho"), dim=(-2, -1))
    zf = op.fftshift(op.ifft2(op.ifftshift(k * torch.from_numpy(mask), dim=(-2, -1)),
                              norm="ortho"), dim=(-2, -1)).abs()
    zf_rows = [r for r in rows if r["cell"] == "radial_5x__zero-filled"]
    for i, r in enumerate(zf_rows):
        t, p = x[i].numpy(), zf[i].numpy()
        assert r["image"] == f"test{i:02d}.png"
        assert r["psnr"] == pytest.approx(psnr(t, p, t.max()), abs=1e-4)
        assert r["ssim"] == pytest.approx(ssim(t, p, t.max()), abs=1e-4)
        t255, p255 = t * 255, np.clip(p, 0, 1) * 255
        assert r["psnr255"] == pytest.approx(psnr(t255, p255, 255), abs=1e-4)
        assert r["achieved_acceleration"] == pytest.approx(mask.size / mask.sum())
        assert r["lambda"] is None and r["seed"] == 0 and r["mask_seed"] == 0


def test_summary_is_mean_std_and_t_interval_per_cell(tiny):
    _, out = tiny
    rows, summary = _rows(out), read_csv(out / "summary.csv")
    assert len(summary) == N_CELLS
    s = next(s for s in summary if s["cell"] == "gaussian2d_3x__ista_net_plus")
    for m in METRICS:
        v = np.array([r[m] for r in rows if r["cell"] == s["cell"]])
        half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
        assert s["n"] == N_TEST
        assert s[f"{m}_mean"] == pytest.approx(v.mean(), rel=1e-12)
        assert s[f"{m}_std"] == pytest.approx(v.std(ddof=1), rel=1e-12)
        assert s[f"{m}_ci_low"] == pytest.approx(v.mean() - half, rel=1e-12)
        assert s[f"{m}_ci_high"] == pytest.approx(v.mean() + half, rel=1e-12)


def test_lambda_is_the_best_of_the_sweep_on_validation_images(tiny):
    _, out = tiny
    info = json.loads((out / "cells" / "gaussian2d_5x__l1-wavelet-fista" / "cell.json")
                      .read_text())
    assert set(info["sweep"]) == {"0.001", "0.01"}
    assert info["lambda"] == float(max(info["sweep"], key=info["sweep"].get))
    assert {r["lambda"] for r in _rows(out) if r["cell"] == info["cell"]} == {info["lambda"]}
    assert info["study_seed"] == 0 and info["mask_seed"] == 0
    assert set(info["seconds"]) == {"sweep", "evaluation"}


def test_trained_cells_keep_their_checkpoint_and_the_learned_mask_is_exported(tiny):
    _, out = tiny
    cell = out / "cells" / "learned-2d_3x__ista_net_plus"
    info = json.loads((cell / "cell.json").read_text())
    assert info["steps"] == 2 and info["checkpoint"] == "run/last.safetensors"
    ck = load_checkpoint(cell / "run" / "last.safetensors")
    assert ck.operator_cfg["kind"] == "learned_mask" and ck.operator_cfg["mask_dims"] == 2
    assert ck.operator_cfg["mask_anneal_steps"] == 2 and ck.operator_cfg["seed"] == 0
    mask = load_mask(out / "masks" / "learned-2d_3x.npy", layout="centered")
    assert np.array_equal(mask, ck.op.binary_mask())
    assert int(mask.sum()) == round(32 * 32 / 3) == ck.op.budget
    hand = load_checkpoint(out / "cells" / "radial_3x__ista_net_plus" / "run" /
                           "last.safetensors")
    assert hand.operator_cfg["kind"] == "single_coil"
    assert np.array_equal(hand.op.mask.numpy(), np.load(out / "masks" / "radial_3x.npy") > 0)
    # the classical cells of the learned mask use the exported mask
    row = next(r for r in _rows(out) if r["cell"] == "learned-2d_3x__zero-filled")
    assert row["achieved_acceleration"] == pytest.approx(mask.size / mask.sum())


@pytest.mark.parametrize("name, size", [
    ("psnr_vs_acceleration.png", (360, 1260)), ("ssim_vs_acceleration.png", (360, 1260)),
    ("masks_psf.png", (704, 528)), ("recon_grid.png", (1056, 704)),
    ("paired.png", (324, 648))])
def test_figures_are_real_images_of_the_expected_size(tiny, name, size):
    _, out = tiny
    px = png_pixels(out / "figures" / name)
    assert px.shape[:2] == size
    assert (px < 250).any(axis=-1).mean() > 0.02          # drawn, not blank
    assert len(np.unique(px.reshape(-1, 3), axis=0)) > 20


def test_gallery_pooling_keeps_a_one_row_psf_and_the_sampled_fraction():
    mask = np.zeros((256, 256))
    mask[:, ::4] = 1                                      # 1-D: every 4th column
    db = 20 * np.log10(np.maximum(psf(mask), 1e-6))
    assert (db > -40).sum(axis=1).nonzero()[0].size == 1  # the PSF is a single row
    shown = pool_for_display(db, "max")
    assert shown.shape == (128, 128)
    assert shown.max() == db.max() and (shown > -40).any(axis=1).sum() == 1
    thumb = pool_for_display(mask, "mean")                # 2x2 blocks: 2 of 4, or none
    assert thumb.shape == (128, 128) and np.array_equal(thumb[0, :4], [0.5, 0, 0.5, 0])
    assert thumb.mean() == mask.mean()
    assert pool_for_display(np.ones((100, 60)), "mean").shape == (100, 60)   # small: as is
    odd = pool_for_display(np.arange(300.0 * 200).reshape(300, 200), "max")
    assert odd.shape == (100, 67) and odd[0, 0] == 2 * 200 + 2


def test_report_shows_settings_tables_and_every_figure(tiny):
    _, out = tiny
    page = (out / "report.html").read_text()
    for fig in ("psnr_vs_acceleration", "ssim_vs_acceleration", "masks_psf", "recon_grid",
                "paired"):
        assert f'src="figures/{fig}.png"' in page
    assert "learned-2d" in page and "Paired comparisons" in page and "[network]" in page
    md = (out / "summary.md").read_text()
    assert md.count("\n") > N_CELLS and "learned-2d − " in md
    head = md.split("## Per cell")[1].splitlines()[2]
    assert head.startswith("mask") and " | " in head


def test_a_second_run_skips_finished_cells_and_an_interrupted_cell_is_redone_whole(tiny,
                                                                                   capsys):
    path, out = tiny
    before = (out / "results.csv").read_text()
    assert main(["study", str(path), "--out", str(out), "--no-progress"]) == 0
    assert f"0 cells run, {N_CELLS} already finished" in capsys.readouterr().out
    victim = out / "cells" / "gaussian2d_5x__l1-wavelet-fista"
    (victim / "cell.json").unlink()                  # as if killed before its end
    (victim / "rows.csv").write_text("cell\nhalf-written\n")
    assert main(["study", str(path), "--out", str(out), "--no-progress"]) == 0
    assert f"1 cells run, {N_CELLS - 1} already finished" in capsys.readouterr().out
    assert (out / "results.csv").read_text() == before  # deterministic and complete


def test_shards_run_their_own_cells_and_merge_into_the_single_run(tiny, tmp_path, capsys):
    path, out = tiny
    shards = [tmp_path / "s1", tmp_path / "s2"]
    for k, d in enumerate(shards, start=1):
        assert main(["study", str(path), "--out", str(d), "--shard", f"{k}/2",
                     "--no-progress"]) == 0
        assert not (d / "results.csv").exists()
    text = capsys.readouterr().out
    assert "study tiny shard 1/2: 9 cells run" in text and "shard 2/2: 9 cells run" in text
    ran = [sorted(p.name for p in (d / "cells").iterdir()) for d in shards]
    assert not set(ran[0]) & set(ran[1]) and len(ran[0]) + len(ran[1]) == N_CELLS
    for mask in ("learned-2d_3x", "learned-2d_5x"):     # a learned mask's cells stay together
        assert len({i for i, r in enumerate(ran) for c in r if c.startswith(mask)}) == 1
    merged = tmp_path / "merged"
    assert main(["study", "merge", str(shards[0]), str(shards[1]), "--out", str(merged)]) == 0
    assert (merged / "results.csv").read_text() == (out / "results.csv").read_text()
    assert (merged / "summary.csv").read_text() == (out / "summary.csv").read_text()
    assert (merged / "figures" / "recon_grid.png").is_file()
    shutil.rmtree(shards[1] / "cells" / ran[1][0])
    assert main(["study", "merge", str(shards[0]), str(shards[1]), "--out",
                 str(tmp_path / "again")]) == 2
    assert "1 of 18 cells are not finished" in capsys.readouterr().err
    assert not (tmp_path / "again" / "results.csv").exists()



def test_a_pretrained_checkpoint_on_every_mask_and_fine_tuning_from_it(tiny, tmp_path):
    path, out = tiny
    ckpt = out / "cells" / "radial_3x__ista_net_plus" / "run" / "last.safetensors"
    text = path.read_text()
    for old, new in (('kinds = ["radial", "gaussian2d"]', 'kinds = ["gaussian2d"]'),
                     ("accelerations = [3, 5]", "accelerations = [5]"),
                     ("learned_dims = [2]", "learned_dims = []"),
                     ('classical = ["zero-filled", "l1-wavelet-fista"]',
                      f'classical = []\ncheckpoints = ["{ckpt.as_posix()}"]'),
                     ("max_steps = 2", f'max_steps = 1\ninit_from = "{ckpt.as_posix()}"')):
        assert old in text
        text = text.replace(old, new)
    (tmp_path / "ft.toml").write_text(text)
    res = tmp_path / "ft"
    assert main(["study", str(tmp_path / "ft.toml"), "--out", str(res), "--no-progress"]) == 0
    rows = read_csv(res / "results.csv")
    assert sorted({r["cell"] for r in rows}) == ["gaussian2d_5x__ckpt-last",
                                                "gaussian2d_5x__ista_net_plus"]
    # the checkpoint cell: the checkpoint's network on this study's 5x mask, scored directly
    ck = load_checkpoint(ckpt)
    plan = prepare_study(load_study(tmp_path / "ft.toml"))
    op = SingleCoilFourier(np.load(res / "masks" / "gaussian2d_5x.npy"), real_input=True)
    with torch.no_grad():
        rec = ck.model(op(plan.data.test), op)[:, 0].numpy().astype(np.float64)
    t = plan.data.test[:, 0].double().numpy()
    got = [r["psnr"] for r in rows if r["method"] == "ckpt-last"]
    want = [psnr(a, b, a.max()) for a, b in zip(t, rec)]
    assert got == pytest.approx(want, abs=1e-3)
    run_cfg = (res / "cells" / "gaussian2d_5x__ista_net_plus" / "run" / "protocol.toml")
    assert f'init_from = "{ckpt.as_posix()}"' in run_cfg.read_text()


def test_a_time_budget_stops_training_at_the_first_step_past_it(tmp_path):
    text = make_study(tmp_path).read_text()
    for old, new in (('kinds = ["radial", "gaussian2d"]', 'kinds = ["radial"]'),
                     ("accelerations = [3, 5]", "accelerations = [4]"),
                     ('classical = ["zero-filled", "l1-wavelet-fista"]', "classical = []"),
                     ("max_steps = 2", "max_steps = 0\nmax_seconds = 1e-6")):
        text = text.replace(old, new)
    (tmp_path / "t.toml").write_text(text)
    assert main(["study", str(tmp_path / "t.toml"), "--out", str(tmp_path / "o"),
                 "--no-progress"]) == 0
    for cell in ("radial_4x__ista_net_plus", "learned-2d_4x__ista_net_plus"):
        info = json.loads((tmp_path / "o" / "cells" / cell / "cell.json").read_text())
        assert info["steps"] == 1 and info["seconds"]["training"] > 0
    assert len(read_csv(tmp_path / "o" / "results.csv")) == 2 * N_TEST
