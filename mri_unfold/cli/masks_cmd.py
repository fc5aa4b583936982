"""``mri-unfold masks`` — design and compare k-space sampling masks.

For each ``--kind`` the mask is made with :func:`mri_unfold.masks.make_mask` (same shape,
acceleration and seed for all), a table of its statistics is printed (achieved ratio and
acceleration, fully sampled centre, PSF peak-to-side-lobe ratio) and, with ``--output``, a PNG shows
each mask above its point-spread function (dB scale).  ``--save-npy DIR`` writes ``DIR/KIND.npy``
(centred layout, float32 0/1).  All masks are made before anything is written, the files are
written all-or-nothing, and an existing file is replaced only with ``--overwrite``.

ky–kz masks of 3-D scans (``--acs KY KZ``, with ``--elliptical``, ``--partial-fourier F`` and
the kind ``caipi``): :func:`mri_unfold.masks.kykz.make_kykz_mask` on ``--shape KY KZ``.
"""
from __future__ import annotations

import contextlib
import math
from pathlib import Path

from ..atomic import atomic_outputs
from ..errors import UserError
from ..figures import mask_psf_figure
from ..masks import KINDS, make_mask, mask_stats, save_mask
from ..masks.kykz import KYKZ_KINDS, make_kykz_mask
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
      --acceleration 4 --center-fraction 0.08 --save-npy masks/
  mri-unfold masks --kind poisson --kind caipi --shape 233 189 --acs 24 24 --elliptical \\
      --acceleration 8 --output kykz.png"""


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
    p.add_argument("--acs", nargs=2, type=int, metavar=("KY", "KZ"),
                   help="ky-kz masks of 3-D scans (--shape KY KZ) with this fully sampled "
                        f"ACS block; kinds {', '.join(KYKZ_KINDS)}")
    p.add_argument("--elliptical", action="store_true",
                   help="ky-kz masks: elliptical scanning (no samples outside the ellipse)")
    p.add_argument("--partial-fourier", type=float, default=1.0, metavar="F",
                   help="ky-kz masks: fraction of kz acquired, 0.5..1 (default 1)")
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
    kykz = args.acs is not None or args.elliptical or args.partial_fourier != 1.0
    for kind in kinds:
        if kykz or kind == "caipi":
            results.append(_kykz(args, kind))
            continue
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


def _kykz(args, kind: str):
    """``(MaskResult, stats)`` of a ky–kz mask (``--acs``, default 24 x 24)."""
    if args.acceleration is None or args.ratio is not None:
        raise UserError("ky-kz masks (--acs, --elliptical, --partial-fourier, caipi) take "
                        "--acceleration R, not --ratio")
    if args.center_fraction is not None:
        raise UserError("ky-kz masks set their fully sampled block with --acs KY KZ, not "
                        "--center-fraction")
    res = make_kykz_mask(kind, tuple(args.shape), acceleration=args.acceleration,
                         acs=tuple(args.acs or (24, 24)), elliptical=args.elliptical,
                         partial_fourier=args.partial_fourier, seed=args.seed)
    return res, mask_stats(res.mask)


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
