"""Inference suite: median time per image of each model x operator, for the reference
layout and the package's paths, side by side in one process run."""
from __future__ import annotations

import copy

import torch

from mri_unfold.fastpath import FastPath, accelerate

from ..measure import count_flops, median_time
from ..memory_probe import row_memory
from ..reference_layout import reference_for
from .cases import MODELS, OPERATORS, make_model, make_operator, select

#: variant name -> FastPath (None = the package model called plainly under no_grad)
VARIANTS = {
    "plain": None,
    "fp32": FastPath(inference_mode=True),
    "fp32_cl": FastPath(inference_mode=True, channels_last=True),
    "bf16": FastPath(inference_mode=True, autocast="bf16"),
    "bf16_cl": FastPath(inference_mode=True, channels_last=True, autocast="bf16"),
}
#: torch.compile (inductor) variants: measured unless --quick or --no-compile
COMPILED = {
    "fp32_compiled": FastPath(inference_mode=True, compile=True),
    "bf16_compiled": FastPath(inference_mode=True, autocast="bf16", compile=True),
}
#: CUDA-only variants
CUDA_ONLY = {"fp16": FastPath(inference_mode=True, autocast="fp16")}


def variants_for(args, device: torch.device) -> dict:
    """The variants a run measures (after ``"reference"``), in order."""
    out = dict(VARIANTS)
    if device.type == "cuda":
        out.update(CUDA_ONLY)
    if args.compile:
        out.update(COMPILED)
    return out


def _stage_count(model) -> int:
    return getattr(model, "num_stages", None) or model.num_phases


def build_case(model_name: str, op_name: str, quick: bool, device: torch.device):
    """``(op, y, model, ref_net, ref_op)`` for one model x operator (seeded, eval mode)."""
    op, x_true = make_operator(op_name, quick, device)
    y = op(x_true)
    model = make_model(model_name, op, quick, device).eval()
    ref_net, ref_op = reference_for(model, op)
    return op, y, model, ref_net, ref_op


def make_call(variant: str, case, variants: dict):
    """A no-argument callable running ``variant`` (``"reference"`` or a key of ``variants``)
    on ``case`` (from :func:`build_case`); returns the reconstruction."""
    op, y, model, ref_net, ref_op = case
    if variant == "reference":
        return lambda: _no_grad(ref_net, y, ref_op)
    path = variants[variant]
    if path is None:
        return lambda: _no_grad(model, y, op)
    fast = accelerate(copy.deepcopy(model), path)
    return lambda: fast(y, op)


def run(args, device: torch.device, ceilings: dict) -> list[dict]:
    variants = variants_for(args, device)
    rows = []
    for op_name in select(args.operators, OPERATORS):
        for model_name in select(args.models, MODELS):
            case = build_case(model_name, op_name, args.quick, device)
            op, y, model, ref_net, ref_op = case
            with torch.no_grad():
                ref_out = ref_net(y, ref_op)
                flops = count_flops(lambda: model(y, op))
            t_ref = None
            for name in ["reference", *variants]:
                fn = make_call(name, case, variants)
                t = median_time(fn, device, warmup=args.warmup, reps=args.reps)
                with torch.no_grad():
                    out = fn()
                t_ref = t if name == "reference" else t_ref
                kind = "bf16" if "bf16" in name else "fp32"
                row = {
                    "suite": "inference", "model": model_name, "operator": op_name,
                    "variant": name, "time_s": t, "speedup_vs_reference": t_ref / t,
                    "max_abs_diff_vs_reference": float((out - ref_out).abs().max()),
                    "gflops": flops / t / 1e9,
                    "fraction_of_matmul_ceiling": flops / t / 1e9 / ceilings[kind],
                    "fraction_of_conv_ceiling": flops / t / 1e9 / ceilings[f"conv_{kind}"],
                }
                row.update(row_memory(args, device, fn, dict(suite="inference", model=model_name,
                                                          operator=op_name, variant=name)))
                rows.append(row)
            if op.block_size:  # the operator share matters for MRI
                continue
            # share of the operator (FFTs, coil products) in the fp32 path's time
            k = _stage_count(model)
            x0 = op.adjoint(y)
            with torch.inference_mode():
                t_op = median_time(lambda: [op.normal(x0) for _ in range(k)] + [op.adjoint(y)],
                                   device, warmup=args.warmup, reps=args.reps)
            for r in rows[::-1]:
                if r["variant"] in ("fp32", "fp32_compiled") and r["operator"] == op_name \
                        and r["model"] == model_name:
                    r["operator_time_s"] = t_op
                    r["operator_fraction"] = t_op / r["time_s"]
    return rows


def _no_grad(net, y, op):
    with torch.no_grad():
        return net(y, op)


COLUMNS = ["model", "operator", "variant", "time_s", "speedup_vs_reference",
           "max_abs_diff_vs_reference", "gflops", "fraction_of_matmul_ceiling",
           "fraction_of_conv_ceiling", "peak_mem_mb", "mem_delta_mb", "operator_fraction"]
