"""Is the gap between our radial ISTA-Net+ and the authors' release a training-data gap?

The authors trained their CS-MRI ISTA-Net+ on 100 *brain* slices that ``../shared`` does not
have; our zoo models are trained on the 100 *chest* slices.  This script scores, on the same
held-out brain slices and with the authors' radial mask of the ratio:

* the authors' released weights (200 epochs on their brain training set);
* a bundled zoo model (chest-trained), and the authors' release with that model's own
  (training) mask instead of theirs, which measures what the mask mismatch costs;
* any number of extra checkpoints, e.g. the zoo model fine-tuned on the *other* brain_test
  slices (a diagnostic only: such a model has seen brain_test and is never shipped).

Prints a table and writes JSON (``--json``).  The held-out slices are the first ``--holdout``
of ``brain_test`` in sorted order (``brain_test_01`` … ``_10`` by default), the same head that
training runs validate on (``evaluation.max_images``).  How to make the in-domain diagnostic
checkpoint is in docs/models.md ("Where the gap to the authors comes from")::

    python benchmarks/domain_gap.py --ratio 20 --zoo ista_net_plus_radial20 \\
        --checkpoint in-domain=runs/diag/brain_indomain20/last.safetensors --json gap.json --png gap.png
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mri_unfold.atomic import atomic_write_text
from mri_unfold.checkpoints import load_checkpoint
from mri_unfold.errors import UserError
from mri_unfold.evaluation.brain_cs import evaluate_brain, radial_mask_operator
from mri_unfold.evaluation.reproduce import PUBLISHED_MRI, mri_paths
from mri_unfold.figures import line_plot
from mri_unfold.models.official import load_official
from mri_unfold.models.zoo import pretrained
from mri_unfold.tables import Column, format_table

COLUMNS = (Column("model", min_width=48, align="<"), Column("trained_on", "trained on",
                                                            min_width=24, align="<"),
           Column("psnr", "PSNR", ".2f", 7), Column("ssim", "SSIM", ".4f", 7),
           Column("gap", "vs authors", "+.2f", 10))


def score_rows(ratio: int, holdout: int, zoo: list[str], checkpoints: list[str],
               device: str = "cpu") -> list[dict]:
    """One row per model: mean PSNR / SSIM on the first ``holdout`` brain_test slices with
    the authors' ``radial_<ratio>.mat`` (the rows "authors' release, <zoo>'s mask": that zoo
    model's mask); ``gap`` is PSNR minus the authors' release's."""
    if holdout < 1:
        raise SystemExit(f"--holdout {holdout}: expected at least 1 slice")
    paths = mri_paths(ratio)
    op = radial_mask_operator(paths["mask"])
    authors = load_official(paths["checkpoint"], arch="ista_net_plus", task="mri")
    models = [("authors' release", "authors' 100 brain slices", authors, op)]
    for name in zoo:
        p = pretrained(name)
        if p.card["task"] != "cs_mri_real":
            raise SystemExit(f"--zoo {name}: a {p.card['task']!r} model; expected a real-valued "
                             "radial CS-MRI model (task 'cs_mri_real', `mri-unfold models`)")
        models += [(name, p.card["protocol"], p.model, op),
                   (f"authors' release, {name}'s mask", "authors' 100 brain slices", authors,
                    p.operator)]
    for spec in checkpoints:
        label, sep, path = spec.partition("=")
        if not sep:
            raise SystemExit(f"--checkpoint {spec!r}: expected LABEL=PATH")
        models.append((label, str(path), load_checkpoint(path).model, op))
    rows = []
    for label, trained_on, model, mask_op in models:
        res = evaluate_brain(model, mask_op, paths["images"], device=device, progress=False,
                             limit=holdout)
        rows.append(dict(model=label, trained_on=trained_on, psnr=res["psnr"],
                         ssim=res["ssim"], images=len(res["images"]),
                         per_image=[r["psnr"] for r in res["images"]]))
    for r in rows:
        r["gap"] = r["psnr"] - rows[0]["psnr"]
    return rows


def plot(rows: list[dict], out: str | Path, title: str) -> Path:
    """Per-slice PSNR of every row (one line per model) as a PNG; returns its path."""
    return line_plot([(f"{r['model']} ({r['psnr']:.2f} dB)", range(1, len(r["per_image"]) + 1),
                       r["per_image"]) for r in rows], out, xlabel="brain_test slice",
                     ylabel="PSNR (dB, 255 scale)", title=title)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ratio", type=int, default=20, choices=tuple(PUBLISHED_MRI["ista_net_plus"]))
    ap.add_argument("--holdout", type=int, default=10,
                    help="score the first N brain_test slices (default 10)")
    ap.add_argument("--zoo", nargs="*", default=[], help="bundled model names")
    ap.add_argument("--checkpoint", action="append", default=[], metavar="LABEL=PATH")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", type=Path, help="write the rows here")
    ap.add_argument("--png", type=Path, help="draw the per-slice PSNRs here")
    a = ap.parse_args(argv)
    try:
        rows = score_rows(a.ratio, a.holdout, a.zoo, a.checkpoint, a.device)
    except (UserError, FileNotFoundError, ValueError) as e:
        raise SystemExit(f"domain_gap: {e}") from None
    print(f"brain_test slices 1-{a.holdout}, authors' radial_{a.ratio}.mat")
    print(format_table(rows, COLUMNS))
    if a.json:
        atomic_write_text(a.json, json.dumps({"ratio": a.ratio, "holdout": a.holdout,
                                              "rows": rows}, indent=1) + "\n")
    if a.png:
        print(plot(rows, a.png, f"held-out brain_test 1-{a.holdout}, authors' radial_{a.ratio}"
                                f".mat"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
