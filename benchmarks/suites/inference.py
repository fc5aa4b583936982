"""Inference suite: median time per image of each model x operator, for the reference
layout and the package's paths, side by side in one process run."""
from __future__ import annotations

import copy

import torch

from mri_unfold.fastpath import FastPath, accelerate

from ..measure import PeakMemory, count_flops, median_time
from ..reference_layout import reference_for
from .cases import MODELS, OPERATORS, make_model, make_operator, select

#: variant name -> FastPath (None = the package model called plainly under no_grad)
VARIANTS = {
    "plain": None,
    "fp32": FastPath(inference_mode=True),
    "fp32_cl": FastPath(inference_mode=True, channels_last=True),
    "bf16": FastPath(inference_mode=True, autocast="bf16"),
}


def _stage_count(model) -> int:
    return getattr(model, "num_stages", None) or model.num_phases


def run(args, device: torch.device, ceilings: dict) -> list[dict]:
    variants = dict(VARIANTS)
    if args.compile:
        variants["fp32_compiled"] = FastPath(inference_mode=True, compile=True)
    rows = []
    for op_name in select(args.operators, OPERATORS):
        op, x_true = make_operator(op_name, args.quick, device)
        y = op(x_true)
        for model_name in select(args.models, MODELS):
            model = make_model(model_name, op, args.quick, device).eval()
            ref_net, ref_op = reference_for(model, op)
            with torch.no_grad():
                ref_out = ref_net(y, ref_op)
                flops = count_flops(lambda: model(y, op))
            calls = {"reference": lambda: _no_grad(ref_net, y, ref_op)}
            for name, path in variants.items():
                if path is None:
                    calls[name] = lambda m=model: _no_grad(m, y, op)
                else:
                    fast = accelerate(copy.deepcopy(model), path)
                    calls[name] = lambda f=fast: f(y, op)
            t_ref = None
            for name, fn in calls.items():
                t = median_time(fn, device, warmup=args.warmup, reps=args.reps)
                with PeakMemory(device) as mem:
                    out = fn()
                t_ref = t if name == "reference" else t_ref
                ceiling = ceilings["bf16" if "bf16" in name else "fp32"]
                rows.append({
                    "suite": "inference", "model": model_name, "operator": op_name,
                    "variant": name, "time_s": t, "speedup_vs_reference": t_ref / t,
                    "max_abs_diff_vs_reference": float((out - ref_out).abs().max()),
                    "peak_mem_mb": mem.peak_mb, "mem_delta_mb": mem.delta_mb,
                    "gflops": flops / t / 1e9,
                    "fraction_of_matmul_ceiling": flops / t / 1e9 / ceiling,
                })
            if op.block_size:  # the operator share matters for MRI
                continue
            # share of the operator (FFTs, coil products) in the fp32 path's time
            k = _stage_count(model)
            x0 = op.adjoint(y)
            with torch.inference_mode():
                t_op = median_time(lambda: [op.normal(x0) for _ in range(k)] + [op.adjoint(y)],
                                   device, warmup=args.warmup, reps=args.reps)
            fp32_row = next(r for r in rows[::-1] if r["variant"] == "fp32")
            fp32_row["operator_time_s"] = t_op
            fp32_row["operator_fraction"] = t_op / fp32_row["time_s"]
    return rows


def _no_grad(net, y, op):
    with torch.no_grad():
        return net(y, op)


COLUMNS = ["model", "operator", "variant", "time_s", "speedup_vs_reference",
           "max_abs_diff_vs_reference", "gflops", "fraction_of_matmul_ceiling", "mem_delta_mb",
           "operator_fraction"]
