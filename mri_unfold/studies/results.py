"""Results of a study: the per-image rows, the per-cell statistics and paired comparisons.

* rows (``results.csv``): one per test image × cell — the cell, its mask (label, kind,
  requested and achieved acceleration, seed), method, λ, image and the metrics of
  :data:`mri_unfold.studies.evaluate.METRICS`;
* :func:`summarize` (``summary.csv``): per cell, ``n`` and for every metric the mean, the
  sample standard deviation and the 95 % confidence interval of the mean (Student t,
  ``n − 1`` degrees of freedom);
* :func:`paired` — two cells on the same images: the per-image differences, their mean with
  its 95 % CI, and the p-values of the paired t-test and of the Wilcoxon signed-rank test;
* :func:`winners` — per method and acceleration, the best mask, the runner-up and their
  paired difference.
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np
from scipy import stats

from ..atomic import atomic_write_text
from ..errors import DataFileError
from ..metrics import ci95
from .evaluate import METRICS

__all__ = ["ROW_COLUMNS", "SUMMARY_COLUMNS", "write_csv", "read_csv", "ci95", "summarize",
           "paired", "winners", "HIGHER_IS_BETTER"]

ROW_COLUMNS = ("cell", "mask", "kind", "acceleration", "achieved_acceleration",
               "center_fraction", "mask_seed", "method", "family", "seed", "lambda", "image",
               "volume", *METRICS)
_CELL_KEYS = ("cell", "mask", "kind", "acceleration", "achieved_acceleration", "method",
              "family", "lambda")
SUMMARY_COLUMNS = (*_CELL_KEYS, "n", *(f"{m}_{s}" for m in METRICS
                                      for s in ("mean", "std", "ci_low", "ci_high")))
HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "nmse": False, "psnr255": True,
                    "ssim255": True, "nmse255": False}
_TEXT = {"cell", "mask", "kind", "method", "family", "image", "volume"}


def write_csv(path, rows: list[dict], columns) -> Path:
    """Write ``rows`` (every key of ``columns``) to ``path`` atomically, all or nothing."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore",
                       lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else
                        (repr(r[k]) if isinstance(r[k], float) else r[k])) for k in columns})
    return atomic_write_text(path, buf.getvalue())


def read_csv(path) -> list[dict]:
    """Rows of a study CSV; numbers as float (``""`` -> None).

    Raises:
        DataFileError: unreadable file or a header without ``cell``.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataFileError(f"{path}: cannot read study rows ({e})") from e
    if rows and "cell" not in rows[0]:
        raise DataFileError(f"{path}: not a study CSV (no 'cell' column)")
    out = []
    for r in rows:
        out.append({k: (v if k in _TEXT else (None if v == "" else float(v)))
                    for k, v in r.items()})
    return out


def summarize(rows: list[dict]) -> list[dict]:
    """Per cell (in order of first appearance): the cell's keys, ``n`` and the statistics
    of :func:`ci95` of every metric."""
    cells: dict[str, list[dict]] = {}
    for r in rows:
        cells.setdefault(r["cell"], []).append(r)
    out = []
    for cell, rs in cells.items():
        s = {k: rs[0].get(k) for k in _CELL_KEYS}
        s["n"] = len(rs)
        for m in METRICS:
            mean, std, lo, hi = ci95([r[m] for r in rs])
            s.update({f"{m}_mean": mean, f"{m}_std": std, f"{m}_ci_low": lo,
                      f"{m}_ci_high": hi})
        out.append(s)
    return out


def paired(rows: list[dict], cell_a: str, cell_b: str, metric: str = "psnr") -> dict:
    """``b − a`` per image on the images both cells have (matched by name).

    Returns:
        ``{"a", "b", "metric", "n", "diffs" (list), "mean", "ci_low", "ci_high",
        "p_ttest", "p_wilcoxon"}`` (p-values ``nan`` below 2 images or with all differences
        zero).
    """
    a = {r["image"]: r[metric] for r in rows if r["cell"] == cell_a}
    b = {r["image"]: r[metric] for r in rows if r["cell"] == cell_b}
    names = [n for n in a if n in b]
    d = np.array([b[n] - a[n] for n in names], dtype=np.float64)
    mean, _, lo, hi = ci95(d)
    p_t = p_w = math.nan
    if len(d) >= 2 and np.any(d != 0):
        p_t = float(stats.ttest_rel([b[n] for n in names], [a[n] for n in names]).pvalue)
        p_w = float(stats.wilcoxon(d).pvalue)
    return {"a": cell_a, "b": cell_b, "metric": metric, "n": len(d), "diffs": d.tolist(),
            "mean": mean, "ci_low": lo, "ci_high": hi, "p_ttest": p_t, "p_wilcoxon": p_w}


def winners(summary: list[dict], rows: list[dict], metric: str = "psnr") -> list[dict]:
    """Per method and requested acceleration (2+ masks): the best mask by the mean of
    ``metric``, the runner-up, and the paired difference best − runner-up (:func:`paired`)."""
    sign = 1 if HIGHER_IS_BETTER[metric] else -1
    groups: dict[tuple, list[dict]] = {}
    for s in summary:
        groups.setdefault((s["method"], s["acceleration"]), []).append(s)
    out = []
    for (method, acc), ss in groups.items():
        if len(ss) < 2:
            continue
        ranked = sorted(ss, key=lambda s: -sign * s[f"{metric}_mean"])
        best, second = ranked[0], ranked[1]
        p = paired(rows, second["cell"], best["cell"], metric)
        out.append({"method": method, "acceleration": acc, "best": best["mask"],
                    "best_mean": best[f"{metric}_mean"], "best_ci_low": best[f"{metric}_ci_low"],
                    "best_ci_high": best[f"{metric}_ci_high"], "runner_up": second["mask"],
                    "runner_up_mean": second[f"{metric}_mean"], "diff": p["mean"],
                    "diff_ci_low": p["ci_low"], "diff_ci_high": p["ci_high"],
                    "p_ttest": p["p_ttest"], "p_wilcoxon": p["p_wilcoxon"], "n": p["n"]})
    return out
