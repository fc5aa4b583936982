"""Evaluation of a model + operator on an image folder, for validation and ``mri-unfold eval``.

Protocols:

* ``cs_ni`` — the natural-image CS protocol of the ISTA-Net/MADUN test scripts
  (:func:`natural_cs.evaluate.evaluate_folder`: Y channel, the authors' padding, PSNR/SSIM
  on the 255 scale);
* ``mri`` — CS-MRI on real-valued slices (ISTA-Net+/MADUN Table 5): image/255 (or a
  ``.mat`` slice in [0, 1]), ``y = op(x)``, reconstruction (magnitude if complex), clipped to
  [0, 1], PSNR/SSIM with data range 1 (identical to the 255-scale formulas);
* ``fastmri`` — fastMRI ``.h5`` k-space, per-volume PSNR/SSIM/NMSE with fastMRI's
  conventions (:mod:`.fastmri_eval`).

:func:`evaluate_set` returns ``{"set", "images", "psnr", "ssim", "rows": [per image]}``.
"""
from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_output, atomic_write_text
from ..errors import UserError

PROTOCOLS = ("cs_ni", "mri", "fastmri")


def _limit_folder(folder: Path, max_images: int, tmp: Path) -> Path:
    """A folder of symlinks to the first ``max_images`` images of ``folder``."""
    from .data import IMAGE_EXTS

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS)[:max_images]
    for p in files:
        (tmp / p.name).symlink_to(p.resolve())
    return tmp


def _cs_ni(model, op, folder: Path, device, out_dir, progress) -> dict:
    from natural_cs.evaluate import evaluate_folder

    res = evaluate_folder(model, op, folder, out_dir=out_dir, device=device, progress=progress)
    return {"rows": [dict(r) for r in res["images"]]}


@torch.no_grad()
def _mri(model, op, folder: Path, device, out_dir, progress) -> dict:
    from ..metrics import psnr, ssim
    from .data import ImageFolderDataset

    ds = ImageFolderDataset(folder)
    rows = []
    it = range(len(ds))
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc=f"eval {folder.name}", leave=False)
    for i in it:
        x = ds[i][None].to(device)
        xin = x.to(torch.complex64) if getattr(op, "complex_domain", False) else x
        try:
            rec = model(op(xin), op)
        except (RuntimeError, ValueError) as e:
            raise UserError(f"{ds.files[i]}: cannot reconstruct with this operator ({e})") from e
        rec = rec.abs() if rec.is_complex() else rec
        rec = rec.clamp(0, 1)[0, 0].double().cpu().numpy()
        tgt = x[0, 0].double().cpu().numpy()
        rows.append({"image": ds.files[i].name,
                     "psnr": float(psnr(tgt, rec, data_range=1.0)),
                     "ssim": float(ssim(tgt, rec, data_range=1.0))})
        if out_dir is not None:
            _save_png(np.round(rec * 255).astype(np.uint8), Path(out_dir) / (ds.files[i].stem +
                                                                             ".png"))
    return {"rows": rows}


def _save_png(a: np.ndarray, path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, suffix=".png") as tmp:
        Image.fromarray(a).save(tmp, format="PNG")


def evaluate_set(model, op, folder: str | Path, protocol: str, device=None, max_images: int = 0,
                 out_dir: str | Path | None = None, progress: bool = True,
                 data_cfg: dict | None = None) -> dict:
    """Evaluate on one image folder.

    Args:
        model: ``model(y, op)`` network (put in eval mode here).
        op: its operator.
        protocol: ``"cs_ni"``, ``"mri"`` or ``"fastmri"`` (``folder`` may then be one ``.h5``
            file; ``data_cfg`` — the protocol's ``data`` table — gives mask and ESPIRiT
            settings; the result has ``nmse`` too and one row per volume).
        max_images: use only the first N images (sorted names); 0 = all.
        out_dir: where to write reconstructed PNGs (and the protocol's per-image CSV).
    Returns:
        ``{"set": folder name, "images": n, "psnr": mean dB, "ssim": mean, "rows": [...]}``.
    Raises:
        FileNotFoundError / UserError: missing folder, no images, unknown protocol.
    """
    folder = Path(folder)
    if protocol == "fastmri":  # per-volume fastMRI metrics (mri_unfold.training.fastmri_eval)
        from .fastmri_eval import evaluate_fastmri

        return evaluate_fastmri(model, folder, data_cfg, device=device, max_volumes=max_images,
                                out_dir=out_dir, progress=progress)
    if protocol not in PROTOCOLS:
        raise UserError(f"evaluation protocol {protocol!r} is not one of {', '.join(PROTOCOLS)}")
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: evaluation image folder not found")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    fn = _cs_ni if protocol == "cs_ni" else _mri
    try:
        with tempfile.TemporaryDirectory() as tmp:
            src = _limit_folder(folder, max_images, Path(tmp)) if max_images else folder
            res = fn(model, op, src, device, out_dir, progress)
    finally:
        model.train(was_training)
    rows = res["rows"]
    if not rows:
        raise UserError(f"{folder}: no images evaluated")
    return {"set": folder.name, "images": len(rows),
            "psnr": float(np.mean([r["psnr"] for r in rows])),
            "ssim": float(np.mean([r["ssim"] for r in rows])), "rows": rows}


def write_summary_csv(results: list[dict], path: str | Path) -> None:
    """Atomically write ``set,images,psnr,ssim`` rows."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["set", "images", "psnr", "ssim"])
    for r in results:
        w.writerow([r["set"], r["images"], f"{r['psnr']:.4f}", f"{r['ssim']:.6f}"])
    atomic_write_text(path, buf.getvalue())


def format_table(results: list[dict]) -> str:
    """A plain-text table of evaluation results."""
    lines = [f"{'set':<20} {'images':>6} {'PSNR (dB)':>10} {'SSIM':>8}"]
    for r in results:
        lines.append(f"{r['set']:<20} {r['images']:>6d} {r['psnr']:>10.2f} {r['ssim']:>8.4f}")
    return "\n".join(lines)
