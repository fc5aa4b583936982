"""``mri-unfold plot-log RUN_DIR`` — training/validation curves of a run as PNG."""
from __future__ import annotations

import argparse

NAME = "plot-log"

EXAMPLES = """examples:
  mri-unfold plot-log runs/tiny                 # writes runs/tiny/curves.png
  mri-unfold plot-log runs/tiny --output tiny.png"""


def register(sub) -> None:
    p = sub.add_parser(NAME, help="plot a run's training/validation curves (PNG)",
                       description="Plot the training loss (per step, with a running mean) and "
                                   "validation PSNR/SSIM of a run folder's log.jsonl.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", help="run folder holding log.jsonl")
    p.add_argument("--output", help="PNG path (default: RUN_DIR/curves.png)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..training.plots import plot_run

    out = plot_run(args.run_dir, args.output)
    print(f"wrote {out}")
    return 0
