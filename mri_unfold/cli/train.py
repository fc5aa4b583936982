"""``mri-unfold train PROTOCOL`` — train from an experiment file (also under torchrun)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ..errors import UserError
from ..training.config import apply_overrides, diff_configs, load_protocol, validate_protocol
from ..training.loop import STATE_FILE, train
from ..training.state import load_train_state
from .common import add_command

NAME = "train"
HELP = "train a model from a protocol (TOML experiment file)"
DESCRIPTION = ("Train a model from a protocol: data, operator, model, "
               "training and evaluation settings in one TOML file.")

EXAMPLES = """examples:
  mri-unfold train protocols/tiny.toml
  mri-unfold train protocols/ista_net_plus_cs.toml --override operator.ratio=0.10 \\
      --run-dir runs/ista_net_plus_10
  mri-unfold train protocols/madun_cs.toml --run-dir runs/madun_25 --resume
  torchrun --nproc-per-node=4 -m mri_unfold train protocols/madun_cs.toml --run-dir runs/m
The run folder gets protocol.toml, last/best .safetensors checkpoints, last.state.pt
(resume), log.csv and log.jsonl; plot them with 'mri-unfold plot-log RUN_DIR'."""


def register(sub) -> None:
    p = add_command(sub, NAME, help=HELP, description=DESCRIPTION, examples=EXAMPLES)
    p.add_argument("protocol", help="protocol .toml file (see docs/protocols.md)")
    p.add_argument("--run-dir", help="output folder (default: runs/<protocol name>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --run-dir from its last checkpoint")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:N")
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                   help="set a protocol value, dotted key and TOML value, e.g. "
                        "training.lr=1e-3 (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def resumed_protocol(run_dir: Path, overrides: list[str], file_cfg: dict) -> dict:
    """The configuration of a resumed run: the one stored in its training state, with only this
    command's ``--override`` values applied (the protocol file's values are not re-applied;
    a note lists where the file differs)."""
    stored = json.loads(load_train_state(run_dir / STATE_FILE).get("protocol_json") or "{}")
    if not stored:
        raise UserError(f"{run_dir / STATE_FILE}: the training state stores no protocol")
    cfg = validate_protocol(apply_overrides(stored, overrides), source=str(run_dir / STATE_FILE))
    ignored = [k for k in diff_configs(stored, file_cfg) if not k.startswith("name")]
    if ignored:
        print(f"mri-unfold: note: resuming with the run's stored settings; the protocol file "
              f"differs in {', '.join(ignored)} (use --override to change a setting)",
              file=sys.stderr)
    return cfg


def run(args) -> int:
    cfg = load_protocol(args.protocol, args.override)
    run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / cfg["name"]
    if args.resume:
        cfg = resumed_protocol(run_dir, args.override, cfg)
    res = train(cfg, run_dir, device=args.device, resume=args.resume,
                progress=False if args.no_progress else None)
    if int(os.environ.get("RANK", "0")) == 0:
        losses = res["losses"]
        first = f"{losses[0]:.5g}" if losses else "-"
        last = f"{losses[-1]:.5g}" if losses else "-"
        best = f", best validation {res['best']:.4f}" if res["best"] > float("-inf") else ""
        print(f"trained {cfg['name']}: step {res['step']}, epoch {res['epoch']}, loss {first} -> "
              f"{last}{best}; run folder {run_dir}", file=sys.stdout)
    return 0
