"""The CS-NI test protocol of ISTA-Net / ISTA-Net+ / MADUN on natural images (Set11, ...).

For every image of a folder (sorted by name), exactly as the authors' test scripts:

1. read the 8-bit Y channel (:func:`natural_cs.images.read_image`; gray files: the gray value);
2. zero-pad right/bottom by ``B − (side mod B)`` (``pad_to_blocks(..., convention="authors")``,
   a full extra block when the side is already a multiple of B);
3. ``x = Y / 255`` (float32), ``y = Φ x`` block by block, ``x̂ = model(y, Φ)``;
4. crop to the original size, clip to [0, 1];
5. PSNR on the 255 scale against the original uint8 Y as float64
   (``20 log10(255 / sqrt(mse))``), SSIM (scikit-image, ``data_range=255``, default 7x7
   uniform window), and the averages over the folder.

With ``out_dir`` the per-image CSV (``results.csv``) and reconstructed PNGs are written
(colour images: the reconstructed Y with the original Cr/Cb, converted back to RGB, as the
authors save them); every file is written to a temp file and moved into place.

Example:
    >>> from mri_unfold.models.official import load_official
    >>> from mri_unfold.operators import GaussianBlockCS
    >>> from natural_cs.evaluate import evaluate_folder
    >>> ref = "../shared/reference/ista_net_pytorch"
    >>> op = GaussianBlockCS.from_mat_files(f"{ref}/sampling_matrix/phi_0_25_1089.mat",
    ...                                     f"{ref}/sampling_matrix/Initialization_Matrix_25.mat")
    >>> model = load_official(f"{ref}/model/CS_ISTA_Net_plus_layer_9_group_1_ratio_25_lr_0.0001/"
    ...                       "net_params_200.pkl")
    >>> res = evaluate_folder(model, op, "../shared/data/natural/Set11")   # doctest: +SKIP
    >>> round(res["psnr"], 2)                                              # doctest: +SKIP
    32.44
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from mri_unfold.atomic import atomic_write_text
from mri_unfold.data.luma import list_images, read_image, recombine, save_png_atomic
from mri_unfold.errors import UserError
from mri_unfold.evaluation import register_protocol
from mri_unfold.metrics import psnr_255, ssim_255
from mri_unfold.operators import crop_to, pad_to_blocks

CSV_FIELDS = ("image", "height", "width", "psnr", "ssim")


def reconstruct_luma(model, op, luma: np.ndarray, device="cpu",
                     pad_convention: str = "authors") -> np.ndarray:
    """Reconstruct one ``(H, W)`` uint8 image -> ``(H, W)`` float64 in [0, 1] (cropped, clipped)."""
    b = op.block_size
    if not b:
        raise ValueError(f"CS-NI evaluation needs a block-based operator, got {type(op).__name__}")
    x = torch.from_numpy(luma.astype(np.float32) / np.float32(255.0))[None, None].to(device)
    x_pad, size = pad_to_blocks(x, b, convention=pad_convention)
    with torch.no_grad():
        rec = model(op(x_pad), op)
    rec = crop_to(rec, size)[0, 0].detach().cpu().double().numpy()
    return np.clip(rec, 0.0, 1.0)


def results_csv(rows: list[dict], averages: dict) -> str:
    """CSV text: one row per image and a final ``average`` row (4-decimal PSNR/SSIM)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for r in rows + [dict(image="average", height="", width="", **averages)]:
        w.writerow({k: (f"{r[k]:.4f}" if k in ("psnr", "ssim") else r[k]) for k in CSV_FIELDS})
    return buf.getvalue()


def evaluate_folder(model, op, folder: str | Path, out_dir: str | Path | None = None,
                    device: str | torch.device = "cpu", pad_convention: str = "authors",
                    progress: bool = True, max_images: int = 0) -> dict:
    """Run the CS-NI protocol on every image of ``folder``.

    Args:
        model: a reconstruction model (``model(y, op)``), put in eval mode and on ``device``.
        op: a block-based operator (e.g. ``GaussianBlockCS`` with ``Qinit``), moved to ``device``.
        folder: images (.png/.tif/.bmp/.jpg...), evaluated in sorted name order.
        out_dir: if given, write ``results.csv`` and ``<stem>.png`` reconstructions there.
        pad_convention: ``"authors"`` (default) or ``"minimal"`` (see ``pad_to_blocks``).
        progress: show a tqdm progress bar.
        max_images: only the first N images (sorted names); 0 = all.
    Returns:
        ``{"images": [{"image", "height", "width", "psnr", "ssim"}, ...],
        "psnr": mean PSNR (dB), "ssim": mean SSIM}``.
    Raises:
        FileNotFoundError: missing folder.  ValueError: a folder without images.
    """
    files = list_images(folder)
    files = files[:max_images] if max_images else files
    model = model.to(device).eval()
    op = op.to(device)
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for path in tqdm(files, desc=f"CS-NI {Path(folder).name}", disable=not progress):
        img = read_image(path)
        rec = reconstruct_luma(model, op, img.luma, device, pad_convention)
        ref = img.luma.astype(np.float64)
        rows.append(dict(image=path.name, height=ref.shape[0], width=ref.shape[1],
                         psnr=psnr_255(ref, rec * 255.0), ssim=ssim_255(ref, rec * 255.0)))
        if out_dir is not None:
            save_png_atomic(recombine(img, rec * 255.0), out_dir / f"{path.stem}.png")
    averages = dict(psnr=float(np.mean([r["psnr"] for r in rows])),
                    ssim=float(np.mean([r["ssim"] for r in rows])))
    if out_dir is not None:
        atomic_write_text(out_dir / "results.csv", results_csv(rows, averages))
    return dict(images=rows, **averages)


@register_protocol("cs_ni")
def cs_ni_protocol(model, op, folder: Path, *, device, max_images: int = 0, out_dir=None,
                   progress: bool = True, data_cfg=None) -> dict:
    """Evaluation protocol ``cs_ni`` (:func:`mri_unfold.evaluation.evaluate_set`): the CS-NI
    test protocol of :func:`evaluate_folder`; rows ``image``, ``height``, ``width``,
    ``psnr``, ``ssim``."""
    if not getattr(op, "block_size", None):
        raise UserError(f"evaluation protocol 'cs_ni' needs a block-based operator, got "
                        f"{type(op).__name__}")
    res = evaluate_folder(model, op, folder, out_dir=out_dir, device=device, progress=progress,
                          max_images=max_images)
    return {"rows": [dict(r) for r in res["images"]]}


__all__ = ["evaluate_folder", "reconstruct_luma", "results_csv", "cs_ni_protocol"]
