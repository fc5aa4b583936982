"""The volume3d benchmark suite in quick mode: the slice-by-slice peer and the streamed paths
reconstruct the same scan, and the 3-D NUFFT normals agree with finufft and torchkbnufft."""
from __future__ import annotations

import json
import math

import numpy as np
import torch

from benchmarks import run
from benchmarks.suites.volume3d import (build_volume_case, slice_loop, volume_call,
                                        warmup_positions)


def test_quick_volume3d_suite_writes_the_peers_side_by_side(tmp_path, capsys):
    out = tmp_path / "v3.json"
    assert run.main(["--suite", "volume3d", "--quick", "--reps", "1", "--warmup", "0",
                     "--out", str(out)]) == 0
    assert "== volume3d ==" in capsys.readouterr().out
    rows = json.loads(out.read_text())["rows"]
    variants = [r["variant"] for r in rows]
    assert variants[:3] == ["slice_loop", "streamed_fp32", "streamed_bf16"]
    assert "espirit_per_position" in variants
    vol = {r["variant"]: r for r in rows[:3]}
    assert vol["slice_loop"]["time_vs_first"] == 1.0
    assert vol["streamed_fp32"]["max_rel_diff"] < 1e-5      # the same numbers, batched
    assert vol["streamed_bf16"]["max_rel_diff"] < 5e-2      # bf16 convolutions
    nufft = [r for r in rows if r["case"].startswith("stack of stars")]
    assert len(nufft) >= 4 and nufft[0]["variant"].startswith("stack-of-stars normal")
    assert all(r["seconds"] > 0 for r in nufft)
    exact = [r for r in nufft if "torchkbnufft" not in r["variant"]]
    assert all(r["max_rel_diff"] < 1e-4 for r in exact)     # finufft eps 1e-6, Toeplitz
    kb = [r for r in nufft if "torchkbnufft" in r["variant"]]
    assert all(r["max_rel_diff"] < 5e-3 for r in kb)
    assert all(math.isnan(r["peak_mem_mb"]) for r in nufft)


def test_slice_loop_and_streamed_pipeline_agree_on_a_sub_scan():
    scan, model = build_volume_case(quick=True)
    loop = slice_loop(scan, model, range(4, 8))
    streamed = volume_call("streamed_fp32", scan, model, 3, range(4, 8))()
    assert loop.shape == streamed.shape == (4, 32, 24)
    assert np.abs(loop - streamed).max() < 1e-5 * np.abs(loop).max()


def test_full_size_warmup_positions_hold_signal():
    # the full-size phantom is empty at the edge readout positions; a warm-up there would
    # stop the suite (metrics of an all-zero target are refused)
    scan, _ = build_volume_case(quick=False)
    warm = warmup_positions(scan.shape[0])
    assert list(warm) == list(range(124, 132))
    assert all(float(s.target.max()) > 0 for s in scan.samples(warm))
    assert float(scan.samples([0])[0].target.max()) == 0.0


def test_memory_child_measures_a_volume_row_after_a_central_warm_up():
    from benchmarks.memory_child import measure_in_this_process
    out = measure_in_this_process({"suite": "volume3d", "variant": "streamed_fp32",
                                   "batch": 2}, quick=True, compile_=False, warmup=1,
                                  device=torch.device("cpu"))
    assert out["peak_mem_mb"] > 0 and out["mem_method"].startswith("subprocess-")
