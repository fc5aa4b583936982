"""Evaluation protocol ``fastmri``: per-volume metrics of k-space files, fastMRI conventions.

For every volume of the evaluation folder (or the one file given):

1. its slices are prepared by the protocol's k-space data source exactly as for training,
   at full k-space size (``data.kind = "fastmri"``: the file-seeded mask of ``data.mask`` /
   ``acceleration`` / ``center_fraction`` / ``mask_seed``, ESPIRiT maps for multi-coil data,
   normalisation by the zero-filled maximum) — the same steps as ``mri-unfold recon``;
2. :func:`mri_unfold.reconstruct.reconstruct_samples` (the one pipeline) reconstructs them:
   the **magnitude** of the network output, centre-cropped to the recon size and multiplied
   back by each slice's normalisation scale;
3. the reference is the target stored in the file (``reconstruction_esc`` single-coil /
   ``reconstruction_rss`` multi-coil);
4. PSNR, SSIM and NMSE (:mod:`mri_unfold.metrics`) over the whole volume with
   ``data_range = target.max()`` of the volume (SSIM: mean over slices), as
   ``fastmri.evaluate`` does; zero-filled is measured the same way (``zf_*`` columns).
"""
from __future__ import annotations

from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..data.sources import get_source
from ..errors import UserError
from ..reconstruct import ReconResult, reconstruct_samples, write_fastmri_h5
from .protocols import register_protocol

__all__ = ["reconstruct_kspace_file", "evaluate_kspace_files"]


def _source_options(data_cfg: dict | None):
    if not data_cfg or not data_cfg.get("kind"):
        raise UserError("evaluation protocol 'fastmri' needs the protocol's k-space data "
                        "settings (data.kind = 'fastmri': mask, acceleration, challenge)")
    source = get_source(data_cfg["kind"])
    if source.yields != "kspace":
        raise UserError(f"evaluation protocol 'fastmri' needs k-space data; data.kind = "
                        f"{data_cfg['kind']!r} gives images")
    return source, {k: data_cfg[k] for k in source.options if k in data_cfg}


def reconstruct_kspace_file(model: torch.nn.Module, path: str | Path, data_cfg: dict,
                            device=None, batch_size: int = 4) -> ReconResult:
    """Reconstruct every slice of one k-space file as the ``fastmri`` protocol does.

    Args:
        model: complex-domain network ``model(y, op)``.
        path: one file of the protocol's k-space data source, with a reference image.
        data_cfg: the protocol's ``data`` table (source kind, mask, ESPIRiT settings).
    Returns:
        :class:`~mri_unfold.reconstruct.ReconResult` (magnitudes cropped to the recon size,
        in the file's intensity units, with the file's target and the metrics).
    Raises:
        UserError: no target in the file; FileNotFoundError / DataFileError naming the file.
    """
    source, options = _source_options(data_cfg)
    if "crop_to_recon" in options:  # evaluated at full k-space size, the output cropped
        options["crop_to_recon"] = False
    ds = source.open(path, options, for_training=False)
    samples = [ds[i] for i in range(len(ds))]
    if any(s.target is None for s in samples):
        raise UserError(f"{path}: no reference image to evaluate against")
    result = reconstruct_samples(samples, model, batch_size=batch_size, device=device,
                                 progress=False)
    result.info["input"] = str(path)
    return result


@register_protocol("fastmri")
def evaluate_kspace_files(model, op, root: Path, *, device, max_images: int = 0, out_dir=None,
                          progress: bool = True, data_cfg=None) -> dict:
    """The ``fastmri`` protocol over the files of ``root`` (module doc).

    Returns:
        ``{"set", "rows": [per volume: "image", "slices", "psnr", "ssim", "nmse", "zf_psnr",
        "zf_ssim", "zf_nmse"]}``; with ``out_dir`` every reconstruction is written there as
        ``<file>.h5`` (dataset ``reconstruction``).
    """
    source, _ = _source_options(data_cfg)
    rows = []
    for f in tqdm(source.files(root, max_images), desc=f"eval {Path(root).name}", leave=False,
                  disable=not progress):
        res = reconstruct_kspace_file(model, f, data_cfg, device=device)
        net, zf = res.metrics["network"], res.metrics["zero-filled"]
        rows.append({"image": Path(f).name, "slices": int(res.target.shape[0]), **net,
                     **{f"zf_{k}": v for k, v in zf.items()}})
        if out_dir is not None:
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            write_fastmri_h5(res.reconstruction, Path(out_dir) / Path(f).name)
    return {"set": Path(root).name, "rows": rows}
