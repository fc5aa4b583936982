"""The serve benchmark suite in quick mode: a warmed-up server on the loopback interface and the
offline path measured side by side for each reconstruction, registered with benchmarks/run.py."""
from __future__ import annotations

import pytest
import torch

from benchmarks import run
from benchmarks.suites import serve


@pytest.mark.slow  # ~10-15 s: three servers, each warmed up
def test_quick_serve_suite():
    assert run.SUITES["serve"] is serve
    args = run.parse_args(["--suite", "serve", "--quick", "--reps", "1"])
    rows = serve.run(args, torch.device("cpu"), {})
    assert [r["case"] for r in rows] == [f"{name}: 3 slices, 2 coils, 32x32" for name in
                                         ("zero-filled", "sense", "ista_net_plus_raw_sim")]
    for r in rows:
        assert set(serve.COLUMNS) <= set(r)
        assert 0 < r["paced_latency_ms"] <= r["paced_latency_max_ms"] < 30_000
        assert 0 < r["offline_ms_per_slice"] < 30_000 and 0 < r["burst_s"] < 60
        assert r["burst_slices_per_s"] == pytest.approx(3 / r["burst_s"])
        assert r["burst_acq_per_s"] == pytest.approx(85 / r["burst_s"])   # 1 noise + 3 x 28
