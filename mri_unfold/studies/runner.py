"""Running a study (or one shard of it) in a study folder, resumably.

:func:`prepare_study` checks everything before anything is written — the data sets, every
generated and file mask (shape, reachable acceleration), the learned masks' budgets, the
checkpoints and the network — so bad input leaves no folder behind.  :func:`run_study` then
writes::

    OUT/study.json           name, fingerprint, settings, masks and cells (shards must agree)
    OUT/study.toml           the resolved settings
    OUT/masks/<mask id>.npy  every mask (binary, centred); learned ones when trained
    OUT/cells/<cell id>/     rows.csv (this cell's rows), recon.npy (the report image's
                             reconstruction), cell.json (seeds, λ sweep, seconds, steps;
                             written last: a cell is finished when it exists), run/ (a
                             trained cell's engine run folder and checkpoints)

Finished cells are skipped; an interrupted cell runs again (a trained cell resumes its run
folder) and its rows are replaced as a whole — there are never partial rows.  When every
cell of the study is finished, :func:`mri_unfold.studies.finalize.finalize` writes the
results, summary, figures and report.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..atomic import atomic_output, atomic_write_text
from ..checkpoints import load_checkpoint
from ..errors import UserError
from ..masks import save_mask
from ..models import build
from ..operators import LearnedMaskFourier
from ..outputs import mark_folder
from ..training.config import to_toml
from .cells import CHECKPOINT, CLASSICAL, NETWORK, Cell, StudyMask, plan_cells, plan_masks
from .cells import shard_cells
from .data import StudyData, open_study_data
from .evaluate import score
from .finalize import check_study_folder, finalize
from .masks import file_accelerations, make_study_mask, mask_path
from .protocol import fingerprint
from .results import ROW_COLUMNS, write_csv
from .work import run_checkpoint, run_classical, run_network

__all__ = ["StudyPlan", "prepare_study", "run_study", "cell_dir", "cell_done"]


@dataclass
class StudyPlan:
    """A checked study: settings, data, masks (hand-designed ones made), cells."""

    cfg: dict
    data: StudyData
    masks: list[StudyMask]
    arrays: dict[str, np.ndarray]
    cells: list[Cell]
    fingerprint: str

    def record(self) -> dict:
        """``study.json``: what shards and merges check and the report shows."""
        return {"name": self.cfg["name"], "fingerprint": self.fingerprint,
                "shape": list(self.data.shape), "test_images": self.data.test_names,
                "masks": [vars(m) | {"id": m.id} for m in self.masks],
                "cells": [{"id": c.id, "mask": c.mask.id, "method": c.method,
                           "family": c.family} for c in self.cells],
                "protocol": self.cfg}


def _check_network(cfg: dict, masks: list[StudyMask], shape) -> None:
    net = cfg["network"]
    if not net["model"]:
        return
    try:
        build(net["model"], **net["config"])
    except (ValueError, TypeError) as e:
        raise UserError(f"network: {e}") from e
    if net["init_from"] and not Path(net["init_from"]).is_file():
        raise FileNotFoundError(f"{net['init_from']}: network.init_from checkpoint not found")
    for m in masks:
        if m.learned:
            LearnedMaskFourier(shape, 1.0 / m.acceleration, dims=m.dims,
                               center_fraction=m.center_fraction,
                               acs=tuple(cfg["masks"]["acs"]) or None)


def prepare_study(cfg: dict) -> StudyPlan:
    """Open the data, make and check every mask, plan the cells (module doc).

    Raises:
        UserError / FileNotFoundError: any bad input, before anything is written.
    """
    needs_val = any(c != "zero-filled" for c in cfg["methods"]["classical"])
    data = open_study_data(cfg["data"], need_train=bool(cfg["network"]["model"]),
                           need_val=needs_val, seed=cfg["seed"])
    masks = plan_masks(cfg["masks"], file_accelerations(cfg["masks"], data.shape))
    arrays = {m.id: make_study_mask(m, data.shape, cfg["masks"]) for m in masks
              if not m.learned}
    for path in cfg["methods"]["checkpoints"]:
        load_checkpoint(path)
    _check_network(cfg, masks, data.shape)
    cells = plan_cells(masks, cfg)
    _check_report(cfg, masks, cells, len(data.test))
    return StudyPlan(cfg, data, masks, arrays, cells, fingerprint(cfg))


def _check_report(cfg: dict, masks: list[StudyMask], cells: list[Cell], n_test: int) -> None:
    """``report`` names a test image, masks and a method the study has."""
    rep, where = cfg["report"], f"study {cfg['name']!r}"
    if not rep["grid_image"] < n_test:
        raise UserError(f"{where}: report.grid_image = {rep['grid_image']} must be in "
                        f"0..{n_test - 1} (the study has {n_test} test images)")
    labels = sorted({m.label for m in masks})
    for label in rep["compare"]:
        if label not in labels:
            raise UserError(f"{where}: report.compare names {label!r}, not a mask of this "
                            f"study; its masks: {', '.join(labels)}")
    methods = sorted({c.method for c in cells})
    if rep["compare_method"] and rep["compare_method"] not in methods:
        raise UserError(f"{where}: report.compare_method = {rep['compare_method']!r} is not a "
                        f"method of this study; its methods: {', '.join(methods)}")


def cell_dir(out_dir, cell: Cell) -> Path:
    return Path(out_dir) / "cells" / cell.id


def cell_done(out_dir, cell: Cell) -> bool:
    """Whether a cell is finished (its ``cell.json`` and ``rows.csv`` exist)."""
    d = cell_dir(out_dir, cell)
    return (d / "cell.json").is_file() and (d / "rows.csv").is_file()


def _open_folder(out: Path, plan: StudyPlan) -> None:
    record = out / "study.json"
    check_study_folder(out, plan.fingerprint)
    mark_folder(out, "study")   # the record first: shards may start together
    atomic_write_text(record, json.dumps(plan.record(), indent=1, default=str) + "\n")
    (out / "masks").mkdir(exist_ok=True)
    (out / "cells").mkdir(exist_ok=True)
    atomic_write_text(out / "study.toml", to_toml(plan.cfg))
    for m in plan.masks:
        if not m.learned:
            save_mask(mask_path(out, m), plan.arrays[m.id])
    k = min(max(plan.cfg["report"]["grid_image"], 0), len(plan.data.test) - 1)
    with atomic_output(out / "report_target.npy") as tmp, open(tmp, "wb") as f:
        np.save(f, plan.data.test[k, 0].abs().numpy().astype(np.float32))


def _rows(plan: StudyPlan, cell: Cell, mask: np.ndarray, recons, info: dict) -> list[dict]:
    m = cell.mask
    base = {"cell": cell.id, "mask": m.label, "kind": m.kind, "acceleration": m.acceleration,
            "achieved_acceleration": float(mask.size / mask.sum()),
            "center_fraction": m.center_fraction, "mask_seed": m.seed, "method": cell.method,
            "family": cell.family, "seed": plan.cfg["seed"], "lambda": info.get("lambda")}
    metrics = score(plan.data.test, recons, plan.data.test_volumes)
    return [base | {"image": n, "volume": v} | s for n, v, s in
            zip(plan.data.test_names, plan.data.test_volumes, metrics)]


def _run_cell(plan: StudyPlan, cell: Cell, out: Path, device, progress: bool) -> dict:
    d = cell_dir(out, cell)
    d.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    file = mask_path(out, cell.mask)       # a hand-designed mask's, or the learned export
    if cell.family == NETWORK:
        rec, info = run_network(cell, None if cell.mask.learned else file, file, plan.data,
                                plan.cfg, d / "run", device=device, progress=progress)
        mask = np.load(file)
    else:
        if cell.mask.learned:
            if not file.is_file():
                raise UserError(f"{cell.id}: the learned mask {file} is missing; its "
                                "network cell runs first in the same shard")
            mask = np.load(file)
        else:
            mask = plan.arrays[cell.mask.id]
        run = run_classical if cell.family == CLASSICAL else run_checkpoint
        kw = {"device": device} if cell.family == CHECKPOINT else {}
        rec, info = run(cell, mask, plan.data, plan.cfg, progress=progress, **kw)
    rows = _rows(plan, cell, mask, rec, info)
    write_csv(d / "rows.csv", rows, ROW_COLUMNS)
    k = min(max(plan.cfg["report"]["grid_image"], 0), len(rec) - 1)
    with atomic_output(d / "recon.npy") as tmp, open(tmp, "wb") as f:
        np.save(f, rec[k].numpy().astype(np.float32))
    info |= {"cell": cell.id, "mask": vars(cell.mask), "method": cell.method,
             "family": cell.family, "study_seed": plan.cfg["seed"],
             "mask_seed": cell.mask.seed, "wall_seconds": time.perf_counter() - t0,
             "images": len(rows), "torch_threads": torch.get_num_threads()}
    atomic_write_text(d / "cell.json", json.dumps(info, indent=1, default=str) + "\n")
    return info


def run_study(cfg: dict, out_dir, *, shard: tuple[int, int] = (1, 1), device="cpu",
              progress: bool = True, finalize_when_done: bool = True) -> dict:
    """Run this shard's unfinished cells of a study in ``out_dir`` (module doc).

    Returns:
        ``{"cells": n of this shard, "ran": [ids], "skipped": [ids], "complete": all cells
        of the study finished, "outputs": finalize's paths or {}}``.
    """
    plan = prepare_study(cfg)
    out = Path(out_dir)
    _open_folder(out, plan)
    mine = shard_cells(plan.cells, *shard)
    ran, skipped = [], []
    for cell in tqdm(mine, desc=f"study {plan.cfg['name']} shard {shard[0]}/{shard[1]}",
                     unit="cell", disable=not progress):
        if cell_done(out, cell):
            skipped.append(cell.id)
            continue
        _run_cell(plan, cell, out, device, progress)
        ran.append(cell.id)
    complete = all(cell_done(out, c) for c in plan.cells)
    outputs = finalize([out], out) if complete and finalize_when_done else {}
    return {"cells": len(mine), "ran": ran, "skipped": skipped, "complete": complete,
            "outputs": outputs}
