"""``mri-unfold plot-log RUN_DIR`` — training/validation curves of a run as PNG."""
from __future__ import annotations

from ..training.plots import plot_run
from .common import add_command

NAME = "plot-log"
HELP = "plot a run's training/validation curves (PNG)"
DESCRIPTION = ("Plot the training loss (per step, with a running mean) and "
               "validation PSNR/SSIM of a run folder's log.jsonl.")

EXAMPLES = """examples:
  mri-unfold plot-log runs/tiny                 # writes runs/tiny/curves.png
  mri-unfold plot-log runs/tiny --output tiny.png"""


def register(sub) -> None:
    p = add_command(sub, NAME, help=HELP, description=DESCRIPTION, examples=EXAMPLES)
    p.add_argument("run_dir", help="run folder holding log.jsonl")
    p.add_argument("--output", help="PNG path (default: RUN_DIR/curves.png)")
    p.set_defaults(func=run)


def run(args) -> int:
    out = plot_run(args.run_dir, args.output)
    print(f"wrote {out}")
    return 0
