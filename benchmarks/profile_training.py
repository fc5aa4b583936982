"""Profile the training engine's own step (``Trainer.train_step``) with ``torch.profiler``.

Default case: ISTA-Net+ 9×32, whole-image 256×256 real-valued CS-MRI (20 % radial), batch 4,
MSE + symmetry loss, Adam — ``protocols/demo_ista_net_plus_mri.toml``'s step.  Each variant
is a list of protocol overrides (the same switches ``mri-unfold train`` takes), so what is
profiled is exactly what trains.

    python benchmarks/profile_training.py                       # fp32 and bf16, 1 step each
    python benchmarks/profile_training.py --variants fp32,bf16_cl --steps 2 --json prof.json

Prints, per variant, the seconds per step and the share of self CPU time of the top
operators and of these groups: convolution forward, convolution backward, FFT, elementwise
(pointwise math, copies), reductions, optimizer, other.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.measure import environment, write_json  # noqa: E402
from mri_unfold.training.config import load_protocol  # noqa: E402
from mri_unfold.training.data import epoch_batches  # noqa: E402
from mri_unfold.training.loop import Trainer  # noqa: E402

#: variant name -> protocol overrides
VARIANTS = {
    "fp32": [],
    "fp32_cl": ["training.channels_last=true"],
    "bf16": ["training.precision=\"bf16\""],
    "bf16_cl": ["training.precision=\"bf16\"", "training.channels_last=true"],
    "bf16_cl_fused": ["training.precision=\"bf16\"", "training.channels_last=true",
                      "training.optimizer=\"adam_fused\""],
}

#: operator-name fragments -> group (first match wins)
GROUPS = [
    ("conv_backward", ("convolution_backward", "conv_backward", "mkldnn_convolution_backward")),
    ("conv_forward", ("convolution", "conv2d", "mkldnn_conv")),
    ("fft", ("fft",)),
    ("optimizer", ("adam", "_foreach", "optimizer")),
    ("reduction", ("sum", "mean", "norm", "max")),
    ("elementwise", ("mul", "add", "sub", "div", "relu", "threshold", "sign", "abs", "copy",
                     "clone", "to_copy", "where", "pow", "fill", "zero", "cat", "neg",
                     "empty", "contiguous", "sgn", "clamp", "view_as", "real")),
]


def group_of(name: str) -> str:
    low = name.lower()
    for group, keys in GROUPS:
        if any(k in low for k in keys):
            return group
    return "other"


def _first_batch(trainer: Trainer):
    order = epoch_batches(trainer.dataset, 0, trainer.cfg["seed"],
                          trainer.stages[0]["batch_size"])
    idx = next(iter(order))
    items = [trainer.dataset[i] for i in idx]
    collate = getattr(trainer.dataset, "collate_fn", None)
    return collate(items) if collate else torch.stack(items)


def profile_variant(protocol: str, overrides: list[str], steps: int, top: int) -> dict:
    """Build the run's trainer, warm up one step, profile ``steps`` steps.

    Returns ``{"s_per_step", "groups": {group: share}, "top": [(op, share, calls)]}``
    (shares of the total self CPU time of the profiled steps)."""
    cfg = load_protocol(protocol, overrides=["evaluation.protocol=\"none\"",
                                             "training.progress=false", *overrides])
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp) / "run", device="cpu", progress=False)
        try:
            batch = _first_batch(trainer)
            trainer.train_step(batch)  # warm-up (and compilation, if any)
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                t0 = time.perf_counter()
                for _ in range(steps):
                    trainer.train_step(batch)
                dt = (time.perf_counter() - t0) / steps
        finally:
            trainer.folder.unlock()
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    groups: dict[str, float] = {}
    for e in events:
        g = group_of(e.key)
        groups[g] = groups.get(g, 0.0) + e.self_cpu_time_total / total
    events.sort(key=lambda e: -e.self_cpu_time_total)
    return {"s_per_step": dt, "batch": cfg["training"]["batch_size"],
            "groups": dict(sorted(groups.items(), key=lambda kv: -kv[1])),
            "top": [(e.key, e.self_cpu_time_total / total, e.count) for e in events[:top]]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--protocol", default=str(ROOT / "protocols" / "demo_ista_net_plus_mri.toml"))
    ap.add_argument("--variants", default="fp32,bf16", help=f"of {', '.join(VARIANTS)}")
    ap.add_argument("--override", action="append", default=[], help="extra protocol override")
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in names if v not in VARIANTS]
    if bad:
        print(f"profile_training: unknown variant(s) {bad}; valid: {', '.join(VARIANTS)}",
              file=sys.stderr)
        return 2
    out = {"environment": environment(torch.device("cpu")), "protocol": args.protocol,
           "overrides": args.override, "variants": {}}
    for name in names:
        res = profile_variant(args.protocol, [*VARIANTS[name], *args.override], args.steps,
                              args.top)
        out["variants"][name] = res
        print(f"\n== {name}: {res['s_per_step']:.2f} s/step, "
              f"{res['batch'] / res['s_per_step']:.2f} images/s")
        print("   groups: " + ", ".join(f"{g} {s:.1%}" for g, s in res["groups"].items()))
        for key, share, count in res["top"]:
            print(f"   {share:6.1%}  {count:6d}  {key}")
    out["environment"]["loadavg_end"] = environment(torch.device("cpu"))["loadavg"]
    if args.json:
        write_json(out, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
