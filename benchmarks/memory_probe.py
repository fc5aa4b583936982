"""Peak memory of one benchmark measurement, taken in a fresh process (the parent side).

Why a separate process: on CPU the C allocator keeps freed memory resident, so the RSS
growth of a second variant measured in the same process reads (close to) zero.  The parent
benchmark calls :func:`probe_memory` for each row; it runs :mod:`benchmarks.memory_child` with
``MALLOC_MMAP_THRESHOLD_`` set low (large tensors are mapped and unmapped, so RSS follows
live memory), the child builds only that one case and variant, runs it ``warmup`` times
(compilation, oneDNN caches, optimizer state), then measures one more run with
:class:`benchmarks.measure.PeakMemory` (exact kernel peak counter ``VmHWM``, reset before
the run) and prints one JSON line.

Run by hand (prints ``{"peak_mem_mb": ..., "mem_delta_mb": ..., "mem_method": ...}``)::

    python -m benchmarks.memory_child '{"suite": "training", "model": "madun_25x32",
        "variant": "checkpoint", "batch": 64}' --warmup 1
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from .measure import PeakMemory

ROOT = Path(__file__).resolve().parents[1]

#: allocator settings of the child (bytes): map every allocation >= 64 KiB separately
CHILD_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "65536"}


def probe_memory(spec: dict, args, device: torch.device, timeout: float = 3600) -> dict:
    """Measure ``spec`` (suite, model, variant and operator/batch) in a child process.

    Returns the child's ``{"peak_mem_mb", "mem_delta_mb", "mem_method"}`` or, when the child
    fails, ``{"mem_error": "<last line of its stderr>"}`` (the timing rows stay valid).
    """
    cmd = [sys.executable, "-m", "benchmarks.memory_child", json.dumps(spec),
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
    if args.memory == "off":
        return {}
    if args.memory == "subprocess":
        return probe_memory(spec, args, device)
    with PeakMemory(device) as mem:
        fn()
    return {"peak_mem_mb": mem.peak_mb, "mem_delta_mb": mem.delta_mb,
            "mem_method": f"inprocess-{mem.method}"}
