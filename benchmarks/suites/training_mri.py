"""Whole-image MRI training suite: the training engine's own step (``Trainer.train_step``:
forward, loss, backward, clipping, Adam) at 256×256 real-valued CS-MRI (20 % radial), per
variant of the ``training.*`` switches, with the achieved GFLOP/s as a fraction of the
convolution ceiling measured in the same run.

Models (``--models``; default ``ista_net_plus,madun_25x32``): ISTA-Net+ 9×32 with the MSE +
symmetry loss (batch 4, ``protocols/demo_ista_net_plus_mri.toml``'s step) and MADUN 25×32
with the L1 loss (batch 1).  The data are eight seeded synthetic 256×256 slices written to
a temporary folder (the step's cost does not depend on the pixel values), so the suite needs
nothing from ``../shared``.  ``--batch`` overrides both batch sizes.
"""
from __future__ import annotations

import copy
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mri_unfold.training.config import validate_protocol
from mri_unfold.training.loop import Trainer

from ..measure import count_flops
from .cases import select

SIDE = 256
#: name -> (model table, loss, default batch, quick model config)
MRI_MODELS = {
    "ista_net_plus": ({"name": "ista_net_plus", "config": {"num_phases": 9, "channels": 32}},
                      "mse_sym", 4, {"num_phases": 2, "channels": 8}),
    "madun_25x32": ({"name": "madun", "config": {"num_stages": 25, "channels": 32}},
                    "l1", 1, {"num_stages": 2, "channels": 8}),
    "madun_small": ({"name": "madun", "config": {"num_stages": 5, "channels": 16}},
                    "l1", 2, {"num_stages": 1, "channels": 4}),
}
#: variant -> training.* overrides (the switches of a protocol)
VARIANTS = {
    "fp32": {},
    "fp32_cl": {"channels_last": True},
    "bf16": {"precision": "bf16"},
    "bf16_cl": {"precision": "bf16", "channels_last": True},
    "bf16_cl_fused": {"precision": "bf16", "channels_last": True, "optimizer": "adam_fused"},
}
COMPILED = {
    "bf16_compiled": {"precision": "bf16", "compile": True},
    "bf16_cl_compiled": {"precision": "bf16", "channels_last": True, "compile": True},
    "bf16_cl_compiled_fused": {"precision": "bf16", "channels_last": True, "compile": True,
                               "optimizer": "adam_fused"},
}


def write_slices(folder: Path, n: int = 8, side: int = SIDE) -> Path:
    """``n`` seeded smooth 8-bit gray PNG slices ``side``×``side`` (sums of random
    sinusoids), a stand-in for MR slices."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:side, 0:side] / side
    for i in range(n):
        a = sum(rng.uniform(0.1, 0.3) * np.sin(2 * np.pi * (rng.uniform(0, 6) * xx
                                                             + rng.uniform(0, 6) * yy))
                for _ in range(4))
        a = (a - a.min()) / (a.max() - a.min())
        Image.fromarray((a * 255).astype(np.uint8)).save(folder / f"slice{i}.png")
    return folder


def protocol(model: str, data: Path, batch: int, quick: bool, switches: dict) -> dict:
    """A validated protocol for one (model, variant) row."""
    table, loss, _, small = MRI_MODELS[model]
    table = copy.deepcopy(table)
    if quick:
        table["config"] = dict(small)
    return validate_protocol({
        "name": f"bench_{model}", "seed": 0,
        "data": {"kind": "images", "train": str(data)},
        "operator": {"kind": "single_coil", "mask": "radial", "ratio": 0.2, "seed": 0,
                     "real_input": True},
        "model": {**table, "seed": 0},
        "training": {"epochs": 1, "batch_size": batch, "lr": 1e-4, "loss": loss,
                     "grad_clip": 1.0, "progress": False, **switches},
    }, source=f"bench_{model}")


def _batch(trainer: Trainer, batch: int) -> torch.Tensor:
    return torch.stack([trainer.dataset[i % len(trainer.dataset)] for i in range(batch)])


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run(args, device: torch.device, ceilings: dict) -> list[dict]:
    """All variants of a model are built and warmed up (compiled) first, then timed in
    interleaved rounds (one step of each variant per round, ``--reps`` rounds), so that a
    change of the machine's load hits every variant alike; ``time_s`` is the median and
    ``best_time_s`` the minimum over the rounds."""
    rows = []
    variants = dict(VARIANTS, **(COMPILED if args.compile else {}))
    with tempfile.TemporaryDirectory() as tmp:
        data = write_slices(Path(tmp) / "slices", side=64 if args.quick else SIDE)
        for model in select(args.models, MRI_MODELS) if args.models else list(MRI_MODELS)[:2]:
            batch = args.batch or MRI_MODELS[model][2]
            trainers = {}
            try:
                for k, (name, switches) in enumerate(variants.items()):
                    cfg = protocol(model, data, batch, args.quick, switches)
                    trainers[name] = Trainer(cfg, Path(tmp) / f"run_{model}_{k}",
                                             device=str(device), progress=False)
                x = _batch(next(iter(trainers.values())), batch)
                # conv/matmul FLOPs of one fp32 step (forward + backward)
                flops = count_flops(lambda: trainers["fp32"].train_step(x))
                for tr in trainers.values():
                    for _ in range(max(1, args.warmup)):
                        tr.train_step(x)
                times = {name: [] for name in trainers}
                for _ in range(args.reps):
                    for name, tr in trainers.items():
                        times[name].append(_timed(lambda: tr.train_step(x)))
            finally:
                for tr in trainers.values():
                    tr.folder.unlock()
            here = []
            for name, ts in times.items():
                t = statistics.median(ts)
                kind = "bf16" if "bf16" in name else "fp32"
                here.append({"suite": "training_mri", "model": model, "operator": "single_256",
                             "variant": name, "batch": batch, "time_s": t,
                             "best_time_s": min(ts), "images_per_s": batch / t,
                             "gflops": flops / t / 1e9, "gflop_per_image": flops / batch / 1e9,
                             "fraction_of_conv_ceiling": flops / t / 1e9 / ceilings[f"conv_{kind}"],
                             "fraction_of_bf16_conv_ceiling": flops / t / 1e9 / ceilings["conv_bf16"],
                             "speedup_vs_fp32": statistics.median(times["fp32"]) / t})
            rows += here
    return rows


COLUMNS = ["model", "variant", "batch", "time_s", "best_time_s", "images_per_s", "speedup_vs_fp32", "gflops",
           "gflop_per_image", "fraction_of_conv_ceiling", "fraction_of_bf16_conv_ceiling"]
