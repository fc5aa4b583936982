"""Learned-mask suite: the cost of learning the sampling mask with the network.

One optimisation step (L1 loss, Adam over the network and, when learned, the mask's logits)
of the shipped study's network — ISTA-Net+, 5 phases x 16 channels, real 256 x 256 images,
batch 2 (``--quick``: 2 phases x 4 channels, 64 x 64) — at 6x:

* ``fixed mask`` — :class:`~mri_unfold.operators.SingleCoilFourier` with the learned
  operator's binarised mask (the same number of samples);
* ``learned 2-D`` / ``learned 1-D`` — :class:`~mri_unfold.operators.LearnedMaskFourier`
  inside its ``training_step`` context, as the training loop runs it: a fresh relaxed
  sample per step (straight-through estimator), gradients into the logits;
* ``mask sample only (2-D)`` — drawing the sample and back-propagating through it alone.

``overhead_vs_fixed``: the row's time over the fixed mask's, minus 1 (the sample-only row:
its time as a fraction of a fixed-mask step).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from mri_unfold.models import build
from mri_unfold.operators import LearnedMaskFourier, SingleCoilFourier

from ..measure import median_time

COLUMNS = ["variant", "size", "batch", "time_s", "images_per_s", "overhead_vs_fixed"]


def _case(quick: bool):
    side, phases, channels = (64, 2, 4) if quick else (256, 5, 16)
    x = torch.rand(2, 1, side, side, generator=torch.Generator().manual_seed(0))
    model = build("ista_net_plus", num_phases=phases, channels=channels, image_channels=1,
                  seed=0)
    return side, x, model


def _train_step(model, op, x, extra_params=()):
    """One step as the engine takes it (the operator's per-step context when it has one)."""
    opt = torch.optim.Adam([*model.parameters(), *extra_params], lr=1e-3)
    counter = {"step": 0}

    def step():
        scope = getattr(op, "training_step", None)
        with scope(counter["step"]) if scope is not None else torch.enable_grad():
            loss = F.l1_loss(model(op(x), op), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        counter["step"] += 1
    return step


def _sample_only(op):
    counter = {"step": 0}

    def step():
        m = op.sample(counter["step"])
        (m * m.detach()).sum().backward()
        op.logits.grad = None
        counter["step"] += 1
    return step


def run(args, device: torch.device, ceilings: dict) -> list[dict]:
    side, x, model = _case(args.quick)
    x, model = x.to(device), model.to(device).train()
    learned2 = LearnedMaskFourier((side, side), 1 / 6, dims=2, seed=0, real_input=True,
                                  prob_slope=20.0, anneal_steps=100).to(device)
    learned1 = LearnedMaskFourier((side, side), 1 / 6, dims=1, seed=0, real_input=True,
                                  prob_slope=20.0, anneal_steps=100).to(device)
    fixed = SingleCoilFourier(learned2.mask, real_input=True).to(device)
    cases = [("fixed mask", _train_step(model, fixed, x)),
             ("learned 2-D", _train_step(model, learned2, x, learned2.parameters())),
             ("learned 1-D", _train_step(model, learned1, x, learned1.parameters())),
             ("mask sample only (2-D)", _sample_only(learned2))]
    rows = []
    for name, step in cases:
        t = median_time(step, device, warmup=args.warmup, reps=args.reps)
        rows.append({"suite": "learned_mask", "variant": name, "size": f"{side}x{side}",
                     "batch": len(x), "time_s": t,
                     "images_per_s": len(x) / t if "only" not in name else None})
    base = rows[0]["time_s"]
    for r in rows:
        r["overhead_vs_fixed"] = r["time_s"] / base - 1 if "only" not in r["variant"] else \
            r["time_s"] / base
    return rows
