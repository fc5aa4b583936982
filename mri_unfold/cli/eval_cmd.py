"""``mri-unfold eval CKPT`` — evaluate a checkpoint on image folders (table + CSV)."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ..atomic import PARTIAL_TAG
from ..checkpoints import load_checkpoint
from ..device import resolve_device
from ..errors import UserError
from ..evaluation import evaluate_set, protocol_names, summary_table, write_summary_csv
from ..operators import KSPACE_OPERATOR_KINDS, build_operator
from ..outputs import check_new_folder
from ..training.config import load_protocol

from .common import add_command

NAME = "eval"
HELP = "evaluate a checkpoint (PSNR/SSIM table + CSV)"
DESCRIPTION = ("Evaluate an mri-unfold checkpoint with its stored operator on "
               "the evaluation sets of a protocol or on an image folder.")

EXAMPLES = """examples:
  mri-unfold eval runs/tiny/best.safetensors --images ../shared/data/natural/Set11
  mri-unfold eval ista_net_plus_25.safetensors --protocol protocols/ista_net_plus_cs.toml \\
      --output results/ista_net_plus_25
  mri-unfold eval ista_mri_20.safetensors --images ../shared/data/mri/brain_test --max-images 5
  mri-unfold eval --model ista_net_plus_radial20 --images ../shared/data/mri/brain_test
  mri-unfold eval ista_net_plus_25.safetensors --images Set11 --ratio 0.10   # other matrix
--output DIR gets summary.csv, one folder per set with per-image results and reconstructions."""


def register(sub) -> None:
    p = add_command(sub, NAME, help=HELP, description=DESCRIPTION, examples=EXAMPLES)
    p.add_argument("checkpoint", nargs="?", help="mri-unfold checkpoint (.safetensors) or the "
                                                 "name of a bundled model ('mri-unfold models')")
    p.add_argument("--model", metavar="NAME|CKPT", help="the same as the CHECKPOINT argument")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--protocol", help="protocol .toml: evaluate on its [evaluation] sets")
    src.add_argument("--images", action="append", metavar="DIR",
                     help="image folder to evaluate on (repeatable)")
    p.add_argument("--eval-protocol", choices=protocol_names(),
                   help="with --images: cs_ni (natural images), mri or fastmri (fastMRI .h5 "
                        "folders/files; default: from the checkpoint's operator)")
    p.add_argument("--ratio", type=float,
                   help="block CS: evaluate with the matrix of another ratio (the checkpoint's "
                        "phi kind: authors' files or the seeded Gaussian)")
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                   help="with --protocol: override protocol values")
    p.add_argument("--max-images", type=int, default=0, help="first N images of each set")
    p.add_argument("--output", help="folder for summary.csv, per-image CSVs and reconstructions "
                                    "(must not exist or be empty)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.set_defaults(func=run)


def _sets(args, ck) -> tuple[list[str], str, dict | None]:
    if args.protocol:
        cfg = load_protocol(args.protocol, args.override)
        if cfg["model"]["name"] != ck.arch:
            raise UserError(f"{args.checkpoint}: checkpoint is a {ck.arch!r} model but "
                            f"{args.protocol} is for {cfg['model']['name']!r}")
        ev = cfg["evaluation"]
        if ev["protocol"] == "none" or not ev["sets"]:
            raise UserError(f"{args.protocol}: [evaluation] has no protocol/sets to evaluate")
        return list(ev["sets"]), ev["protocol"], cfg["data"]
    kind = ck.operator_cfg.get("kind", "")
    default = ("fastmri" if kind in KSPACE_OPERATOR_KINDS else "mri" if "coil" in kind
               else "cs_ni")
    if ck.protocol.get("data", {}).get("kind") == "simulated_kspace":
        default = "simulated_kspace"  # the zoo's simulation-trained k-space models
    return list(args.images), args.eval_protocol or default, ck.protocol.get("data")


def run(args) -> int:
    if (args.checkpoint is None) == (args.model is None):
        raise UserError("give the checkpoint (or bundled model name) once: as CHECKPOINT or "
                        "with --model")
    args.checkpoint = args.checkpoint or args.model
    if args.max_images < 0:
        raise UserError(f"--max-images must be >= 0 (0 = all), got {args.max_images}")
    if args.ratio is not None and not 0 < args.ratio <= 1:
        raise UserError(f"--ratio must be in (0, 1], got {args.ratio}")
    if args.output is not None:
        check_new_folder(args.output)
    device = resolve_device(args.device)
    ck = load_checkpoint(args.checkpoint, device=device)
    sets, protocol, data_cfg = _sets(args, ck)
    op = ck.op
    if args.ratio is not None:
        if ck.operator_cfg.get("kind") != "block_cs":
            raise UserError("--ratio applies to block CS checkpoints only")
        op = build_operator(dict(ck.operator_cfg, ratio=args.ratio)).to(device)
    if op is None:
        raise UserError(f"{args.checkpoint}: checkpoint stores no operator")
    for s in sets:
        if not Path(s).is_dir() and not (protocol == "fastmri" and Path(s).is_file()):
            raise FileNotFoundError(f"{s}: evaluation image folder not found")
    out = Path(args.output) if args.output else None
    tmp = None
    if out is not None:  # filled in a temporary folder, renamed into place at the end
        check_new_folder(out)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}{PARTIAL_TAG}", dir=out.parent))
    try:
        results = []
        for s in sets:
            sub = tmp / Path(s).name if tmp is not None else None
            if sub is not None:
                sub.mkdir()
            results.append(evaluate_set(ck.model, op, s, protocol, device,
                                        max_images=args.max_images, out_dir=sub,
                                        data_cfg=data_cfg))
        if tmp is not None:
            write_summary_csv(results, tmp / "summary.csv")
            if out.exists():
                out.rmdir()
            os.replace(tmp, out)
            tmp = None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    print(summary_table(results))
    if out is not None:
        print(f"wrote {out / 'summary.csv'}")
    return 0
