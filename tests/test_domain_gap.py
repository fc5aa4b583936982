"""benchmarks/domain_gap.py: authors' release vs zoo vs extra checkpoints on held-out slices."""
from __future__ import annotations

import json

import pytest
from PIL import Image

from benchmarks import domain_gap
from mri_unfold.models.zoo import resolve_weights


@pytest.mark.slow
def test_rows_table_json_and_figure(shared, tmp_path):
    ckpt = f"again={resolve_weights('ista_net_plus_radial20')}"
    out, png = tmp_path / "gap.json", tmp_path / "gap.png"
    assert domain_gap.main(["--ratio", "20", "--holdout", "2", "--zoo", "ista_net_plus_radial20",
                            "--checkpoint", ckpt, "--json", str(out), "--png", str(png)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["model"] for r in rows] == ["authors' release", "ista_net_plus_radial20",
                                          "authors' release, ista_net_plus_radial20's mask",
                                          "again"]
    # brain_test_01 / _02 with the authors' radial_20.mat (measured 2026-12-03)
    assert rows[0]["per_image"] == pytest.approx([34.953, 34.974], abs=2e-3)
    assert rows[1]["per_image"] == pytest.approx([32.431, 32.303], abs=2e-3)
    assert rows[2]["per_image"] == pytest.approx([34.292, 34.558], abs=2e-3)  # our mask
    assert rows[3]["per_image"] == rows[1]["per_image"]  # the same weights as a file
    assert rows[0]["gap"] == 0.0
    assert rows[1]["gap"] == pytest.approx(rows[1]["psnr"] - rows[0]["psnr"], abs=1e-12)
    assert all(r["images"] == 2 for r in rows)
    assert rows[1]["trained_on"] == "protocols/zoo/ista_net_plus_radial20.toml"  # its card's
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size == (770, 462)
        assert len(im.convert("RGB").getcolors(maxcolors=1 << 20)) > 20


def test_bad_arguments_are_refused(shared):
    with pytest.raises(SystemExit, match="expected LABEL=PATH"):
        domain_gap.score_rows(20, 1, [], ["runs/x/last.safetensors"])
    with pytest.raises(SystemExit, match="--holdout 0: expected at least 1 slice"):
        domain_gap.score_rows(20, 0, [], [])
    with pytest.raises(SystemExit, match="--zoo complex_ista_net_plus_1coil_4x: a "
                                         "'kspace_complex' model; expected a real-valued"):
        domain_gap.score_rows(20, 1, ["complex_ista_net_plus_1coil_4x"], [])
    with pytest.raises(SystemExit, match="domain_gap: .*nope.safetensors"):
        domain_gap.main(["--holdout", "1", "--checkpoint", "x=nope.safetensors"])
