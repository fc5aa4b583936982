"""Training suite: patches per second and peak memory of one optimisation step (L1 loss,
Adam) on batches of 33x33 block-CS patches, reference layout vs the package's paths."""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from mri_unfold.fastpath import FastPath, accelerate
from mri_unfold.operators import GaussianBlockCS

from ..measure import PeakMemory, count_flops, median_time
from ..reference_layout import reference_for
from .cases import MODELS, make_model, select

VARIANTS = {
    "plain": FastPath(),
    "checkpoint": FastPath(grad_checkpoint=True),
    "bf16": FastPath(autocast="bf16"),
    "bf16_checkpoint": FastPath(autocast="bf16", grad_checkpoint=True),
}


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
    op = GaussianBlockCS(0.25, block_size=33, seed=0).to(device)
    x = torch.rand(batch, 1, 33, 33, generator=torch.Generator().manual_seed(0)).to(device)
    y = op(x)
    variants = dict(VARIANTS)
    if args.compile:
        variants["compiled"] = FastPath(compile=True)
    rows = []
    for model_name in select(args.models, MODELS):
        model = make_model(model_name, op, args.quick, device).train()
        if not hasattr(model, "grad_checkpoint"):
            variants_here = {k: v for k, v in variants.items() if not v.grad_checkpoint}
        else:
            variants_here = variants
        ref_net, ref_op = reference_for(model, op)
        ref_net.train()
        nets = {"reference": (ref_net, ref_op)}
        for name, path in variants_here.items():
            nets[name] = (accelerate(copy.deepcopy(model), path), op)
        flops = count_flops(_step_fn(model, y, x, op, torch.optim.Adam(model.parameters())))
        t_ref = None
        for name, (net, net_op) in nets.items():
            step = _step_fn(net, y, x, net_op, torch.optim.Adam(net.parameters(), lr=1e-4))
            t = median_time(step, device, warmup=args.warmup, reps=args.reps)
            with PeakMemory(device) as mem:
                step()
            t_ref = t if name == "reference" else t_ref
            ceiling = ceilings["bf16" if "bf16" in name else "fp32"]
            rows.append({
                "suite": "training", "model": model_name, "operator": "block_cs_33",
                "variant": name, "batch": batch, "time_s": t, "patches_per_s": batch / t,
                "speedup_vs_reference": t_ref / t, "peak_mem_mb": mem.peak_mb,
                "mem_delta_mb": mem.delta_mb, "gflops": flops / t / 1e9,
                "fraction_of_matmul_ceiling": flops / t / 1e9 / ceiling,
            })
        base = next(r for r in rows if r["model"] == model_name and r["variant"] == "plain")
        for r in rows:
            if r["model"] == model_name and r["mem_delta_mb"] and base["mem_delta_mb"]:
                r["mem_vs_plain"] = r["mem_delta_mb"] / base["mem_delta_mb"]
                r["time_vs_plain"] = r["time_s"] / base["time_s"]
    return rows


COLUMNS = ["model", "variant", "batch", "time_s", "patches_per_s", "speedup_vs_reference",
           "gflops", "fraction_of_matmul_ceiling", "mem_delta_mb", "mem_vs_plain",
           "time_vs_plain"]
