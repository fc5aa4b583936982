"""Peak memory of one benchmark measurement, taken in a fresh process.

Why a separate process: on CPU the C allocator keeps freed memory resident, so the RSS
growth of a second variant measured in the same process reads (close to) zero.  The parent
benchmark calls :func:`probe_memory` for each row; it runs this module as a child with
``MALLOC_MMAP_THRESHOLD_`` set low (large tensors are mapped and unmapped, so RSS follows
live memory), the child builds only that one case and variant, runs it ``warmup`` times
(compilation, oneDNN caches, optimizer state), then measures one more run with
:class:`benchmarks.measure.PeakMemory` (exact kernel peak counter ``VmHWM``, reset before
the run) and prints one JSON line.

Run by hand (prints ``{"peak_mem_mb": ..., "mem_delta_mb": ..., "mem_method": ...}``)::

    python -m benchmarks.memory_probe '{"suite": "training", "model": "madun_25x32",
        "variant": "checkpoint", "batch": 64}' --warmup 1
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]

#: allocator settings of the child (bytes): map every allocation >= 64 KiB separately
CHILD_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "65536"}


def probe_memory(spec: dict, args, device: torch.device, timeout: float = 3600) -> dict:
    """Measure ``spec`` (suite, model, variant and operator/batch) in a child process.

    Returns the child's ``{"peak_mem_mb", "mem_delta_mb", "mem_method"}`` or, when the child
    fails, ``{"mem_error": "<last line of its stderr>"}`` (the timing rows stay valid).
    """
    cmd = [sys.executable, "-m", "benchmarks.memory_probe", json.dumps(spec),
           "--warmup", str(max(1, args.warmup)), "--device", str(device)]
    if args.quick:
        cmd.append("--quick")
    if args.compile:
        cmd.append("--compile")
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    env = {**os.environ, **CHILD_ENV}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    try:
        res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"mem_error": f"memory probe timed out after {timeout:.0f} s"}
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    if res.returncode != 0 or not lines:
        err = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
        return {"mem_error": err[-1] if err else f"exit code {res.returncode}"}
    return json.loads(lines[-1])


def row_memory(args, device: torch.device, fn, spec: dict) -> dict:
    """Peak-memory columns of one benchmark row, as ``args.memory`` asks: ``{}`` (off),
    :func:`probe_memory` (subprocess), or one more call of ``fn`` measured in this process
    (inprocess; later variants read low, see :class:`benchmarks.measure.PeakMemory`)."""
    from benchmarks.measure import PeakMemory

    if args.memory == "off":
        return {}
    if args.memory == "subprocess":
        return probe_memory(spec, args, device)
    with PeakMemory(device) as mem:
        fn()
    return {"peak_mem_mb": mem.peak_mb, "mem_delta_mb": mem.delta_mb,
            "mem_method": f"inprocess-{mem.method}"}


def measure_in_this_process(spec: dict, quick: bool, compile_: bool, warmup: int,
                            device: torch.device) -> dict:
    """Build ``spec``'s case and variant, warm it up, and measure one run's peak memory."""
    from benchmarks.measure import PeakMemory
    from benchmarks.suites import inference, training

    ns = argparse.Namespace(compile=compile_, quick=quick)
    if spec["suite"] == "inference":
        case = inference.build_case(spec["model"], spec["operator"], quick, device)
        fn = inference.make_call(spec["variant"], case, inference.variants_for(ns, device))
    elif spec["suite"] == "training":
        case = training.build_case(spec["model"], int(spec["batch"]), quick, device)
        fn = training.make_step(spec["variant"], case, training.variants_for(ns, case[3]))
    else:
        raise ValueError(f"unknown suite {spec['suite']!r}; expected inference or training")
    for _ in range(warmup):  # inference calls run without autograd by themselves
        fn()
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
