"""Put a trained run into the bundled model zoo: weights + a card with measured numbers.

``python -m mri_unfold.training.zoo_export RUN_DIR NAME --label L --description D
--protocol protocols/zoo/NAME.toml [--checkpoint best|last] [--warm-start CARD_NAME]
[--reference-psnr X --reference-note T] [--machine TEXT]``

1. copies ``RUN_DIR/<checkpoint>.safetensors`` to ``mri_unfold/weights/NAME.safetensors``
   with portable metadata (:func:`.export.export_checkpoint`);
2. reads the training time and amount from the run's ``log.jsonl`` (:func:`run_time`);
3. measures the card's scores from the bundled file (:func:`mri_unfold.evaluation.zoo_scores.
   measure_card_scores`) and writes ``NAME.json`` (:mod:`mri_unfold.models.zoo`).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import tomllib
from pathlib import Path

from ..atomic import atomic_write_text
from ..checkpoints import read_checkpoint_file
from ..evaluation.zoo_scores import measure_card_scores
from ..models.zoo import load_card, pretrained, zoo_dir
from .export import export_checkpoint

__all__ = ["run_time", "build_card", "operator_settings", "export_to_zoo"]

#: Gaps between consecutive log records longer than this are a stopped run (not counted).
MAX_GAP_S = 900.0


def run_time(run_dir: str | Path) -> dict:
    """Training amount and wall-clock time of a run from its ``log.jsonl``.

    Seconds: the sum of the gaps between consecutive records (training steps and
    validations), except gaps over :data:`MAX_GAP_S` (a killed and resumed run), plus each
    segment's first step (``batch / images_per_s``, which includes compiling).

    Returns:
        ``{"steps", "epochs", "images_seen", "seconds", "validations": [(step, seconds,
        psnr)]}`` (``seconds`` of a validation: training time when it was logged).
    """
    recs = [json.loads(line) for line in Path(run_dir, "log.jsonl").read_text().splitlines()
            if line.strip()]
    train = [r for r in recs if r["split"] == "train"]
    batch = tomllib.loads(Path(run_dir, "protocol.toml").read_text())["training"]["batch_size"]
    seconds, prev, vals = 0.0, None, []
    for r in recs:
        if prev is not None and r["time"] - prev <= MAX_GAP_S:
            seconds += r["time"] - prev
        elif r["split"] == "train" and r.get("images_per_s"):
            seconds += batch / r["images_per_s"]
        prev = r["time"]
        if r["split"] == "val":
            vals.append((r["step"], round(seconds, 1), r["psnr"]))
    steps = max((r["step"] for r in train), default=0)
    # train records carry the 0-based epoch they belong to: epochs begun = the last one + 1
    return {"steps": steps, "epochs": max((r["epoch"] + 1 for r in train), default=0),
            "images_seen": steps * batch, "seconds": round(seconds, 1),
            "validations": vals}


#: The operator keys a card keeps, per kind (the others do not apply to it).
OPERATOR_KEYS = {"single_coil": ("kind", "mask", "ratio", "seed", "layout", "center_fraction",
                                 "real_input"),
                 "kspace": ("kind",)}


def operator_settings(op: dict) -> dict:
    """The keys of a stored operator table that apply to its kind (no machine paths)."""
    keep = OPERATOR_KEYS.get(op.get("kind"), tuple(k for k in op if not k.startswith("_")))
    out = {k: op[k] for k in keep if k in op}
    if "layout" in out and "_resolved_layout" in op:  # the layout of the stored mask
        out["layout"] = op["_resolved_layout"]
    return out


def build_card(name: str, ckpt_meta: dict, label: str, description: str, protocol: str,
               training: dict) -> dict:
    """A card without scores and file entries (filled in by :func:`export_to_zoo`)."""
    model_cfg = json.loads(ckpt_meta["model_config"])
    op = json.loads(ckpt_meta["operator"])
    proto = json.loads(ckpt_meta.get("protocol") or "{}")
    data = proto.get("data", {})
    kspace = data.get("kind") == "simulated_kspace"
    card = {"card_version": 1, "name": name, "label": label,
            "architecture": ckpt_meta["arch"], "model_config": model_cfg,
            "task": "kspace_complex" if kspace else "cs_mri_real", "description": description,
            "operator": operator_settings(op),
            "protocol": protocol, "simulation_trained": kspace, "training": training}
    if kspace and data.get("trajectory", "cartesian") != "cartesian":
        card.update(coils=data["coils"], acceleration=data["acceleration"],
                    mask=f"{data['trajectory']} trajectory, {data['acceleration']:g}x below "
                         "Nyquist (the DCF a file gets)",
                    data={k: data[k] for k in ("coils", "trajectory", "acceleration",
                                               "max_phase")})
    elif kspace:
        card.update(coils=data["coils"], acceleration=data["acceleration"],
                    mask=f"{data['mask']} (1-D, seeded per image), centre fraction "
                         f"{data['center_fraction']}",
                    data={k: data[k] for k in ("coils", "mask", "acceleration",
                                               "center_fraction", "mask_seed", "max_phase")})
    else:
        card.update(ratio=op["ratio"], coils=1,
                    mask=f"ours: make_mask({op['mask']!r}, (256, 256), ratio={op['ratio']}, "
                         f"seed={op['seed']})")
    return card


def export_to_zoo(run_dir: str | Path, name: str, *, label: str, description: str,
                  protocol: str, checkpoint: str = "last", warm_start: str | None = None,
                  warm_start_seconds: float | None = None, reference: dict | None = None,
                  machine: str = "", folder=None, score_limit: int | None = None) -> dict:
    """Steps 1–3 of the module doc; returns the card written.

    ``warm_start``: what the run started from (``training.init_from``): a zoo name (its
    card's time is added to ``seconds_including_warm_start``) or a description with
    ``warm_start_seconds``.  ``score_limit``: score on the first N test slices only (tests;
    bundled cards use all)."""
    folder = Path(folder) if folder is not None else zoo_dir()
    src = Path(run_dir) / f"{checkpoint}.safetensors"
    dst = folder / f"{name}.safetensors"
    export_checkpoint(src, dst, {"zoo_name": name})
    _, meta = read_checkpoint_file(dst)
    info = json.loads(meta.get("info") or "{}")
    t = run_time(run_dir)
    training = {"steps": t["steps"], "epochs": t["epochs"], "images_seen": t["images_seen"],
                "seconds": t["seconds"], "checkpoint": f"{checkpoint} (step {info.get('step')})",
                "machine": machine or f"{os.cpu_count()}-core shared CPU",
                "validations": t["validations"]}
    if warm_start:
        if warm_start_seconds is None:
            parent = load_card(warm_start, folder)["training"]
            warm_start_seconds = parent.get("seconds_including_warm_start", parent["seconds"])
        training["warm_start"] = warm_start
        training["seconds_including_warm_start"] = round(t["seconds"] + warm_start_seconds, 1)
    card = build_card(name, meta, label, description, protocol, training)
    card["reference"] = reference or {}
    blob = dst.read_bytes()
    card["file"] = {"sha256": hashlib.sha256(blob).hexdigest(), "bytes": len(blob),
                    "dtype": "float32"}
    card["scores"] = {}
    atomic_write_text(folder / f"{name}.json", json.dumps(card, indent=1) + "\n")
    card["scores"] = measure_card_scores(pretrained(name, folder=folder), limit=score_limit)
    atomic_write_text(folder / f"{name}.json", json.dumps(card, indent=1) + "\n")
    return card


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("name")
    p.add_argument("--label", required=True)
    p.add_argument("--description", required=True)
    p.add_argument("--protocol", required=True)
    p.add_argument("--checkpoint", choices=("best", "last"), default="last")
    p.add_argument("--warm-start", default=None,
                   help="zoo name (or, with --warm-start-seconds, a description) of the "
                        "starting weights")
    p.add_argument("--warm-start-seconds", type=float, default=None)
    p.add_argument("--reference-psnr", type=float, default=None)
    p.add_argument("--reference-note", default="")
    p.add_argument("--machine", default="")
    a = p.parse_args(argv)
    ref = ({"brain_test_psnr": a.reference_psnr, "note": a.reference_note}
           if a.reference_psnr is not None else None)
    card = export_to_zoo(a.run_dir, a.name, label=a.label, description=a.description,
                         protocol=a.protocol, checkpoint=a.checkpoint, warm_start=a.warm_start,
                         warm_start_seconds=a.warm_start_seconds, reference=ref,
                         machine=a.machine)
    print(json.dumps({k: card[k] for k in ("name", "scores", "training")}, indent=1))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
