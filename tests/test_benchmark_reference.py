"""The benchmark's straightforward reference layout reproduces the authors' golden vectors
and the package models, so the speed ratios compare like with like."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest
import torch

from mri_unfold import cpu_allocator
from mri_unfold.models import build
from mri_unfold.models.official import convert_official_state_dict, infer_arch
from mri_unfold.operators import GaussianBlockCS, MultiCoilFourier, SingleCoilFourier

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import run  # noqa: E402
from benchmarks.memory_probe import probe_memory  # noqa: E402
from benchmarks.reference_layout import (ConvBlockSampling, ReferenceISTA,  # noqa: E402
                                         ReferenceMADUN, reference_for)

SEED = "seed20211020"


def _golden(golden_dir, name):
    return torch.load(golden_dir / f"{name}_{SEED}.pt", map_location="cpu", weights_only=True)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def test_conv_sampling_equals_matrix_block_cs():
    op = GaussianBlockCS(0.3, block_size=8, seed=2)
    op.set_qinit(torch.randn(64, op.num_measurements, generator=_gen(0)))
    ref = ConvBlockSampling.like(op)
    x = torch.randn(2, 1, 16, 24, generator=_gen(1))
    y = op(x)
    assert ref(x).shape == y.shape == (2, op.num_measurements, 2, 3)
    assert (ref(x) - y).abs().max() <= 1e-5
    assert (ref.adjoint(y) - op.adjoint(y)).abs().max() <= 1e-5
    assert (ref.linear_init(y) - op.linear_init(y)).abs().max() <= 1e-5
    # exact adjoint: <Φx, y> == <x, Φ^T y>
    y2 = torch.randn(y.shape, generator=_gen(3))
    lhs, rhs = (ref(x) * y2).sum(), (x * ref.adjoint(y2)).sum()
    assert abs(lhs - rhs) <= 1e-4 * abs(lhs)


def test_reference_madun_reproduces_the_authors_golden_vector(golden_dir):
    g = _golden(golden_dir, "madun_cs")
    net = ReferenceMADUN.from_authors_state_dict(g["state_dict"]).eval()
    gates = [n for n, _ in net.fcs[1].ConvLSTM.named_children()]
    assert gates == ["conv_xf", "conv_xi", "conv_xo", "conv_xj",
                     "conv_hf", "conv_hi", "conv_ho", "conv_hj"]
    op = ConvBlockSampling(g["Phi"])
    assert (op(g["image"]) - g["y"]).abs().max() <= 1e-5
    with torch.no_grad():
        x = net(g["y"], op)
    assert x.shape == (1, 1, 66, 99)
    assert (x - g["x_out"]).abs().max() <= 1e-5
    # the same weights through the package model -> reference conversion
    sd, cfg = convert_official_state_dict(g["state_dict"])
    model = build("madun", **cfg).eval()
    model.load_state_dict(sd)
    ref, ref_op = reference_for(model, GaussianBlockCS.from_matrix(g["Phi"]))
    assert isinstance(ref_op, ConvBlockSampling)
    with torch.no_grad():
        assert (ref(g["y"], ref_op) - g["x_out"]).abs().max() <= 1e-5


@pytest.mark.parametrize("name", ["ista_net_cs", "ista_net_plus_cs"])
def test_reference_ista_block_cs_golden(golden_dir, name):
    g = _golden(golden_dir, name)
    sd, cfg = convert_official_state_dict(g["state_dict"])
    model = build(infer_arch(g["state_dict"]), **cfg, blockwise=True, init="linear").eval()
    model.load_state_dict(sd)
    net, op = reference_for(model, GaussianBlockCS.from_matrix(g["Phi"], qinit=g["Qinit"]))
    assert isinstance(net, ReferenceISTA) and net.blockwise and net.init == "linear"
    n = g["x_blocks"].shape[0]
    with torch.no_grad():
        out = net(g["y"].reshape(n, -1, 1, 1), op)
    assert (out.reshape(n, 1089) - g["x_out"]).abs().max() <= 1e-5


def test_reference_ista_plus_mri_golden(golden_dir):
    g = _golden(golden_dir, "ista_net_plus_mri")
    sd, cfg = convert_official_state_dict(g["state_dict"])
    model = build("ista_net_plus", **cfg).eval()
    model.load_state_dict(sd)
    op = SingleCoilFourier(g["mask"], layout="unshifted", real_input=True)
    net, ref_op = reference_for(model, op)
    assert ref_op is op  # Fourier operators are used as they are
    with torch.no_grad():
        out = net(op(g["image"]), ref_op)
    assert out.shape == (1, 1, 64, 48) and (out - g["x_out"]).abs().max() <= 1e-5


@pytest.mark.parametrize("arch", ["fista_net", "madun"])
def test_reference_matches_package_model_on_multicoil(arch):
    maps = torch.randn(3, 16, 16, dtype=torch.complex64, generator=_gen(4))
    op = MultiCoilFourier(torch.rand(16, 16, generator=_gen(5)) < 0.4, maps)
    cfg = dict(num_phases=3) if arch == "fista_net" else dict(num_stages=3)
    model = build(arch, channels=5, image_channels=2, seed=0, **cfg).eval()
    y = op(torch.randn(2, 1, 16, 16, dtype=torch.complex64, generator=_gen(6)))
    net, ref_op = reference_for(model, op)
    with torch.no_grad():
        ours, ref = model(y, op), net(y, ref_op)
    assert ref.dtype == torch.complex64 and ref.shape == (2, 1, 16, 16)
    assert (ours - ref).abs().max() <= 1e-5 * max(1.0, ours.abs().max().item())


@pytest.mark.slow
def test_quick_benchmark_writes_side_by_side_rows(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert run.main(["--suite", "inference", "--quick", "--models", "madun_small", "--operators",
                     "block_cs_264", "--reps", "1", "--warmup", "0", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    rows = res["rows"]
    assert [r["variant"] for r in rows] == ["reference", "plain", "fp32", "fp32_cl", "bf16",
                                            "bf16_cl"]
    assert {r["model"] for r in rows} == {"madun_small"} and rows[0]["speedup_vs_reference"] == 1
    by = {r["variant"]: r for r in rows}
    for v in ("plain", "fp32", "fp32_cl"):
        assert by[v]["max_abs_diff_vs_reference"] <= 1e-5
    for v in ("bf16", "bf16_cl"):
        assert 0 < by[v]["max_abs_diff_vs_reference"] <= 0.05
    for r in rows:
        assert abs(r["speedup_vs_reference"] - by["reference"]["time_s"] / r["time_s"]) <= 1e-9
        kind = "bf16" if r["variant"].startswith("bf16") else "fp32"
        ceiling = res["matmul_ceiling_gflops"][kind]
        assert abs(r["fraction_of_matmul_ceiling"] * ceiling - r["gflops"]) <= 1e-6 * r["gflops"]
        conv = res["conv_ceiling_gflops"][kind]
        assert conv["best"] == max(conv["nchw"], conv["channels_last"]) > 0
        assert abs(r["fraction_of_conv_ceiling"] * conv["best"] - r["gflops"]) \
            <= 1e-6 * r["gflops"]
        assert r["mem_method"] in ("inprocess-vmhwm", "inprocess-sampled")
        assert r["peak_mem_mb"] >= r["mem_delta_mb"] >= 0
    assert "madun_small" in capsys.readouterr().out
    assert run.main(["--suite", "inference", "--quick", "--models", "resnet"]) == 2
    assert "unknown name(s) ['resnet']; valid: ista_net_plus, fista_net, madun_25x32, " \
           "madun_small" in capsys.readouterr().err


@pytest.mark.slow
def test_memory_probe_measures_one_variant_in_a_fresh_process():
    args = argparse.Namespace(warmup=1, quick=True, compile=False, threads=0)
    spec = {"suite": "training", "model": "madun_small", "variant": "plain", "batch": 16}
    res = probe_memory(spec, args, torch.device("cpu"), timeout=300)
    assert res["mem_method"] == "subprocess-vmhwm", res
    assert res["peak_mem_mb"] > res["mem_delta_mb"] > 0
    bad = probe_memory(dict(spec, model="resnet"), args, torch.device("cpu"), timeout=300)
    assert set(bad) == {"mem_error"} and "resnet" in bad["mem_error"]


def test_quick_volume_suite_compares_batched_and_slice_by_slice(tmp_path):
    out = tmp_path / "vol.json"
    assert run.main(["--suite", "volume", "--quick", "--models", "ista_net_plus", "--operators",
                     "multi15_320", "--reps", "1", "--warmup", "0", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["variant"], r["batch"]) for r in rows] == [
        ("reference_batch1", 1), ("plain_batch1", 1), ("plain_batch2", 2), ("bf16_batch2", 2)]
    by = {r["variant"]: r for r in rows}
    assert by["plain_batch1"]["max_abs_diff_vs_reference"] <= 1e-6
    assert by["plain_batch2"]["max_abs_diff_vs_reference"] <= 1e-5
    assert 0 < by["bf16_batch2"]["max_abs_diff_vs_reference"] <= 0.05
    for r in rows:
        assert r["slices"] == 5 and abs(r["slices_per_s"] * r["time_s"] - 5) <= 1e-9


def test_benchmark_cli_errors_exit_2_before_measuring(monkeypatch, capsys):
    assert run.main(["--suite", "volume", "--quick", "--operators", "block_cs_264"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --operators block_cs_264 has no k-space operator for the volume suite; use "
        "one of single_256, single_320, multi15_320")
    monkeypatch.setattr(cpu_allocator, "retain_freed_memory", lambda: False)
    assert run.main(["--suite", "inference", "--quick", "--allocator", "retain"]) == 2
    assert capsys.readouterr().err.strip() == "error: --allocator retain needs glibc (mallopt)"


def test_memory_probe_reports_an_unknown_suite():
    args = argparse.Namespace(warmup=0, quick=True, compile=False, threads=0)
    res = probe_memory({"suite": "nope", "model": "madun_small"}, args, torch.device("cpu"),
                       timeout=120)
    assert res == {"mem_error": "ValueError: unknown suite 'nope'; expected inference or "
                                "training"}
