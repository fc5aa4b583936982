"""Reproduce the published ISTA-Net / ISTA-Net+ numbers from the authors' released weights.

Usage::

    python -m mri_unfold.evaluation.reproduce                  # the full table
    python -m mri_unfold.evaluation.reproduce --only cs --json table.json
    python -m mri_unfold.evaluation.reproduce --only mri --ratios 20

Rows: CS-NI on Set11 (``phi_0_XX_1089.mat`` + ``Initialization_Matrix_XX.mat``,
:func:`natural_cs.evaluate.evaluate_folder`) for ISTA-Net and ISTA-Net+ at 10/25/30/40 %,
and CS-MRI on the 50 brain slices (``masks/radial_XX.mat``,
:func:`mri_unfold.evaluation.brain_cs.evaluate_brain`) for ISTA-Net+ at 10..50 %.
Each row prints our average PSNR, the published one and the difference (dB).
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from ..atomic import atomic_write_text
from ..models.official import load_official
from ..operators import GaussianBlockCS
from ..shared_data import shared_root
from ..tables import Column, format_table
from .brain_cs import evaluate_brain, radial_mask_operator
from .protocols import evaluate_set

#: Published Set11 average PSNR (dB) of the released checkpoints (ISTA-Net PyTorch README).
PUBLISHED_CS = {
    "ista_net": {10: 26.26, 25: 31.85, 30: 33.09, 40: 35.38},
    "ista_net_plus": {10: 26.49, 25: 32.44, 30: 33.70, 40: 36.02},
}
#: Published brain CS-MRI average PSNR (dB) of ISTA-Net+ (radial masks).
PUBLISHED_MRI = {"ista_net_plus": {10: 34.63, 20: 38.70, 30: 40.97, 40: 42.65, 50: 44.12}}

_CS_DIR = {"ista_net": "CS_ISTA_Net", "ista_net_plus": "CS_ISTA_Net_plus"}


@dataclass
class Row:
    task: str        # "cs" (Set11) or "mri" (brain)
    arch: str
    ratio: int       # percent
    ours: float      # average PSNR (dB)
    ssim: float      # average SSIM
    published: float

    @property
    def diff(self) -> float:
        return self.ours - self.published


def cs_paths(arch: str, ratio: int, root: Path | None = None) -> dict:
    """Files of one CS-NI row: checkpoint, ``phi``, ``Qinit``, Set11 folder."""
    root = Path(root or shared_root())
    ref = root / "reference" / "ista_net_pytorch"
    return dict(
        checkpoint=ref / "model" / f"{_CS_DIR[arch]}_layer_9_group_1_ratio_{ratio}_lr_0.0001" / "net_params_200.pkl",
        phi=ref / "sampling_matrix" / f"phi_0_{ratio}_1089.mat",
        qinit=ref / "sampling_matrix" / f"Initialization_Matrix_{ratio}.mat",
        images=root / "data" / "natural" / "Set11")


def mri_paths(ratio: int, root: Path | None = None) -> dict:
    """Files of one CS-MRI row: checkpoint, radial mask, brain test folder."""
    root = Path(root or shared_root())
    return dict(
        checkpoint=root / "reference" / "ista_net_pytorch" / "model"
        / f"MRI_CS_ISTA_Net_plus_layer_9_group_1_ratio_{ratio}" / "net_params_200.pkl",
        mask=root / "data" / "mri" / "masks" / f"radial_{ratio}.mat",
        images=root / "data" / "mri" / "brain_test")


def reproduce_cs(arch: str, ratio: int, device="cpu", root=None, progress=False) -> Row:
    """Evaluate the released ``arch`` checkpoint on Set11 at ``ratio`` percent (protocol
    ``cs_ni``, registered by the ``natural_cs`` plug-in)."""
    p = cs_paths(arch, ratio, root)
    op = GaussianBlockCS.from_mat_files(p["phi"], p["qinit"])
    model = load_official(p["checkpoint"], arch=arch)
    res = evaluate_set(model, op, p["images"], "cs_ni", device=device, progress=progress)
    return Row("cs", arch, ratio, res["psnr"], res["ssim"], PUBLISHED_CS[arch][ratio])


def reproduce_mri(ratio: int, device="cpu", root=None, progress=False) -> Row:
    """Evaluate the released CS-MRI ISTA-Net+ checkpoint on the brain slices."""
    p = mri_paths(ratio, root)
    model = load_official(p["checkpoint"], arch="ista_net_plus", task="mri")
    res = evaluate_brain(model, radial_mask_operator(p["mask"]), p["images"], device=device,
                         progress=progress)
    return Row("mri", "ista_net_plus", ratio, res["psnr"], res["ssim"],
               PUBLISHED_MRI["ista_net_plus"][ratio])


ROW_COLUMNS = (Column("task", min_width=5, align="<"),
               Column("arch", "model", min_width=14, align="<"),
               Column("percent", "ratio", min_width=5), Column("ours", fmt=".2f", min_width=8),
               Column("published", fmt=".2f", min_width=9),
               Column("diff", fmt="+.2f", min_width=7), Column("ssim", "SSIM", ".4f", 7))


def row_table(rows: list[Row]) -> str:
    """The ours-vs-published table (one line per row after the heading)."""
    return format_table([dict(asdict(r), percent=f"{r.ratio}%", diff=r.diff) for r in rows],
                        ROW_COLUMNS)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mri_unfold.evaluation.reproduce",
                                 description="Reproduce the published ISTA-Net/ISTA-Net+ tables "
                                             "from the authors' released checkpoints.")
    ap.add_argument("--only", choices=("cs", "mri"), help="only the Set11 or the brain table")
    ap.add_argument("--arch", choices=tuple(PUBLISHED_CS), help="only this model (CS table)")
    ap.add_argument("--ratios", type=int, nargs="+", help="only these ratios (percent)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    ap.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                    help="per-image progress bars (default on; --no-progress hides them)")
    args = ap.parse_args(argv)
    jobs = []
    if args.only in (None, "cs"):
        for arch, table in PUBLISHED_CS.items():
            if args.arch in (None, arch):
                jobs += [("cs", arch, r) for r in table if not args.ratios or r in args.ratios]
    if args.only in (None, "mri") and args.arch in (None, "ista_net_plus"):
        jobs += [("mri", "ista_net_plus", r) for r in PUBLISHED_MRI["ista_net_plus"]
                 if not args.ratios or r in args.ratios]
    if not jobs:
        print("reproduce: error: no table row matches the options", file=sys.stderr)
        return 2
    rows = []
    for task, arch, ratio in jobs:
        row = (reproduce_cs(arch, ratio, args.device, progress=args.progress) if task == "cs"
               else reproduce_mri(ratio, args.device, progress=args.progress))
        rows.append(row)
        print(row_table([row]).splitlines()[1] if len(rows) > 1 else row_table([row]), flush=True)
    print()
    print(row_table(rows))
    if args.json:
        payload = [dict(asdict(r), diff=r.diff) for r in rows]
        atomic_write_text(args.json, json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
