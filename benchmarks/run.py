"""Run the mri-unfold benchmarks, print tables and write JSON.

Usage (from the repository root)::

    python benchmarks/run.py --suite inference|training|training_mri|volume|volume3d|data|raw|nufft|
        serve|adapt|all
        [--quick]
        [--out FILE]
        [--models a,b] [--operators a,b] [--reps N] [--warmup N] [--batch N]
        [--workers N] [--threads N] [--compile|--no-compile]
        [--memory subprocess|inprocess|off] [--allocator default|retain] [--device cpu|cuda]

Each suite measures the straightforward reference layout (``benchmarks/reference_layout.py``)
and the package's paths in the same process run and reports their ratio; timings are
medians of ``--reps`` runs after ``--warmup`` runs.  ``--quick`` uses tiny sizes (seconds).
``torch.compile`` (inductor) variants are measured by default except with ``--quick``
(their first call compiles for 20-60 s on CPU; it is part of the warm-up).  Peak memory is
measured per row in a fresh process by default (``--memory subprocess``, see
``benchmarks/memory_probe.py``).
The JSON (default ``benchmarks/results/<suite>[-quick].json``) holds the environment
(torch version, threads, load average), the measured matmul ceilings and one row per
measurement.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks import measure  # noqa: E402
from mri_unfold import cpu_allocator  # noqa: E402
from benchmarks.suites import (data, inference, nufft, raw, training, training_mri,  # noqa: E402
                               volume, volume3d)

SUITES = {"inference": inference, "training": training, "training_mri": training_mri,
          "volume": volume, "volume3d": volume3d, "data": data, "raw": raw, "nufft": nufft}

from benchmarks.suites import learned_mask  # noqa: E402

SUITES["learned_mask"] = learned_mask  # learned-mask training overhead (docs/mask_design.md)

from benchmarks.suites import serve  # noqa: E402

SUITES["serve"] = serve  # inline reconstruction latency and throughput (docs/serving.md)

from benchmarks.suites import adapt  # noqa: E402

SUITES["adapt"] = adapt  # zero-shot adaptation cost per slice (docs/self_supervised.md)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--suite", default="inference", choices=[*SUITES, "all"])
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run in seconds")
    p.add_argument("--out", type=Path, help="JSON output file")
    p.add_argument("--models", help=f"comma-separated subset of {', '.join(inference.MODELS)}")
    p.add_argument("--operators", help=f"comma-separated subset of "
                                       f"{', '.join(inference.OPERATORS)} (inference suite)")
    p.add_argument("--reps", type=int, default=None, help="timed repetitions (default 5, quick 2)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--batch", type=int, default=0, help="training batch (default 64, quick 4)")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers (data suite)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="measure the torch.compile (inductor) variants (default: on, off "
                        "with --quick)")
    p.add_argument("--memory", choices=("subprocess", "inprocess", "off"), default=None,
                   help="peak memory per row: in a fresh child process (default; exact), "
                        "in this process (quick default; deltas read low after the first "
                        "variant), or not at all")
    p.add_argument("--allocator", choices=("default", "retain"), default="default",
                   help="'retain': mri_unfold.cpu_allocator.retain_freed_memory() before "
                        "measuring (glibc keeps freed memory; no page faults per tensor)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)
    if args.compile is None:
        args.compile = not args.quick
    if args.memory is None:
        args.memory = "inprocess" if args.quick else "subprocess"
    if args.reps is None:
        args.reps = 2 if args.quick else 5
    if args.reps < 1 or args.warmup < 0:
        p.error(f"--reps must be >= 1 and --warmup >= 0, got {args.reps}, {args.warmup}")
    if args.out is not None and args.out.is_dir():
        p.error(f"--out {args.out} is a folder; expected a .json file path")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.allocator == "retain":
        if not cpu_allocator.retain_freed_memory():
            print("error: --allocator retain needs glibc (mallopt)", file=sys.stderr)
            return 2
    device = torch.device(args.device)
    names = list(SUITES) if args.suite == "all" else [args.suite]
    try:  # validate the name filters before measuring anything
        inference.select(args.models, inference.MODELS)
        inference.select(args.operators, inference.OPERATORS)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.suite == "volume" and not volume.select_operators(args.operators):
        print(f"error: --operators {args.operators} has no k-space operator for the volume "
              f"suite; use one of {', '.join(volume.VOLUME_OPERATORS)}", file=sys.stderr)
        return 2
    n = 512 if args.quick else 2048
    ceilings = {"fp32": measure.matmul_ceiling(device, torch.float32, n)}
    ceilings["bf16"] = measure.matmul_ceiling(device, torch.bfloat16, n)
    side = 64 if args.quick else 264
    conv = {k: measure.conv_ceiling(device, dt, 32, side)
            for k, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16))}
    ceilings.update({f"conv_{k}": v["best"] for k, v in conv.items()})
    print(f"matmul ceiling ({n}x{n}): fp32 {ceilings['fp32']:.1f} GFLOP/s, "
          f"bf16 {ceilings['bf16']:.1f} GFLOP/s")
    print(f"conv ceiling (3x3, 32->32, {side}x{side}, best of NCHW/channels-last): fp32 "
          f"{ceilings['conv_fp32']:.1f} GFLOP/s, bf16 {ceilings['conv_bf16']:.1f} GFLOP/s")
    rows = []
    for name in names:
        suite = SUITES[name]
        suite_rows = suite.run(args, device, ceilings)
        print(f"\n== {name} ==")
        print(measure.benchmark_table(suite_rows, suite.COLUMNS))
        rows += suite_rows
    out = args.out or ROOT / "benchmarks" / "results" / (
        f"{args.suite}{'-quick' if args.quick else ''}.json")
    result = {"suite": args.suite, "quick": args.quick, "environment": measure.environment(device),
              "matmul_ceiling_gflops": {k: ceilings[k] for k in ("fp32", "bf16")},
              "conv_ceiling_gflops": conv, "args": {k: (str(v) if isinstance(v, Path) else v)
                                                         for k, v in vars(args).items()},
              "rows": rows}
    print(f"\nwrote {measure.write_json(result, out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
