"""Evaluation protocol ``mri``: CS-MRI on a folder of image slices (ISTA-Net+/MADUN Table 5).

Each image (PNG/TIFF scaled to [0, 1], or a ``.mat`` slice) is measured with the model's
fixed operator, ``y = op(x)`` (complex images for complex-domain operators), reconstructed,
its magnitude clipped to [0, 1] and compared with PSNR/SSIM at data range 1 (the same as
the 255-scale formulas).  With ``out_dir`` the reconstructions are written as PNG.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from ..atomic import atomic_output
from ..data.sources.images import ImageFolderDataset
from ..errors import UserError
from ..metrics import psnr, ssim
from .protocols import register_protocol

__all__ = ["evaluate_mri_folder"]


def _save_png(a: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, suffix=".png") as tmp:
        Image.fromarray(a).save(tmp, format="PNG")


@register_protocol("mri")
@torch.no_grad()
def evaluate_mri_folder(model, op, folder: Path, *, device, max_images: int = 0, out_dir=None,
                        progress: bool = True, data_cfg=None) -> dict:
    """The ``mri`` protocol on ``folder`` (module doc); rows ``image``, ``psnr``, ``ssim``.

    Raises:
        FileNotFoundError: missing folder.  UserError: an operator that cannot measure the
            images (e.g. a k-space model, whose operator comes with k-space data).
    """
    if not isinstance(op, torch.nn.Module):
        raise UserError(f"evaluation protocol 'mri' measures images with a fixed operator; "
                        f"this model's operator is {type(op).__name__} (use k-space data and "
                        "the 'fastmri' protocol)")
    if not Path(folder).is_dir():
        raise FileNotFoundError(f"{folder}: evaluation image folder not found")
    ds = ImageFolderDataset(folder, max_images=max_images)
    op = op.to(device)
    rows = []
    for i in tqdm(range(len(ds)), desc=f"eval {Path(folder).name}", leave=False,
                  disable=not progress):
        x = ds[i][None].to(device)
        xin = x.to(torch.complex64) if op.complex_domain else x
        try:
            rec = model(op(xin), op)
        except (RuntimeError, ValueError) as e:
            raise UserError(f"{ds.files[i]}: cannot reconstruct with this operator ({e})") from e
        rec = rec.abs() if rec.is_complex() else rec
        rec = rec.clamp(0, 1)[0, 0].double().cpu().numpy()
        tgt = x[0, 0].double().cpu().numpy()
        rows.append({"image": ds.files[i].name, "psnr": float(psnr(tgt, rec, data_range=1.0)),
                     "ssim": float(ssim(tgt, rec, data_range=1.0))})
        if out_dir is not None:
            _save_png(np.round(rec * 255).astype(np.uint8),
                      Path(out_dir) / (ds.files[i].stem + ".png"))
    return {"rows": rows}
