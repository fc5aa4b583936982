"""The learned-mask benchmark suite in quick mode: every variant is measured, the fixed mask is
the baseline of the overhead column, and the rows reach the JSON file."""
from __future__ import annotations

import json

import pytest

from benchmarks import run


def test_quick_learned_mask_suite(tmp_path, capsys):
    out = tmp_path / "lm.json"
    assert run.main(["--suite", "learned_mask", "--quick", "--reps", "2", "--warmup", "1",
                     "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "== learned_mask ==" in text and f"wrote {out}" in text
    rows = json.loads(out.read_text())["rows"]
    assert [r["variant"] for r in rows] == ["fixed mask", "learned 2-D", "learned 1-D",
                                            "mask sample only (2-D)"]
    assert all(r["size"] == "64x64" and r["batch"] == 2 and r["time_s"] > 0 for r in rows)
    assert rows[0]["overhead_vs_fixed"] == 0
    assert rows[0]["images_per_s"] == pytest.approx(2 / rows[0]["time_s"])
    assert rows[3]["images_per_s"] is None
    assert rows[3]["overhead_vs_fixed"] == pytest.approx(rows[3]["time_s"] / rows[0]["time_s"])
