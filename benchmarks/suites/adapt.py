"""Zero-shot adaptation suite: what adapting a network to one scan costs (docs/self_supervised.md).

The network of the brain experiments — ISTA-Net+ 9 phases x 32 channels, real 256 x 256
images (``--quick``: 2 x 4, 64 x 64) — with a 20 % pseudo-radial mask, one slice:

* ``supervised step`` — one Adam step on the image loss, as the engine trains with ground
  truth (the peer: what a step costs without the self-supervised machinery);
* ``self-supervised step, K=1 / K=2`` — one adaptation step: the split of the measured
  locations, the reconstruction from ``Θ`` and the k-space loss at ``Λ`` (``K`` splits);
* ``validation`` — the held-out loss at ``Γ`` (a forward pass);
* ``zero-shot adaptation, one slice`` — :func:`mri_unfold.training.zero_shot.adapt_to_scan`
  with the docs' settings (``benchmarks/zero_shot_brain.py``), fixed at its step budget
  (no early stop), timed once per repetition: the seconds per slice of the brain results.

Each step variant runs in fp32 and with the bf16 autocast fast path.  ``vs_supervised``: the
row's time over the supervised step's in the same precision.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from mri_unfold.data import collate_samples, simulate_kspace
from mri_unfold.masks import make_mask
from mri_unfold.masks.split import SplitSettings
from mri_unfold.models import build
from mri_unfold.operators import KSpaceOperatorFactory, SingleCoilFourier
from mri_unfold.precision import autocast_for
from mri_unfold.training.self_supervised import heldout_loss, split_batch
from mri_unfold.training.zero_shot import AdaptSettings, adapt_to_scan, validation_split

from ..measure import median_time
from ..zero_shot_brain import SETTINGS

COLUMNS = ["variant", "precision", "size", "time_s", "vs_supervised"]
FACTORY = KSpaceOperatorFactory(real_input=True)


def _case(quick: bool):
    side, phases, channels = (64, 2, 4) if quick else (256, 9, 32)
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, side), torch.linspace(-1, 1, side),
                            indexing="ij")
    img = ((xx ** 2 + (yy / 1.3) ** 2) < 0.7).float() * (0.6 + 0.4 * torch.rand(side, side,
                                                                                  generator=g))
    mask = make_mask("radial", (side, side), acceleration=5, seed=0).mask
    sample = simulate_kspace(img.numpy(), mask).replace(target=None)
    model = build("ista_net_plus", num_phases=phases, channels=channels, image_channels=1,
                  seed=0)
    return side, img, np.asarray(mask), sample, model


def _supervised(model, img, mask, precision, device):
    op = SingleCoilFourier(mask, real_input=True).to(device)
    x = img[None, None].to(device)
    y = op(x)
    opt = torch.optim.Adam(model.parameters(), lr=1e-5)

    def step():
        with autocast_for(precision, device):
            loss = F.mse_loss(model(y, op).float(), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def _self_supervised(model, sample, reps, precision, device):
    train_b, _ = validation_split([sample], AdaptSettings(holdout=0.1), hermitian=True)
    split = SplitSettings(0.15, hermitian=True)
    g = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-5)

    def step():
        b_t, b_l = split_batch(train_b, split, g, reps=reps)
        with autocast_for(precision, device):
            loss = heldout_loss(model, FACTORY, b_t.to(device), b_l.to(device), "l1l2", device)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def _validation(model, sample, device):
    fit, held = validation_split([sample], AdaptSettings(holdout=0.1), hermitian=True)

    def step():
        with torch.no_grad():
            heldout_loss(model, FACTORY, fit.to(device), held.to(device), "l1l2", device)
    return step


def _adaptation(model, sample, quick, device):
    s = dataclasses.replace(SETTINGS, max_steps=4 if quick else SETTINGS.max_steps,
                            patience=10_000)

    def run():
        adapt_to_scan(model, [sample], FACTORY, s, device=device, progress=False)
    return run, s


def run(args, device: torch.device, ceilings: dict) -> list[dict]:
    side, img, mask, sample, model = _case(args.quick)
    model = model.to(device).train()
    rows = []
    for precision in ("fp32", "bf16"):
        cases = [("supervised step", _supervised(model, img, mask, precision, device)),
                 ("self-supervised step, K=1", _self_supervised(model, sample, 1, precision,
                                                                device)),
                 ("self-supervised step, K=2", _self_supervised(model, sample, 2, precision,
                                                                device)),
                 ("validation (held-out loss)", _validation(model, sample, device))]
        base = None
        for name, step in cases:
            t = median_time(step, device, warmup=args.warmup, reps=args.reps)
            base = base or t
            rows.append({"suite": "adapt", "variant": name, "precision": precision,
                         "size": f"{side}x{side}", "time_s": t, "vs_supervised": t / base})
    fn, s = _adaptation(model, sample, args.quick, device)
    t = median_time(fn, device, warmup=0, reps=1 if not args.quick else 2)
    sup = next(r["time_s"] for r in rows if r["variant"] == "supervised step"
               and r["precision"] == s.precision)
    rows.append({"suite": "adapt", "variant": f"zero-shot adaptation, one slice "
                 f"({s.max_steps} steps, K={s.masks_per_step})", "precision": s.precision,
                 "size": f"{side}x{side}", "time_s": t, "vs_supervised": t / sup})
    return rows
