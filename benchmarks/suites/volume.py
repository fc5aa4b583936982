"""Volume suite: whole-volume reconstruction with ``mri_unfold.reconstruct_volume`` —
slice by slice vs batched, plain vs the fast paths, and the reference layout slice by
slice, in one process run.

The volume is ``S`` seeded random slices measured with the suite's operator (one shared
mask / coil maps for every slice, as ``mri-unfold recon`` does for a NIfTI volume);
``--batch`` sets the batched size (default 8; quick: 2).
"""
from __future__ import annotations

import copy

import numpy as np
import torch

from mri_unfold.fastpath import FastPath, accelerate
from mri_unfold.reconstruct import reconstruct_volume

from ..measure import median_time
from ..reference_layout import reference_for
from .cases import MODELS, OPERATORS, make_model, make_operator, select

#: operators a volume is reconstructed with (block CS has no k-space volume)
VOLUME_OPERATORS = ("single_256", "single_320", "multi15_320")


def select_operators(names: str | None) -> list[str]:
    """The ``--operators`` selection restricted to :data:`VOLUME_OPERATORS` (may be empty:
    ``--suite all`` then has no volume rows)."""
    return [o for o in select(names, OPERATORS) if o in VOLUME_OPERATORS]


def _variants(args, batch: int) -> list[tuple[str, int, FastPath | None, bool]]:
    """(name, batch size, FastPath or None for the plain model, pad_last_batch)."""
    out = [("plain_batch1", 1, None, False), (f"plain_batch{batch}", batch, None, False),
           (f"bf16_batch{batch}", batch, FastPath(autocast="bf16"), False)]
    if args.compile:
        out.append((f"bf16_compiled_batch{batch}", batch,
                    FastPath(autocast="bf16", compile=True), True))
    return out


def run(args, device: torch.device, ceilings: dict) -> list[dict]:
    batch = args.batch or (2 if args.quick else 8)
    num_slices = 5 if args.quick else 16
    rows = []
    for op_name in select_operators(args.operators):
        op, _ = make_operator(op_name, args.quick, device)
        side = op.mask.shape[-1]
        g = torch.Generator().manual_seed(7)
        x = torch.rand(num_slices, 1, side, side, generator=g).to(device)
        kspace = op(x.to(torch.complex64) if op.complex_domain else x)
        for model_name in select(args.models, MODELS):
            model = make_model(model_name, op, args.quick, device).eval()
            ref_net, ref_op = reference_for(model, op)
            calls = {"reference_batch1": (ref_net, ref_op, 1, False)}
            for name, b, path, pad in _variants(args, batch):
                net = model if path is None else accelerate(copy.deepcopy(model), path)
                calls[name] = (net, op, b, pad)
            outs, t_ref = {}, None
            for name, (net, net_op, b, pad) in calls.items():
                def fn(net=net, net_op=net_op, b=b, pad=pad):
                    return reconstruct_volume(kspace, net, lambda idx: net_op, batch_size=b,
                                              device=device, progress=False,
                                              pad_last_batch=pad)
                t = median_time(fn, device, warmup=args.warmup, reps=args.reps)
                outs[name] = fn()
                t_ref = t if t_ref is None else t_ref
                diff = np.abs(outs[name] - outs["reference_batch1"]).max()
                rows.append({
                    "suite": "volume", "model": model_name, "operator": op_name,
                    "variant": name, "slices": num_slices, "batch": b, "time_s": t,
                    "slices_per_s": num_slices / t, "speedup_vs_reference": t_ref / t,
                    "max_abs_diff_vs_reference": float(diff),
                })
    return rows


COLUMNS = ["model", "operator", "variant", "slices", "batch", "time_s", "slices_per_s",
           "speedup_vs_reference", "max_abs_diff_vs_reference"]
