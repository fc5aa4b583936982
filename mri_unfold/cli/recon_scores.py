"""``recon``'s scores and sampling report: ``--reference`` (what the reconstruction is
scored against), ``--metrics FILE`` (the scores written as JSON or CSV with the images) and
the printed sampling line (how much was sampled, the mask seed and how to reproduce it).

A fully sampled k-space input undersampled with ``--mask``/``--mask-file`` is scored
against its own fully sampled image: RSS by default, ``--reference sense`` for CG-SENSE with
ESPIRiT maps, ``--reference FILE`` for a given image
(:mod:`mri_unfold.reconstruct.reference`).  Image inputs (NIfTI, DICOM) are their own
reference; ``--reference FILE`` replaces it.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from ..errors import UserError
from ..masks.result import ACCELERATION_TOLERANCE
from ..reconstruct import REFERENCES, read_reference_file, score_result
from .common import check_new_outputs

__all__ = ["add_score_options", "reference_of", "metrics_outputs", "write_metrics",
           "score_given_image", "sampling_line", "metric_rows", "metrics_text"]


def add_score_options(p) -> None:
    """``--reference rss|sense|FILE`` and ``--metrics FILE``."""
    g = p.add_argument_group("scores")
    g.add_argument("--reference", metavar="rss|sense|FILE",
                   help="what the result is scored against (PSNR/SSIM/NMSE). A fully sampled "
                        "k-space input undersampled with --mask/--mask-file: its fully "
                        "sampled image, rss (default: root sum of squares) or sense (CG-SENSE "
                        "with ESPIRiT maps); or an image FILE (.npy, .nii/.nii.gz, .h5 with a "
                        "'reconstruction' dataset) of the output's shape, for any input")
    g.add_argument("--metrics", metavar="FILE",
                   help="also write the scores to FILE (.json or .csv), with the images "
                        "(all or nothing)")


def reference_of(args, kind: str, image_kinds: tuple[str, ...]):
    """The ``reference`` argument of the pipeline: ``"auto"`` without ``--reference``,
    ``"rss"``/``"sense"``, or a :class:`~pathlib.Path`.

    Raises:
        UserError: ``rss``/``sense`` for an image input (no k-space to reconstruct fully).
    """
    ref = args.reference
    if ref is None:
        return "auto"
    if ref in REFERENCES:
        if kind in image_kinds:
            raise UserError(f"--reference {ref}: a fully sampled {ref.upper()} reference needs "
                            f"a k-space input; this {kind} input is its own reference (or give "
                            "--reference FILE)")
        return ref
    path = Path(ref)
    if not path.is_file():
        raise UserError(f"--reference {ref}: expected rss, sense or an existing image file")
    return path


def metrics_outputs(args, inputs: list) -> list[Path]:
    """``[--metrics FILE]`` checked as a new output (never an input), or ``[]``."""
    if not args.metrics:
        return []
    if not args.metrics.lower().endswith((".json", ".csv")):
        raise UserError(f"--metrics {args.metrics}: expected a .json or .csv file")
    return check_new_outputs([args.metrics], inputs, args.overwrite, "--metrics")


def score_given_image(res, reference, kind: str):
    """``res`` scored against ``--reference FILE`` for image inputs (k-space inputs are
    scored inside the pipeline)."""
    if isinstance(reference, Path):
        ref = read_reference_file(reference, res.reconstruction.shape)
        return score_result(res, ref, str(reference))
    return res


def metric_rows(res, label: str) -> list[dict]:
    """A row per method: ``label``'s scores, then the zero-filled image's (once)."""
    rows = [{"method": label, **res.metrics["network"]}]
    if label != "zero-filled":
        rows.append({"method": "zero-filled", **res.metrics["zero-filled"]})
    return rows


def metrics_text(rows: list[dict], path, header: dict) -> str:
    """``rows`` as CSV (``path`` ending in ``.csv``) or as JSON ``{**header, "rows": rows}``."""
    if str(path).lower().endswith(".csv"):
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        return buf.getvalue()
    return json.dumps({**header, "rows": rows}, indent=1) + "\n"


def write_metrics(path: Path, res, label: str, src) -> None:
    """The scores of ``res`` (a row per method) to ``path`` (a temporary file keeping the
    output's suffix: .json with the reference and the sampling, or .csv); without a
    reference, a one-line error (nothing written)."""
    if not res.metrics:
        raise UserError(f"--metrics {path}: there is no reference to score against (the input "
                        "is undersampled and has no fully sampled image; give --reference "
                        "FILE); nothing was written")
    info = res.info
    header = {"input": str(src), "reference": info.get("reference") or
              "the input's own reference image", "slices": info.get("slices"),
              "sampled_fraction": info.get("sampled_fraction"), "mask_seed": info.get("mask_seed")}
    Path(path).write_text(metrics_text(metric_rows(res, label), path, header))


def sampling_line(info: dict, args) -> str:
    """``"sampled fraction 0.250, mask seed 0 (...; reproduce with ...)"``; non-Cartesian:
    the Cartesian cells hit, and spokes and acceleration for radial k-space."""
    traj = info.get("trajectory")
    if traj is not None:
        text = (f"{traj['samples']} {traj['kind']} samples hitting "
                f"{info['sampled_fraction']:.3f} of the Cartesian k-space cells")
        if traj.get("spokes"):
            text += (f", {traj['spokes']} spokes: acceleration {traj['acceleration']:.2f} "
                     f"(Nyquist: {traj['nyquist_spokes']:.0f} spokes)")
        return text
    text = f"sampled fraction {info['sampled_fraction']:.3f}"
    frac, asked = info["sampled_fraction"], getattr(args, "acceleration", None)
    if getattr(args, "mask", None) and asked and frac > 0 and \
            abs(1 / frac / asked - 1) > ACCELERATION_TOLERANCE:
        text += f" (asked for {asked:g}x, achieved {1 / frac:.1f}x)"
    if info.get("mask_seed") is None:
        return text
    source = info.get("mask_seed_source") or "given"
    again = ""
    if getattr(args, "mask", None):
        again = (f"; reproduce with --mask {args.mask} --acceleration {args.acceleration:g}"
                 f"{'' if args.center_fraction is None else f' --center-fraction {args.center_fraction:g}'}"
                 f" --seed {info['mask_seed']}")
    return f"{text}, mask seed {info['mask_seed']} ({source}{again})"
