"""Evaluation protocol ``simulated_kspace``: complex-domain networks on SIMULATED k-space.

Every image of the evaluation folder (e.g. the 50 ``brain_test`` slices) becomes complex
k-space exactly as the ``simulated_kspace`` training source makes it
(:func:`mri_unfold.data.sources.simulated.simulated_slices`: smooth random phase, birdcage
coil maps, a seeded retrospective mask per image from the protocol's ``data`` table:
``coils``, ``mask``, ``acceleration``, ``center_fraction``, ``mask_seed``, ``max_phase``),
but with the fixed phase seed :data:`EVAL_SEED` (independent of the training seed, so two
models trained with different seeds are scored on the same data).  The network runs
through :func:`mri_unfold.reconstruct.reconstruct_samples` (the one pipeline, with the
simulation's coil maps); metrics per slice on the magnitude against the magnitude image,
``data_range`` = the slice's maximum, zero-filled (RSS) alongside.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import metrics
from ..data.sources import get_source
from ..errors import UserError
from ..reconstruct import reconstruct_samples
from .protocols import register_protocol

__all__ = ["EVAL_SEED", "evaluate_simulated"]

#: Phase seed of the evaluation data (the training seed does not enter).
EVAL_SEED = 2024


def _options(data_cfg: dict | None) -> dict:
    if not data_cfg or data_cfg.get("kind") != "simulated_kspace":
        raise UserError("evaluation protocol 'simulated_kspace' needs the protocol's "
                        "simulated k-space settings (data.kind = 'simulated_kspace')")
    source = get_source("simulated_kspace")
    return {k: data_cfg.get(k, default) for k, (_, default) in source.options.items()}


@register_protocol("simulated_kspace")
def evaluate_simulated(model, op, root: Path, *, device, max_images: int = 0, out_dir=None,
                       progress: bool = True, data_cfg=None) -> dict:
    """The protocol over the image folder ``root`` (module doc).

    Returns:
        ``{"set", "rows": [per slice: "image", "psnr", "ssim", "nmse", "zf_psnr", "zf_ssim",
        "zf_nmse"]}``; with ``out_dir`` the magnitudes are saved there as
        ``reconstructions.npy`` ``(S, H, W)`` float32.
    """
    ds = get_source("simulated_kspace").open(root, _options(data_cfg), seed=EVAL_SEED,
                                             max_items=max_images, for_training=False)
    samples = [ds[i] for i in range(len(ds))]
    res = reconstruct_samples(samples, model, batch_size=4, device=device, progress=progress,
                              desc=f"eval {Path(root).name}")
    rows = []
    for i, s in enumerate(samples):
        t = res.target[i]
        net = metrics.quality(t, res.reconstruction[i], data_range=float(t.max()))
        zf = metrics.quality(t, res.zero_filled[i], data_range=float(t.max()))
        rows.append({"image": s.metadata.fname, **net, **{f"zf_{k}": v for k, v in zf.items()}})
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        np.save(Path(out_dir) / "reconstructions.npy", res.reconstruction.astype(np.float32))
    return {"set": Path(root).name, "rows": rows}
