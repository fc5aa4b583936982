"""Combining the finished cells of a study — one folder or the folders of its shards — into
its results: ``results.csv``, ``summary.csv``, the figures, ``summary.md`` and
``report.html``.

:func:`finalize` reads each folder's ``study.json``: the folders must hold the same study
(equal fingerprints: same name, data, masks, methods, network and seed) and together every
cell of it, finished.  The output folder must be one of them, new, empty, or a folder of the
same study (:func:`check_study_folder`).  Nothing is written otherwise.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_text
from ..errors import UserError
from ..outputs import FolderState, check_folder, mark_folder, same_file
from .plots import mask_gallery, metric_vs_acceleration, paired_figure, recon_grid
from .report import markdown_summary, write_report
from .results import (HIGHER_IS_BETTER, ROW_COLUMNS, SUMMARY_COLUMNS, paired, read_csv,
                      summarize, winners, write_csv)

__all__ = ["finalize", "collect", "read_record", "comparisons", "check_study_folder"]


def check_study_folder(out: Path, fingerprint: str | None, option: str = "--out") -> None:
    """A study folder must be new, empty, or one of ours (marked, or holding a
    ``study.json`` written before markers existed); when it holds a study already, that
    study's fingerprint must be ``fingerprint`` (None: any).

    Raises:
        UserError naming the folder; nothing in it is changed.
    """
    record = out / "study.json"
    if check_folder(out, "study", option, legacy=record.is_file()) != FolderState.OURS:
        return
    if not record.is_file():  # marked, its record not written yet (shards starting together)
        return
    try:
        old = json.loads(record.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"{record}: unreadable study record ({e})") from e
    if fingerprint is not None and old.get("fingerprint") != fingerprint:
        raise UserError(f"{out}: holds study {old.get('name')!r} (fingerprint "
                        f"{old.get('fingerprint')}), not this one ({fingerprint}); "
                        "choose another output folder")


def read_record(folder) -> dict:
    """A study folder's ``study.json``.

    Raises:
        UserError: no (readable) record.
    """
    path = Path(folder) / "study.json"
    if not path.is_file():
        raise UserError(f"{folder}: not a study folder (no study.json)")
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: unreadable study record ({e})") from e


def collect(dirs) -> tuple[dict, dict[str, Path]]:
    """The common study record and, per cell id, the folder holding it finished.

    Raises:
        UserError: folders of different studies, or cells finished in none of them.
    """
    dirs = [Path(d) for d in dirs]
    records = [read_record(d) for d in dirs]
    first = records[0]
    for d, r in zip(dirs[1:], records[1:]):
        if r.get("fingerprint") != first.get("fingerprint"):
            raise UserError(f"{d} holds study {r.get('name')!r} (fingerprint "
                            f"{r.get('fingerprint')}), {dirs[0]} holds {first.get('name')!r} "
                            f"({first.get('fingerprint')}): shards of different studies "
                            "cannot be merged")
    where, missing = {}, []
    for c in first["cells"]:
        found = [d for d in dirs if (d / "cells" / c["id"] / "cell.json").is_file()
                 and (d / "cells" / c["id"] / "rows.csv").is_file()]
        if found:
            where[c["id"]] = found[0]
        else:
            missing.append(c["id"])
    if missing:
        raise UserError(f"{len(missing)} of {len(first['cells'])} cells are not finished in "
                        f"{', '.join(map(str, dirs))} (e.g. {', '.join(missing[:3])}); run the "
                        "missing shards first")
    return first, where


def _find(dirs, rel: str) -> Path | None:
    for d in dirs:
        if (Path(d) / rel).is_file():
            return Path(d) / rel
    return None


def comparisons(record: dict, summary: list[dict], rows: list[dict]) -> list[tuple[float, dict]]:
    """The paired comparisons of the report: ``report.compare`` (two mask labels) on
    ``report.compare_method`` at every acceleration both have; by default each learned mask
    against the best hand-designed mask of the same acceleration (else the two best
    masks)."""
    rep, cfg = record["protocol"]["report"], record["protocol"]
    metric = rep["metric"]
    method = rep["compare_method"] or cfg["network"]["model"] or cfg["methods"]["classical"][-1]
    sign = 1 if HIGHER_IS_BETTER[metric] else -1
    by_acc: dict[float, list[dict]] = {}
    for s in summary:
        if s["method"] == method:
            by_acc.setdefault(s["acceleration"], []).append(s)
    out = []
    for acc in sorted(by_acc):
        ss = sorted(by_acc[acc], key=lambda s: -sign * s[f"{metric}_mean"])
        cell = {s["mask"]: s["cell"] for s in ss}
        if rep["compare"]:
            pairs = [tuple(rep["compare"])] if all(lbl in cell for lbl in rep["compare"]) else []
        else:
            hand = [s["mask"] for s in ss if s["kind"] != "learned"]
            learned = [s["mask"] for s in ss if s["kind"] == "learned"]
            pairs = ([(hand[0], lbl) for lbl in learned] if hand and learned else
                     [(ss[1]["mask"], ss[0]["mask"])] if len(ss) > 1 else [])
        out += [(acc, paired(rows, cell[a], cell[b], metric) | {"label_a": a, "label_b": b})
                for a, b in pairs]
    return out


def _figures(dirs, out: Path, record: dict, summary, rows, pairs) -> dict[str, Path]:
    figs = out / "figures"
    figs.mkdir(parents=True, exist_ok=True)
    paths = {f"{m}_vs_acceleration": metric_vs_acceleration(
        summary, m, figs / f"{m}_vs_acceleration.png") for m in ("psnr", "ssim")}
    entries = []
    for m in record["masks"]:
        f = _find(dirs, f"masks/{m['id']}.npy")
        if f is not None:
            entries.append((m["label"], m["acceleration"], np.load(f)))
    paths["masks"] = mask_gallery(entries, figs / "masks_psf.png")
    accs = sorted({m["acceleration"] for m in record["masks"]})
    want = record["protocol"]["report"]["grid_acceleration"] or accs[len(accs) // 2]
    acc = min(accs, key=lambda a: abs(a - want))
    target = _find(dirs, "report_target.npy")
    cells = [c for c in record["cells"] if c["mask"].endswith(f"_{acc:g}x")]
    labels = list(dict.fromkeys(s["mask"] for s in summary if s["acceleration"] == acc))
    recons = {}
    for c in cells:
        lbl = next(s["mask"] for s in summary if s["cell"] == c["id"])
        recons[(lbl, c["method"])] = np.load(_find(dirs, f"cells/{c['id']}/recon.npy"))
    methods = list(dict.fromkeys(c["method"] for c in cells))
    k = record["protocol"]["report"]["grid_image"]
    names = record.get("test_images", [])
    paths["grid"] = recon_grid(np.load(target), recons, labels, methods, figs / "recon_grid.png",
                               title=f"{acc:g}x, test image {names[k] if k < len(names) else k}")
    if pairs:
        paths["paired"] = paired_figure(pairs, figs / "paired.png")
    return paths


def _timings(dirs, where: dict[str, Path], record: dict) -> dict:
    total = {"training": 0.0, "sweep": 0.0, "evaluation": 0.0}
    by_family: dict[str, float] = {}
    for c in record["cells"]:
        info = json.loads((where[c["id"]] / "cells" / c["id"] / "cell.json").read_text())
        for k, v in info.get("seconds", {}).items():
            total[k] = total.get(k, 0.0) + float(v)
        by_family[c["family"]] = by_family.get(c["family"], 0.0) + info.get("wall_seconds", 0)
    return {"phases": total, "families": by_family}


def finalize(dirs, out) -> dict[str, Path]:
    """Write the study's results into ``out`` from the folders ``dirs`` (module doc).

    Returns:
        ``{name: path}`` of everything written.
    """
    dirs = [Path(d) for d in dirs]
    out = Path(out)
    if not any(out.exists() and same_file(out, d) for d in dirs):  # before reading anything
        check_study_folder(out, read_record(dirs[0]).get("fingerprint"))
    record, where = collect(dirs)
    mark_folder(out, "study")
    rows = []
    for c in record["cells"]:
        rows += read_csv(where[c["id"]] / "cells" / c["id"] / "rows.csv")
    summary = summarize(rows)
    metric = record["protocol"]["report"]["metric"]
    wins = winners(summary, rows, metric)
    pairs = comparisons(record, summary, rows)
    timings = _timings(dirs, where, record)
    paths = _figures(dirs, out, record, summary, rows, pairs)
    if not any(same_file(out, d) for d in dirs):
        atomic_write_text(out / "study.json", json.dumps(record, indent=1) + "\n")
        shutil.copyfile(dirs[0] / "study.toml", out / "study.toml")
    paths["results"] = write_csv(out / "results.csv", rows, ROW_COLUMNS)
    paths["summary"] = write_csv(out / "summary.csv", summary, SUMMARY_COLUMNS)
    paths["summary_md"] = atomic_write_text(out / "summary.md", markdown_summary(
        record, summary, wins, pairs, timings))
    paths["report"] = write_report(out / "report.html", record, summary, wins, pairs, timings,
                                   {k: v for k, v in paths.items() if v.suffix == ".png"})
    return paths
