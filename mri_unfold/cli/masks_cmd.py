"""``mri-unfold masks`` — design and compare k-space sampling masks.

For each ``--kind`` the mask is made with :func:`mri_unfold.masks.make_mask` (same shape,
acceleration and seed for all), a table of its statistics is printed (achieved ratio and
acceleration, fully sampled centre, PSF peak-to-side-lobe ratio) and, with ``--output``, a PNG shows
each mask above its point-spread function (dB scale).  ``--save-npy DIR`` writes ``DIR/KIND.npy``
(centred layout, float32 0/1).  All masks are made before anything is written, the files are
written all-or-nothing, and an existing file is replaced only with ``--overwrite``.
"""
from __future__ import annotations

import contextlib
import math
from pathlib import Path

from ..atomic import atomic_outputs
from ..errors import UserError
from ..figures import mask_psf_figure
from ..masks import KINDS, make_mask, mask_stats, save_mask
from ..outputs import output_folder
from ..tables import Column, format_table
from .common import add_command, check_new_outputs

NAME = "masks"

#: kinds whose masks are whole k-space columns (their centre is reported in ACS lines).
COLUMN_KINDS = ("random", "equispaced", "magic")
HELP = "design and compare sampling masks (table + mask/PSF figure)"
DESCRIPTION = ("Make one mask per --kind, print ratio, acceleration, fully "
               "sampled centre and PSF peak-to-side-lobe ratio, and "
               "optionally draw each mask with its point-spread function.")

EXAMPLES = """examples:
  mri-unfold masks --kind radial --kind poisson --shape 256 256 --acceleration 5 --seed 0 \\
      --output masks.png
  mri-unfold masks --kind random --kind equispaced --kind magic --shape 320 368 \\
      --acceleration 4 --center-fraction 0.08 --save-npy masks/"""


def register(sub) -> None:
    p = add_command(sub, NAME, help=HELP, description=DESCRIPTION, examples=EXAMPLES)
    p.add_argument("--kind", action="append", required=True, metavar="KIND",
                   help=f"mask kind, repeatable; one of: {', '.join(KINDS)}")
    p.add_argument("--shape", nargs=2, type=int, required=True, metavar=("H", "W"),
                   help="k-space shape")
    p.add_argument("--acceleration", type=float, metavar="R", help="undersampling factor (>= 1)")
    p.add_argument("--ratio", type=float, metavar="F",
                   help="sampling ratio in (0, 1] instead of --acceleration")
    p.add_argument("--center-fraction", type=float, metavar="F",
                   help="fully sampled centre fraction (default 0.32 / acceleration; not used by "
                        "radial)")
    p.add_argument("--seed", type=int, default=0, help="mask seed (default 0)")
    p.add_argument("--golden-angle", action="store_true", help="radial: golden-angle lines")
    p.add_argument("--output", metavar="PNG", help="write the mask + PSF figure here")
    p.add_argument("--save-npy", metavar="DIR", help="also write DIR/KIND.npy (centred layout; "
                                                    "DIR is created if its parent exists)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing output files (default: refuse them)")
    p.set_defaults(func=run)


def run(args) -> int:
    kinds = list(args.kind)
    dup = sorted({k for k in kinds if kinds.count(k) > 1})
    if dup:
        raise UserError(f"--kind {dup[0]} given more than once")
    if args.output is not None and not args.output.lower().endswith(".png"):
        raise UserError(f"--output {args.output}: expected a .png file name")
    npy_dir = Path(args.save_npy) if args.save_npy else None
    if npy_dir is not None and npy_dir.exists() and not npy_dir.is_dir():
        raise UserError(f"--save-npy {npy_dir}: exists and is not a folder")
    if npy_dir is not None and not npy_dir.parent.is_dir():
        raise UserError(f"--save-npy {npy_dir}: folder {npy_dir.parent} does not exist")
    png = check_new_outputs([args.output] if args.output else [], [], args.overwrite)
    npys = [npy_dir / f"{k}.npy" for k in kinds] if npy_dir is not None else []
    if npy_dir is not None and npy_dir.is_dir():
        check_new_outputs(npys, [], args.overwrite, option="--save-npy")

    results = []
    for kind in kinds:
        opts = {}
        if kind == "radial":
            opts["golden_angle"] = args.golden_angle
        elif args.center_fraction is not None:
            opts["center_fraction"] = args.center_fraction
        res = make_mask(kind, tuple(args.shape), acceleration=args.acceleration,
                        ratio=args.ratio, seed=args.seed, **opts)
        results.append((res, mask_stats(res.mask)))

    print(mask_table(results))
    for res, _ in results:
        note = res.shortfall()
        if note is not None:
            print(f"note: {res.kind}: {note} for a {res.shape[0]}x{res.shape[1]} k-space")
    with (output_folder(npy_dir) if npy_dir is not None else contextlib.nullcontext()), \
            atomic_outputs(npys + png) as tmps:  # all files or none
        for (res, _), tmp in zip(results, tmps[:len(npys)]):
            save_mask(tmp, res.mask)
        if png:
            mask_psf_figure(results, tmps[-1])
    for out in npys + png:
        print(f"wrote {out}")
    return 0


def _centre(res, stats) -> str:
    if res.kind in COLUMN_KINDS:
        return f"{stats['acs_lines']} lines"
    s = stats["center_size"]
    return f"{s}x{s} ({stats['center_points']} pts)"


MASK_COLUMNS = (Column("kind", align="<"), Column("ratio", align="<"),
                Column("accel", align="<"), Column("centre", "ACS lines/points", align="<"),
                Column("psr", "PSF PSR (dB)", align="<"))


def mask_table(results) -> str:
    """Fixed-width table: kind, ratio, acceleration, fully sampled centre, PSF PSR (dB)."""
    rows = [{"kind": res.kind, "ratio": f"{stats['ratio']:.4f}",
             "accel": f"{stats['acceleration']:.3f}", "centre": _centre(res, stats),
             "psr": "inf" if math.isinf(stats["psr_db"]) else f"{stats['psr_db']:.2f}"}
            for res, stats in results]
    return format_table(rows, MASK_COLUMNS, sep="  ")
