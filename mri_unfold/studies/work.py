"""What one cell does: reconstruct the test images with its mask and method.

* **classical** — λ is swept over ``methods.lambdas`` on the validation images (mean PSNR,
  per-volume data range) and the best one reconstructs the test images; ``zero-filled`` has
  no λ;
* **checkpoint** — a pretrained network (:func:`mri_unfold.checkpoints.load_checkpoint`)
  reconstructs the test images measured with this cell's mask (generalisation across masks);
* **network** — the study's network is trained on this mask through the training engine
  (:func:`mri_unfold.training.train`, a generated protocol: ``network.max_steps`` steps or
  ``network.max_seconds`` of training), its run folder and checkpoint kept in the cell
  folder (``run/``); a learned mask (``operator.kind = "learned_mask"``) is trained with it
  and exported as a binary centred ``.npy``.

Each returns the test reconstructions ``(T, H, W)`` float32 and a dict of what it did
(λ sweep, seconds per phase, steps).
"""
from __future__ import annotations

import math
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..auto_lambda import choose_lambda
from ..checkpoints import load_checkpoint
from ..masks import save_mask
from ..training import train, validate_protocol
from ..training.loop import LAST_CKPT, STATE_FILE
from .cells import Cell
from .data import StudyData, source_options
from .evaluate import classical_recon, measure, network_recon, operator_for, score

__all__ = ["run_classical", "run_checkpoint", "run_network", "cell_protocol"]


def _batches(n: int, size: int):
    return [range(i, min(i + size, n)) for i in range(0, n, size)]


def _bar(total: int | None, desc: str, progress: bool, unit: str):
    return tqdm(total=total, desc=desc, unit=unit, leave=False, disable=not progress)


def run_classical(cell: Cell, mask: np.ndarray, data: StudyData, cfg: dict, *,
                  progress: bool = True):
    """λ sweep on the validation images, then the test images (module doc); with
    ``methods.lambdas = ["auto"]`` each test image's λ is chosen from its own measurements
    (:func:`mri_unfold.auto_lambda.choose_lambda`)."""
    meth = cfg["methods"]
    op = operator_for(mask, data.complex)
    info: dict = {"lambda": None, "sweep": {}}
    t0 = time.perf_counter()
    if cell.method != "zero-filled" and meth["lambdas"] == ["auto"]:
        return _classical_auto(cell, op, data, meth, progress, info, t0)
    if cell.method != "zero-filled":
        y_val = measure(op, data.val)
        vols = [f"val{i}" for i in range(len(data.val))]
        for lam in meth["lambdas"]:
            rec = classical_recon(cell.method, op, y_val, lam, meth["max_iter"])
            info["sweep"][repr(lam)] = float(np.mean([r["psnr"] for r in
                                                      score(data.val, rec, vols)]))
        info["lambda"] = float(max(meth["lambdas"], key=lambda v: info["sweep"][repr(v)]))
    t1 = time.perf_counter()
    out = []
    with _bar(len(data.test), cell.id, progress, "img") as bar:
        for idx in _batches(len(data.test), meth["batch_size"]):
            y = measure(op, data.test[list(idx)])
            out.append(classical_recon(cell.method, op, y, info["lambda"], meth["max_iter"]))
            bar.update(len(idx))
    info["seconds"] = {"sweep": t1 - t0, "evaluation": time.perf_counter() - t1}
    return torch.cat(out), info


def _classical_auto(cell: Cell, op, data: StudyData, meth: dict, progress: bool, info: dict,
                    t0: float):
    """The test images, each with the λ its own held-out measurements choose (recorded in
    ``info["lambdas"]``; the rows' ``lambda`` stays empty, one λ per image)."""
    info.update({"lambda": None, "lambda_choice": "auto (held-out k-space, per image)",
                 "lambdas": []})
    out = []
    with _bar(len(data.test), cell.id, progress, "img") as bar:
        for i in range(len(data.test)):
            y = measure(op, data.test[i:i + 1])
            lam = choose_lambda(cell.method, y, op, max_iter=meth["max_iter"] or None).lamda
            info["lambdas"].append(lam)
            out.append(classical_recon(cell.method, op, y, lam, meth["max_iter"]))
            bar.update(1)
    info["seconds"] = {"sweep": 0.0, "evaluation": time.perf_counter() - t0}
    return torch.cat(out), info


def _network_test(model, op, data: StudyData, cfg: dict, device, cell: Cell, progress: bool):
    out = []
    with _bar(len(data.test), f"{cell.id} (test)", progress, "img") as bar:
        for idx in _batches(len(data.test), cfg["methods"]["batch_size"]):
            out.append(network_recon(model, op, measure(op, data.test[list(idx)]), device))
            bar.update(len(idx))
    return torch.cat(out)


def run_checkpoint(cell: Cell, mask: np.ndarray, data: StudyData, cfg: dict, *,
                   device="cpu", progress: bool = True):
    """A pretrained network on this cell's mask (module doc)."""
    t0 = time.perf_counter()
    ck = load_checkpoint(cell.source, device=device)
    op = operator_for(mask, data.complex or ck.complex_model)
    rec = _network_test(ck.model, op, data, cfg, device, cell, progress)
    return rec, {"checkpoint": str(cell.source), "arch": ck.arch,
                 "seconds": {"evaluation": time.perf_counter() - t0}}


def cell_protocol(cell: Cell, cfg: dict, data: StudyData, mask_file: Path | None) -> dict:
    """The training protocol (validated) of a network cell: the study's data, network and
    seed; a ``single_coil`` operator with the cell's mask file, or a ``learned_mask``
    operator at the cell's acceleration annealed over ``network.max_steps``."""
    net, d, m = cfg["network"], cfg["data"], cell.mask
    steps = net["max_steps"]
    epochs = math.ceil(steps * net["batch_size"] / data.train_n) + 1 if steps else 10 ** 6
    if m.learned:
        lm = cfg["masks"]
        operator = {"kind": "learned_mask", "ratio": 1.0 / m.acceleration,
                    "center_fraction": m.center_fraction, "seed": cfg["seed"],
                    "mask_dims": m.dims, "mask_prob_slope": lm["learned_prob_slope"],
                    "mask_slope_start": lm["learned_slope_start"],
                    "mask_slope_end": lm["learned_slope_end"], "mask_anneal_steps": steps,
                    "acs": list(lm.get("acs") or [])}
    else:
        operator = {"kind": "single_coil", "mask": str(mask_file), "layout": "centered"}
    operator["real_input"] = not data.complex
    training = {"epochs": epochs, "batch_size": net["batch_size"], "lr": net["lr"],
                "loss": net["loss"], "max_steps": steps, "progress": False,
                "checkpoint_every": net["checkpoint_every"]}
    if net["init_from"]:
        training["init_from"] = net["init_from"]
    raw = {"name": f"{cfg['name']}-{cell.id}", "seed": cfg["seed"],
           "data": {"kind": d["kind"], "train": d["train"], "max_images": data.train_n,
                    **source_options(d)},
           "operator": operator,
           "model": {"name": net["model"], "seed": cfg["seed"], "config": net["config"]},
           "training": training, "evaluation": {"protocol": "none"}}
    return validate_protocol(raw, source=f"study cell {cell.id}")


def run_network(cell: Cell, mask_file: Path | None, learned_file: Path | None,
                data: StudyData, cfg: dict, run_dir: Path, *, device="cpu",
                progress: bool = True):
    """Train the study's network on this cell's mask and reconstruct the test images.

    A run folder left by an interrupted cell is resumed when the budget is in steps
    (the engine continues the identical trajectory) and started again when it is in
    seconds.  A learned mask is exported to ``learned_file``.
    """
    net = cfg["network"]
    pcfg = cell_protocol(cell, cfg, data, mask_file)
    run_dir = Path(run_dir)
    resume = (run_dir / STATE_FILE).is_file() and not net["max_seconds"]
    if run_dir.exists() and not resume:
        shutil.rmtree(run_dir)
    t0 = time.perf_counter()
    with _bar(net["max_steps"] or None, f"{cell.id} (train)", progress, "step") as bar:
        def on_step(trainer):
            bar.update(1)
            if net["max_seconds"] and time.perf_counter() - t0 >= net["max_seconds"]:
                trainer.tcfg["max_steps"] = trainer.step   # the time budget: stop here
        summary = train(pcfg, run_dir, device=device, resume=resume, progress=False,
                        on_step=on_step)
    t1 = time.perf_counter()
    ck = load_checkpoint(run_dir / LAST_CKPT, device=device)
    if cell.mask.learned:
        save_mask(learned_file, ck.op.binary_mask())
        mask = ck.op.binary_mask()
    else:
        mask = np.load(mask_file)
    op = operator_for(mask, data.complex)
    rec = _network_test(ck.model, op, data, cfg, device, cell, progress)
    losses = summary["losses"]
    learned = {"mask_separation": ck.op.separation()} if cell.mask.learned else {}
    return rec, {**learned, "steps": summary["step"], "resumed": resume,
                 "final_loss": losses[-1] if losses else None, "run": str(run_dir.name),
                 "checkpoint": f"{run_dir.name}/{LAST_CKPT}",
                 "seconds": {"training": t1 - t0, "evaluation": time.perf_counter() - t1}}
