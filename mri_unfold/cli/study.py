"""``mri-unfold study`` — mask-design studies: masks × accelerations × methods on a data set.

Two forms:

* ``mri-unfold study STUDY.toml [--out DIR] [--shard K/N]`` runs the study's unfinished
  cells (all, or shard K of N) in the study folder; when every cell is finished it writes
  ``results.csv``, ``summary.csv``, the figures, ``summary.md`` and ``report.html``;
* ``mri-unfold study merge DIR [DIR ...] [--out OUT]`` combines the folders of a study's
  shards (or one folder) into those results.
"""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import UserError
from ..studies import finalize, load_study, parse_shard, run_study
from .common import add_command

NAME = "study"
HELP = "run a mask-design study (masks x accelerations x methods) or merge its shards"
DESCRIPTION = ("Run a study protocol (TOML): every mask x method cell on the test images, "
               "networks trained per mask, learned masks, statistics, figures and a report. "
               "'mri-unfold study merge DIR...' combines the folders of its shards.")
EXAMPLES = """examples:
  mri-unfold study protocols/study_brain_masks.toml --out studies/brain_masks
  mri-unfold study protocols/study_brain_masks.toml --out studies/brain --shard 2/4  # job array
  mri-unfold study merge studies/brain --out studies/brain_merged
Finished cells are skipped, so rerunning a command resumes it; see docs/mask_design.md."""


def register(sub) -> None:
    p = add_command(sub, NAME, help=HELP, description=DESCRIPTION, examples=EXAMPLES)
    p.usage = ("mri-unfold study STUDY.toml [--out DIR] [--shard K/N] [options]\n"
               "       mri-unfold study merge DIR [DIR ...] [--out OUT]")
    p.add_argument("target", nargs="+", metavar="ARG",
                   help="a study protocol (.toml), or 'merge' followed by study folders")
    p.add_argument("--out", metavar="DIR",
                   help="study folder (default studies/<name>); with merge: where the "
                        "results go (default the first DIR)")
    p.add_argument("--shard", metavar="K/N", help="run only shard K of N (1-based)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N")
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                   help="set a study value, dotted key and TOML value (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def _shard(spec: str | None) -> tuple[int, int]:
    if spec is None:
        return 1, 1
    try:
        return parse_shard(spec)
    except UserError as e:
        raise UserError(f"--shard {e}") from e


def run(args) -> int:
    if args.target[0] == "merge":
        dirs = args.target[1:]
        if not dirs:
            raise UserError("study merge: give the study folders to merge")
        if args.shard or args.override:
            raise UserError("study merge takes folders and --out only")
        out = Path(args.out or dirs[0])
        paths = finalize(dirs, out)
        print(f"merged {len(dirs)} folder(s) into {out}: {paths['report']}")
        return 0
    if len(args.target) != 1:
        raise UserError(f"study: give one protocol file (got {len(args.target)}: "
                        f"{' '.join(args.target)}); to combine shards: study merge DIR...")
    shard = _shard(args.shard)
    cfg = load_study(args.target[0], args.override)
    out = Path(args.out or Path("studies") / cfg["name"])
    res = run_study(cfg, out, shard=shard, device=args.device,
                    progress=not args.no_progress)
    print(f"study {cfg['name']} shard {shard[0]}/{shard[1]}: {len(res['ran'])} cells run, "
          f"{len(res['skipped'])} already finished, of {res['cells']}; folder {out}")
    if res["complete"]:
        print(f"all cells finished: {res['outputs']['report']}")
    elif shard != (1, 1):
        print(f"when every shard has finished: mri-unfold study merge {out} [more shard "
              "folders]", file=sys.stderr)
    return 0
