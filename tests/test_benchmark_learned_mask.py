"""The learned-mask benchmark suite in quick mode: every variant is measured, the fixed mask is
the baseline of the overhead column, and the suite is registered with benchmarks/run.py."""
from __future__ import annotations

import pytest
import torch

from benchmarks import run
from benchmarks.suites import learned_mask


def test_quick_learned_mask_suite():
    assert run.SUITES["learned_mask"] is learned_mask
    args = run.parse_args(["--suite", "learned_mask", "--quick", "--reps", "2"])
    rows = learned_mask.run(args, torch.device("cpu"), {})
    assert [r["variant"] for r in rows] == ["fixed mask", "learned 2-D", "learned 1-D",
                                            "mask sample only (2-D)"]
    assert all(r["size"] == "64x64" and r["batch"] == 2 and r["time_s"] > 0 for r in rows)
    assert set(learned_mask.COLUMNS) <= set(rows[0])
    assert rows[0]["overhead_vs_fixed"] == 0
    assert rows[0]["images_per_s"] == pytest.approx(2 / rows[0]["time_s"])
    assert rows[1]["overhead_vs_fixed"] == pytest.approx(rows[1]["time_s"] / rows[0]["time_s"]
                                                         - 1)
    assert rows[3]["images_per_s"] is None
    assert rows[3]["overhead_vs_fixed"] == pytest.approx(rows[3]["time_s"] / rows[0]["time_s"])
