"""The child side of :mod:`benchmarks.memory_probe`: build one benchmark case and variant,
warm it up, measure one run's peak memory and print it as one JSON line.

Run by hand (prints ``{"peak_mem_mb": ..., "mem_delta_mb": ..., "mem_method": ...}``)::

    python -m benchmarks.memory_child '{"suite": "training", "model": "madun_25x32",
        "variant": "checkpoint", "batch": 64}' --warmup 1
"""
from __future__ import annotations

import argparse
import json

import torch

from .measure import PeakMemory
from .suites import inference, training, volume3d


def measure_in_this_process(spec: dict, quick: bool, compile_: bool, warmup: int,
                            device: torch.device) -> dict:
    """Build ``spec``'s case and variant, warm it up, and measure one run's peak memory."""
    ns = argparse.Namespace(compile=compile_, quick=quick)
    if spec["suite"] == "inference":
        case = inference.build_case(spec["model"], spec["operator"], quick, device)
        fn = inference.make_call(spec["variant"], case, inference.variants_for(ns, device))
    elif spec["suite"] == "training":
        case = training.build_case(spec["model"], int(spec["batch"]), quick, device)
        fn = training.make_step(spec["variant"], case, training.variants_for(ns, case[3]))
    elif spec["suite"] == "volume3d":
        fn, warm_fn = volume3d.memory_calls(spec, quick)
    else:
        raise ValueError(f"unknown suite {spec['suite']!r}; expected inference or training")
    for _ in range(warmup):  # inference calls run without autograd by themselves
        (fn if spec["suite"] != "volume3d" else warm_fn)()
    with PeakMemory(device) as mem:
        fn()
    return {"peak_mem_mb": mem.peak_mb, "mem_delta_mb": mem.delta_mb,
            "mem_method": f"subprocess-{mem.method}"}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="peak memory of one benchmark measurement")
    p.add_argument("spec", help='JSON, e.g. {"suite": "training", "model": "madun_small", '
                                '"variant": "plain", "batch": 4}')
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = measure_in_this_process(json.loads(args.spec), args.quick, args.compile,
                                  args.warmup, torch.device(args.device))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
