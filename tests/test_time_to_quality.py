"""benchmarks/time_to_quality.py: validation PSNR against training time, and its figure."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from benchmarks import time_to_quality as ttq

TINY = Path(__file__).resolve().parents[1] / "protocols" / "tiny.toml"


@pytest.mark.slow
def test_two_variants_give_points_and_a_figure(shared, tmp_path):
    runs = []
    for variant in ("fp32", "protocol"):
        run = tmp_path / variant
        res = ttq.run_variant(str(TINY), variant, minutes=10.0, run_dir=str(run), val_every=5,
                              val_images=1, overrides=["training.epochs=1"])
        steps = [p["step"] for p in res["points"]]
        assert steps == [0, 5, 10, 12]  # initial weights, every 5 steps, the last step
        assert all(b["train_s"] >= a["train_s"] for a, b in zip(res["points"], res["points"][1:]))
        assert res["points"][-1]["psnr"] > res["points"][0]["psnr"]  # it learns
        assert json.loads((run / "time_to_quality.json").read_text()) == json.loads(
            json.dumps(res))
        runs.append(str(run))
    kept = tmp_path / "kept.json"  # the JSON alone (a copy in benchmarks/results/) also plots
    kept.write_text((Path(runs[0]) / "time_to_quality.json").read_text())
    assert ttq.curve(str(kept)) == ("tiny (fp32)", ttq.curve(runs[0])[1])
    png = ttq.plot(runs, str(tmp_path / "curve.png"), "tiny")
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size == (770, 462)
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
        assert len(colours) > 20  # axes, two curves, legend


def test_curve_of_an_engine_run_folder_reads_its_validations(tmp_path):
    """A plain ``mri-unfold train`` folder: the validations of ``log.jsonl`` against the
    training time of :func:`run_time` (first step = batch / images_per_s, then the gaps)."""
    run = tmp_path / "radial30"
    run.mkdir()
    (run / "protocol.toml").write_text("[training]\nbatch_size = 4\n")
    recs = [{"step": 1, "epoch": 0, "split": "train", "time": 100.0, "images_per_s": 0.5},
            {"step": 2, "epoch": 0, "split": "train", "time": 160.0, "images_per_s": 2.0},
            {"step": 2, "epoch": 0, "split": "val", "time": 190.0, "psnr": 31.5, "ssim": 0.8},
            {"step": 3, "epoch": 1, "split": "train", "time": 250.0, "images_per_s": 2.0},
            {"step": 3, "epoch": 1, "split": "val", "time": 280.0, "psnr": 32.25, "ssim": 0.8}]
    (run / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    label, pts = ttq.curve(str(run))
    assert label == "radial30 (validations included)"  # unlike this script's own runs
    assert pts == [(pytest.approx(98.0 / 60), 31.5), (pytest.approx(188.0 / 60), 32.25)]
    png = ttq.plot([str(run)], str(tmp_path / "zoo.png"), "zoo")
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size == (770, 462)
    with pytest.raises(FileNotFoundError, match=r"empty: neither time_to_quality.json nor "
                                                r"log.jsonl"):
        ttq.curve(str(tmp_path / "empty"))
