"""Evaluation protocols (``evaluation.protocol`` / ``mri-unfold eval``): a registry.

A protocol is a function ``fn(model, op, path, *, device, max_images, out_dir, progress,
data_cfg) -> {"rows": [...], ...}`` registered with :func:`register_protocol`; each row has at
least ``image``, ``psnr`` and ``ssim``.  :func:`evaluate_set` runs one and averages.

Built in: ``mri`` (:mod:`.image_folder`, CS-MRI on real-valued slices) and ``fastmri``
(:mod:`.fastmri`, per-volume metrics of k-space files).  Plug-ins add more (``natural_cs``
adds ``cs_ni``, the natural-image protocol of the ISTA-Net / MADUN test scripts).
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..atomic import atomic_write_text
from ..errors import UserError
from ..plugins import load_plugins, registered
from ..tables import Column, format_table

__all__ = ["register_protocol", "protocol_names", "evaluate_set", "write_summary_csv",
           "summary_table"]

_PROTOCOLS: dict[str, Callable[..., dict]] = {}


def register_protocol(name: str):
    """Decorator registering an evaluation protocol function under ``name``."""

    def deco(fn):
        _PROTOCOLS[name] = fn
        return fn

    return deco


def protocol_names() -> list[str]:
    """Registered protocol names (plug-ins included), sorted."""
    load_plugins()
    return sorted(_PROTOCOLS)


def _protocol(name: str) -> Callable[..., dict]:
    fn = registered(_PROTOCOLS, name)
    if fn is None:
        raise UserError(f"evaluation protocol {name!r} is not one of "
                        f"{', '.join(protocol_names())}")
    return fn


def evaluate_set(model, op, folder: str | Path, protocol: str, device=None, max_images: int = 0,
                 out_dir: str | Path | None = None, progress: bool = True,
                 data_cfg: dict | None = None) -> dict:
    """Evaluate a model on one set (an image folder, or k-space files for ``fastmri``).

    Args:
        model: ``model(y, op)`` network (evaluated in eval mode; its mode is restored).
        op: its operator (or k-space operator factory).
        protocol: a registered protocol name (:func:`protocol_names`).
        max_images: only the first N images / volumes (sorted names); 0 = all.
        out_dir: where the protocol writes reconstructions and per-image results.
        data_cfg: the protocol's ``data`` table (k-space protocols take mask/coil settings).
    Returns:
        ``{"set": folder name, "images": n, "psnr": mean, "ssim": mean, ["nmse": mean],
        "rows": [...]}``.
    Raises:
        FileNotFoundError / UserError: missing set, no images, unknown protocol.
    """
    fn = _protocol(protocol)
    folder = Path(folder)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        res = fn(model, op, folder, device=device, max_images=max_images, out_dir=out_dir,
                 progress=progress, data_cfg=data_cfg)
    finally:
        model.train(was_training)
    rows = res["rows"]
    if not rows:
        raise UserError(f"{folder}: no images evaluated")
    keys = [k for k in ("psnr", "ssim", "nmse") if k in rows[0]]
    return {"set": res.get("set", folder.name), "images": len(rows),
            **{k: float(np.mean([r[k] for r in rows])) for k in keys}, "rows": rows}


def write_summary_csv(results: list[dict], path: str | Path) -> None:
    """Atomically write ``set,images,psnr,ssim`` rows."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["set", "images", "psnr", "ssim"])
    for r in results:
        w.writerow([r["set"], r["images"], f"{r['psnr']:.4f}", f"{r['ssim']:.6f}"])
    atomic_write_text(path, buf.getvalue())


SUMMARY_COLUMNS = (Column("set", min_width=20, align="<"), Column("images", fmt="d", min_width=6),
                   Column("psnr", "PSNR (dB)", ".2f", 10), Column("ssim", "SSIM", ".4f", 8))


def summary_table(results: list[dict]) -> str:
    """A plain-text table of :func:`evaluate_set` results."""
    return format_table(results, SUMMARY_COLUMNS)
