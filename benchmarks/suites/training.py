"""Training suite: patches per second and peak memory of one optimisation step (L1 loss,
Adam) on batches of 33x33 block-CS patches, reference layout vs the package's paths."""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from mri_unfold.fastpath import FastPath, accelerate
from mri_unfold.operators import GaussianBlockCS

from ..measure import count_flops, median_time
from ..memory_probe import row_memory
from ..reference_layout import reference_for
from .cases import MODELS, make_model, select

VARIANTS = {
    "plain": FastPath(),
    "checkpoint": FastPath(grad_checkpoint=True),
    "bf16": FastPath(autocast="bf16"),
    "bf16_checkpoint": FastPath(autocast="bf16", grad_checkpoint=True),
}
#: torch.compile (inductor) variants: measured unless --quick or --no-compile
COMPILED = {
    "compiled": FastPath(compile=True),
    "bf16_compiled": FastPath(autocast="bf16", compile=True),
}
# (whole-model compile + per-stage checkpointing is not measured by default: dynamo traces
# the 25 checkpointed stages into a far slower program — 10.3 s per MADUN batch-64 step vs
# 2.2 s compiled without checkpointing; see docs/performance.md)
#: checkpointed variant -> the same path without checkpointing (memory/time ratios)
UNCHECKPOINTED = {"checkpoint": "plain", "bf16_checkpoint": "bf16"}


def variants_for(args, model) -> dict:
    out = dict(VARIANTS)
    if args.compile:
        out.update(COMPILED)
    if not hasattr(model, "grad_checkpoint"):
        out = {k: v for k, v in out.items() if not v.grad_checkpoint}
    return out


def build_case(model_name: str, batch: int, quick: bool, device: torch.device):
    """``(op, x, y, model, ref_net, ref_op)``: a seeded batch of 33x33 patches at 25 %."""
    op = GaussianBlockCS(0.25, block_size=33, seed=0).to(device)
    x = torch.rand(batch, 1, 33, 33, generator=torch.Generator().manual_seed(0)).to(device)
    y = op(x)
    model = make_model(model_name, op, quick, device).train()
    ref_net, ref_op = reference_for(model, op)
    ref_net.train()
    return op, x, y, model, ref_net, ref_op


def make_step(variant: str, case, variants: dict):
    """One L1/Adam optimisation step of ``variant`` (``"reference"`` or a key of
    ``variants``) as a no-argument callable (its optimizer is created here)."""
    op, x, y, model, ref_net, ref_op = case
    if variant == "reference":
        net, net_op = ref_net, ref_op
    else:
        net, net_op = accelerate(copy.deepcopy(model), variants[variant]), op
    return _step_fn(net, y, x, net_op, torch.optim.Adam(net.parameters(), lr=1e-4))


def _step_fn(net, y, x, op, opt):
    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.l1_loss(net(y, op), x)
        loss.backward()
        opt.step()
        return loss
    return step


def run(args, device: torch.device, ceilings: dict) -> list[dict]:
    batch = args.batch or (4 if args.quick else 64)
    rows = []
    for model_name in select(args.models, MODELS):
        case = build_case(model_name, batch, args.quick, device)
        op, x, y, model, _, _ = case
        variants = variants_for(args, model)
        flops = count_flops(_step_fn(copy.deepcopy(model), y, x, op,
                                     torch.optim.Adam(model.parameters())))
        t_ref = None
        here = []
        for name in ["reference", *variants]:
            step = make_step(name, case, variants)
            t = median_time(step, device, warmup=args.warmup, reps=args.reps)
            t_ref = t if name == "reference" else t_ref
            kind = "bf16" if "bf16" in name else "fp32"
            row = {
                "suite": "training", "model": model_name, "operator": "block_cs_33",
                "variant": name, "batch": batch, "time_s": t, "patches_per_s": batch / t,
                "speedup_vs_reference": t_ref / t, "gflops": flops / t / 1e9,
                "fraction_of_matmul_ceiling": flops / t / 1e9 / ceilings[kind],
                "fraction_of_conv_ceiling": flops / t / 1e9 / ceilings[f"conv_{kind}"],
            }
            row.update(row_memory(args, device, step, dict(suite="training", model=model_name,
                                                        variant=name, batch=batch)))
            here.append(row)
        by = {r["variant"]: r for r in here}
        for name, base in UNCHECKPOINTED.items():
            r, b = by.get(name), by.get(base)
            if r is None or b is None:
                continue
            r["time_vs_unckpt"] = r["time_s"] / b["time_s"]
            if r.get("mem_delta_mb") and b.get("mem_delta_mb"):
                r["mem_vs_unckpt"] = r["mem_delta_mb"] / b["mem_delta_mb"]
        rows += here
    return rows


COLUMNS = ["model", "variant", "batch", "time_s", "patches_per_s", "speedup_vs_reference",
           "gflops", "fraction_of_matmul_ceiling", "fraction_of_conv_ceiling", "peak_mem_mb",
           "mem_delta_mb", "mem_vs_unckpt", "time_vs_unckpt"]
