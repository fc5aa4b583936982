"""Evaluation protocol ``fastmri``: per-volume metrics with fastMRI's conventions.

For every ``.h5`` volume of the evaluation folder (or the one file given):

1. each slice goes through the training pipeline of
   :class:`~mri_unfold.training.fastmri_data.FastMRITrainingSlices` *at full k-space size*
   (the mask of ``data.mask``/``acceleration``/``center_fraction``/``mask_seed``, seeded by
   the file name; ESPIRiT maps for multi-coil; normalisation by the zero-filled maximum) —
   the same steps as ``mri-unfold recon``;
2. the network reconstructs the complex image; its **magnitude** is centre-cropped to the
   recon size (the target's size) and multiplied back by the slice's normalisation scale;
3. the reference is the target stored in the file (``reconstruction_esc`` single-coil /
   ``reconstruction_rss`` multi-coil) — already at the recon size;
4. PSNR, SSIM and NMSE (:mod:`mri_unfold.metrics`) over the whole volume with
   ``data_range = target.max()`` of the volume (SSIM: mean over slices), as
   ``fastmri.evaluate`` does.  Zero-filled (``|F^H y|`` / RSS of the coil images) is
   measured the same way (``zf_*`` columns).

The set's PSNR/SSIM/NMSE are means over volumes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError

__all__ = ["VolumeRecon", "reconstruct_fastmri_volume", "evaluate_fastmri"]


@dataclass
class VolumeRecon:
    """One evaluated volume: ``(S, h, w)`` float32 arrays in the file's intensity units."""

    name: str
    reconstruction: np.ndarray
    zero_filled: np.ndarray
    target: np.ndarray


def reconstruct_fastmri_volume(model: torch.nn.Module, path: str | Path, data_cfg: dict,
                               device=None, batch_size: int = 4) -> VolumeRecon:
    """Reconstruct every slice of one fastMRI file as the ``fastmri`` protocol does.

    Args:
        model: complex-domain network ``model(y, op)`` (left in eval mode).
        path: fastMRI ``.h5`` file with a target dataset.
        data_cfg: the protocol's ``data`` table (mask, challenge, ESPIRiT settings).
    Returns:
        :class:`VolumeRecon` (magnitudes cropped to the recon size, scaled back).
    Raises:
        UserError: no target in the file; FileNotFoundError / DataFileError naming the file.
    """
    from ..baselines import zero_filled
    from ..image_ops import center_crop
    from ..reconstruct import reconstruct_volume
    from .fastmri_data import FastMRITrainingSlices, dataset_options
    from .fastmri_task import batch_operator

    ds = FastMRITrainingSlices(path, with_image=False, **dataset_options(data_cfg))
    items = [ds[i] for i in range(len(ds))]
    if any(it.target is None for it in items):
        raise UserError(f"{path}: no target ({ds.base.recons_key}) to evaluate against")
    kspace = torch.stack([it.kspace for it in items])
    masks = torch.stack([it.mask for it in items])[:, None]
    maps = None if items[0].coil_maps is None else torch.stack([it.coil_maps for it in items])

    def op_factory(idx):
        return batch_operator(masks[idx], None if maps is None else maps[idx])

    x = reconstruct_volume(kspace, model, op_factory, batch_size=batch_size, device=device,
                           progress=False)
    crop = items[0].crop
    scale = np.array([it.scale for it in items], np.float64)[:, None, None]
    rec = center_crop(torch.from_numpy(np.abs(x)), crop).numpy() * scale
    zf = center_crop(zero_filled(kspace, op_factory(list(range(len(items))))), crop).numpy()
    target = np.stack([it.target.numpy() for it in items]) * scale
    return VolumeRecon(Path(path).name, rec.astype(np.float32), (zf * scale).astype(np.float32),
                       target.astype(np.float32))


def evaluate_fastmri(model: torch.nn.Module, root: str | Path, data_cfg: dict | None,
                     device=None, max_volumes: int = 0, out_dir: str | Path | None = None,
                     progress: bool = True) -> dict:
    """The ``fastmri`` evaluation of a folder of volumes (or one file).

    Args:
        data_cfg: the protocol's ``data`` table (``data.kind = "fastmri"``).
        max_volumes: first N files (0 = all).
        out_dir: if given, each reconstruction is written there as ``<file>.h5`` with dataset
            ``reconstruction`` (fastMRI submission layout).
    Returns:
        ``{"set", "images" (volumes), "psnr", "ssim", "nmse", "rows": [per volume: "image",
        "slices", "psnr", "ssim", "nmse", "zf_psnr", "zf_ssim", "zf_nmse"]}``.
    Raises:
        UserError: no fastMRI data settings; FileNotFoundError for a missing folder/file.
    """
    from ..reconstruct import volume_metrics, write_fastmri_h5
    from .fastmri_data import fastmri_files

    if not data_cfg or data_cfg.get("kind") != "fastmri":
        raise UserError("evaluation protocol 'fastmri' needs the protocol's fastMRI data "
                        "settings (data.kind = 'fastmri': mask, acceleration, challenge)")
    root = Path(root)
    files = fastmri_files(root, max_volumes)
    was_training = model.training
    rows = []
    it = files
    if progress:
        from tqdm import tqdm

        it = tqdm(files, desc=f"eval {root.name}", leave=False)
    try:
        for f in it:
            v = reconstruct_fastmri_volume(model, f, data_cfg, device=device)
            net, zf = volume_metrics(v.target, v.reconstruction), volume_metrics(v.target,
                                                                                 v.zero_filled)
            rows.append({"image": v.name, "slices": int(v.target.shape[0]), **net,
                         **{f"zf_{k}": val for k, val in zf.items()}})
            if out_dir is not None:
                Path(out_dir).mkdir(parents=True, exist_ok=True)
                write_fastmri_h5(v.reconstruction, Path(out_dir) / v.name)
    finally:
        model.train(was_training)
    return {"set": root.name, "images": len(rows),
            **{k: float(np.mean([r[k] for r in rows])) for k in ("psnr", "ssim", "nmse")},
            "rows": rows}
