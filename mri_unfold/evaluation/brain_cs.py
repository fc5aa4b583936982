"""The CS-MRI brain test protocol of ISTA-Net+ (and ADMM-Net / MADUN Table 5).

For every 8-bit PNG slice of the folder (sorted by name), exactly as the authors' test
script ``Test_MRI_CS_ISTA_Net_plus.py``:

1. ``x = image / 255`` (float32, ``(1, 1, H, W)``, real);
2. ``y = Φ x`` with ``Φ = SingleCoilFourier(mask, layout="unshifted", real_input=True)``
   (so ``Φ^H y = Re(ifft2(mask · fft2(x)))``, the authors' ``PhiTb``);
3. ``x̂ = model(y, Φ)``, clipped to [0, 1];
4. PSNR on the 255 scale (float64) and SSIM (``data_range=255``) against the uint8 image.

Example:
    >>> from mri_unfold.evaluation.brain_cs import evaluate_brain, radial_mask_operator
    >>> op = radial_mask_operator("../shared/data/mri/masks/radial_20.mat")   # doctest: +SKIP
    >>> evaluate_brain(model, op, "../shared/data/mri/brain_test")["psnr"]    # doctest: +SKIP
    38.70...
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tqdm.auto import tqdm

from ..data.luma import list_images, read_luminance
from ..metrics import psnr_255, ssim_255
from ..operators import SingleCoilFourier, load_mat_variable


def radial_mask_operator(mask_path: str | Path):
    """``SingleCoilFourier(mask, layout="unshifted", real_input=True)`` from a
    ``radial_XX.mat`` file (variable ``mask_matrix``, unshifted, DC at ``[0, 0]``)."""
    mask = load_mat_variable(mask_path, "mask_matrix")
    return SingleCoilFourier(np.asarray(mask), layout="unshifted", real_input=True)


def reconstruct_slice(model, op, image_u8: np.ndarray, device="cpu") -> np.ndarray:
    """``(H, W)`` uint8 slice -> ``(H, W)`` float64 reconstruction in [0, 1] (clipped)."""
    x = torch.from_numpy(image_u8.astype(np.float32) / np.float32(255.0))[None, None].to(device)
    with torch.no_grad():
        rec = model(op(x), op)
    return np.clip(rec[0, 0].detach().cpu().double().numpy(), 0.0, 1.0)


def evaluate_brain(model, op, folder: str | Path, device: str | torch.device = "cpu",
                   progress: bool = True, limit: int | None = None) -> dict:
    """Run the protocol on the images of ``folder`` (first ``limit`` if given).

    Returns:
        ``{"images": [{"image", "psnr", "ssim"}, ...], "psnr": mean, "ssim": mean}``.
    Raises:
        FileNotFoundError / DataFileError: missing folder, folder without images.
    """
    files = list_images(folder)[:limit]
    model = model.to(device).eval()
    op = op.to(device)
    rows = []
    for path in tqdm(files, desc=f"CS-MRI {Path(folder).name}", disable=not progress):
        ref = read_luminance(path)
        rec = reconstruct_slice(model, op, ref, device) * 255.0
        rows.append(dict(image=path.name, psnr=psnr_255(ref, rec), ssim=ssim_255(ref, rec)))
    return dict(images=rows, psnr=float(np.mean([r["psnr"] for r in rows])),
                ssim=float(np.mean([r["ssim"] for r in rows])))


__all__ = ["evaluate_brain", "radial_mask_operator", "reconstruct_slice"]
