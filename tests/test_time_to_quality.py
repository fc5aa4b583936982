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
    png = ttq.plot(runs, str(tmp_path / "curve.png"), "tiny")
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size == (770, 462)
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
        assert len(colours) > 20  # axes, two curves, legend
