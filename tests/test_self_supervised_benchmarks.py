"""The scripts behind docs/self_supervised.md run on small settings and write what the docs
read: per-slice rows, summaries with paired confidence intervals, figures, k-space files."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import ssdu_brain_kspace, zero_shot_brain, zero_shot_twix  # noqa: E402
from benchmarks.run import main as bench_main  # noqa: E402
from mri_unfold.data.sources import detect_source, get_source  # noqa: E402


def test_summary_has_a_paired_t_interval():
    rows = [{"ratio": 20, "image": f"i{k}", "psnr_before": 30.0, "psnr_after": 30.0 + g,
             "ssim_before": 0.9, "ssim_after": 0.9 - g / 10, "psnr_release": 31.0 + g,
             "seconds": 2.0} for k, g in enumerate([0.2, 0.4, 0.6])]
    s = zero_shot_brain.summary({"source": "zoo", "rows": rows})[0]
    assert s["gain"] == pytest.approx(0.4) and s["slices"] == 3 and s["authors"] == 38.70
    assert s["release"] == pytest.approx(31.4) and s["ssim_after"] == pytest.approx(0.86)
    half = 4.302652729749464 * 0.2 / np.sqrt(3)            # t(0.975, 2) · sd / √n
    assert (s["ci_low"], s["ci_high"]) == pytest.approx((0.4 - half, 0.4 + half))


@pytest.mark.slow
def test_zero_shot_brain_runs_resumes_and_draws(tmp_path, capsys):
    out = tmp_path / "zs.json"
    args = ["--source", "zoo", "--ratios", "20", "--slices", "1", "--steps", "2",
            "--threads", "1", "--json", str(out)]
    assert zero_shot_brain.main(args) == 0
    data = json.loads(out.read_text())
    (row,) = data["rows"]
    assert row["image"] == "brain_test_01.png" and row["steps"] == 2
    assert row["psnr_before"] == pytest.approx(32.43, abs=0.01)  # the zoo model as released
    assert row["psnr_release"] == pytest.approx(34.95, abs=0.01)  # the authors' on that slice
    assert data["settings"]["split"] == 0.15 and data["summary"][0]["slices"] == 1
    assert zero_shot_brain.main(args) == 0                      # done rows are not redone
    assert len(json.loads(out.read_text())["rows"]) == 1
    png = tmp_path / "zs.png"
    del data["rows"][0]["psnr_release"]
    out.write_text(json.dumps(data))
    assert zero_shot_brain.main(["--summary", str(out), "--png", str(png),
                                 "--add-release"]) == 0
    assert json.loads(out.read_text())["rows"][0]["psnr_release"] == \
        pytest.approx(34.95, abs=0.01)                            # scored again and stored
    assert Image.open(png).size[0] > 400 and "zoo" in capsys.readouterr().out


def test_ssdu_brain_kspace_writes_measurements_only(tmp_path, shared):
    out = tmp_path / "k"
    assert ssdu_brain_kspace.main(["--ratio", "20", "--slices", "11-12", "--out",
                                   str(out)]) == 0
    files = sorted(out.iterdir())
    assert [f.name for f in files] == ["brain_test_11.npy", "brain_test_12.npy"]
    assert detect_source(files[0]) == "array"
    s = get_source("array").read(files[0])[0]
    assert s.target is None and s.image is None and s.metadata.undersampled
    assert abs(float(s.mask.mean()) - 0.2) < 0.01             # the authors' 20 % mask
    assert ssdu_brain_kspace.main(["--slices", "11", "--out", str(out)]) == 2  # not empty


def test_adapt_benchmark_suite_quick(tmp_path):
    out = tmp_path / "adapt.json"
    assert bench_main(["--suite", "adapt", "--quick", "--out", str(out), "--reps", "1",
                       "--warmup", "0", "--threads", "1"]) == 0
    rows = json.loads(out.read_text())["rows"]
    names = [(r["variant"], r["precision"]) for r in rows]
    assert ("supervised step", "fp32") in names and ("self-supervised step, K=2", "bf16") in names
    assert rows[-1]["variant"].startswith("zero-shot adaptation, one slice (4 steps")
    assert all(r["time_s"] > 0 for r in rows)
    sup = [r for r in rows if r["variant"] == "supervised step"]
    assert all(r["vs_supervised"] == 1 for r in sup)


def test_zero_shot_twix_redraws_its_curves(tmp_path, capsys):
    hist = [{"step": k, "val_loss": 0.6 - 0.01 * k, "psnr": 22.0 + 0.05 * k}
            for k in range(0, 50, 10)]
    res = tmp_path / "zs.json"
    res.write_text(json.dumps({"curves": {"8coil_4x, 1-D": hist, "1coil_4x, 1-D": hist}}))
    png = tmp_path / "curve.png"
    assert zero_shot_twix.main(["--redraw", "--json", str(res), "--curve-png", str(png)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {png}"
    im = Image.open(png)
    assert im.format == "PNG" and im.size == (1100, 420)
    assert np.asarray(im.convert("L")).std() > 20              # a real picture, not blank
