"""``mri-unfold plot-log RUN_DIR`` — training/validation curves of a run as PNG."""
from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from ..training.plots import plot_run
from .common import add_command, check_new_outputs

NAME = "plot-log"
HELP = "plot a run's training/validation curves (PNG)"
DESCRIPTION = ("Plot the training loss (per step, with a running mean) and "
               "validation PSNR/SSIM of a run folder's log.jsonl.")

EXAMPLES = """examples:
  mri-unfold plot-log runs/tiny                 # writes runs/tiny/curves.png
  mri-unfold plot-log runs/tiny --output tiny.png
  mri-unfold plot-log runs/tiny --overwrite     # redraw runs/tiny/curves.png"""


def register(sub) -> None:
    p = add_command(sub, NAME, help=HELP, description=DESCRIPTION, examples=EXAMPLES)
    p.add_argument("run_dir", help="run folder holding log.jsonl")
    p.add_argument("--output", help="PNG path (default: RUN_DIR/curves.png); never a file of "
                                    "the run's log, never an existing file without --overwrite")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output PNG")
    p.set_defaults(func=run)


def run(args) -> int:
    run_dir = Path(args.run_dir)
    output = args.output if args.output is not None else str(run_dir / "curves.png")
    if not output.lower().endswith(".png"):
        raise UserError(f"--output {output}: must end with .png")
    if run_dir.is_dir():
        check_new_outputs([output], [run_dir / "log.jsonl", run_dir / "log.csv"],
                          args.overwrite)
    out = plot_run(run_dir, output)
    print(f"wrote {out}")
    return 0
