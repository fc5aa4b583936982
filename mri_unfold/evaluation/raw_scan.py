"""The real-scan study of ``docs/raw_data.md``: one fully sampled raw scan (e.g. the 2-coil
Siemens GRE phantom), reconstructed fully sampled (RSS and SENSE), then retrospectively
undersampled and reconstructed with zero-filled, L1-wavelet and a network; PSNR/SSIM against
the fully sampled RSS image and comparison figures.

Each undersampling follows the pipeline of ``mri-unfold recon``: the mask zeroes k-space,
ESPIRiT maps come from the undersampled data's own fully sampled centre (24 x 24), the slice
is normalised by its zero-filled maximum and the result scaled back
(:func:`mri_unfold.reconstruct.reconstruct_samples`).  Run as a script::

    python -m mri_unfold.evaluation.raw_scan SCAN --checkpoint CKPT --figures DIR --json OUT
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from .. import metrics
from ..atomic import atomic_write_text
from ..checkpoints import load_checkpoint
from ..data import ApplyMask, Compose, EspiritSettings, EstimateCoilMaps, Normalize
from ..data.sampling import sampling_pattern
from ..data.sources import detect_source, get_source
from ..fft import ifft2
from ..figures import comparison_grid
from ..image_ops import rss
from ..masks import make_mask
from ..outputs import check_new_outputs
from ..reconstruct import reconstruct_samples

__all__ = ["MASKS", "real_scan_study"]

#: The retrospective masks: name -> make_mask arguments (seed 0).
MASKS = {"1-D equispaced 4x, 24 ACS lines": ("equispaced", {"acceleration": 4,
                                                            "center_fraction": 0.15}),
         "2-D Poisson-disc 4x": ("poisson", {"acceleration": 4, "center_fraction": 0.15})}


def _prepare(sample, mask: np.ndarray | None):
    steps = [] if mask is None else [ApplyMask(mask=mask)]
    steps += [EstimateCoilMaps(settings=EspiritSettings(calib_width=24)), Normalize()]
    return Compose(steps)(sample)


def real_scan_study(path: str | Path, model: torch.nn.Module | None = None,
                    model_name: str = "ISTA-Net+", figures: str | Path | None = None) -> dict:
    """Run the study (module doc) on slice 0 of a raw k-space file.

    Returns:
        ``{"reference": {...}, "rows": [{"mask", "method", "psnr", "ssim", "nmse",
        "psnr_vs_sense", "ssim_vs_sense", "acceleration", "acs_lines"}, ...],
        "images": {name: (H, W)}}`` (metrics against the fully sampled RSS image, and
        against the fully sampled SENSE image); PNG figures
        ``raw_data_<mask kind>.png`` in ``figures`` when given.
    """
    path = Path(path)
    sample = get_source(detect_source(path)).read(path)[0]
    target = rss(ifft2(sample.kspace), 0).numpy()
    full = _prepare(sample, None)
    sense = reconstruct_samples([full], method="sense", progress=False).reconstruction[0]
    out = {"reference": {"rss_max": float(target.max()),
                         "sense_vs_rss": metrics.quality(target, sense)},
           "rows": [], "images": {"fully sampled RSS": target, "fully sampled SENSE": sense}}
    h, w = target.shape
    for label, (kind, kw) in MASKS.items():
        mask = np.asarray(make_mask(kind, (h, w), seed=0, **kw).mask, np.float32)
        pattern = sampling_pattern(mask)
        prepared = _prepare(sample, mask)
        recons = {"zero-filled": reconstruct_samples([prepared], method="zero-filled",
                                                     progress=False).reconstruction[0],
                  "L1-wavelet": reconstruct_samples([prepared], method="l1-wavelet",
                                                    progress=False).reconstruction[0]}
        if model is not None:
            recons[model_name] = reconstruct_samples([prepared], model,
                                                     progress=False).reconstruction[0]
        for method, img in recons.items():
            vs_sense = metrics.quality(sense, img)
            out["rows"].append({"mask": label, "method": method,
                                "acceleration": round(pattern.acceleration, 3),
                                "acs_lines": pattern.acs_lines,
                                **metrics.quality(target, img),
                                "psnr_vs_sense": vs_sense["psnr"],
                                "ssim_vs_sense": vs_sense["ssim"]})
            out["images"][f"{label}: {method}"] = img
        if figures is not None:
            comparison_grid(target, recons, mask, Path(figures) / f"raw_data_{kind}.png",
                            title=f"{path.name}: {label} (reference: fully sampled RSS)")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="the real-scan study of docs/raw_data.md")
    p.add_argument("scan")
    p.add_argument("--checkpoint", help="a complex-domain k-space checkpoint")
    p.add_argument("--figures", help="folder for the comparison PNGs")
    p.add_argument("--json", help="write the metrics table here")
    args = p.parse_args(argv)
    if args.json:  # before the work: never an input, never over a folder
        check_new_outputs([args.json], [args.scan, args.checkpoint], overwrite=True,
                          option="--json")
    model = load_checkpoint(args.checkpoint).model if args.checkpoint else None
    res = real_scan_study(args.scan, model, figures=args.figures)
    table = {"reference": res["reference"], "rows": res["rows"]}
    for r in res["rows"]:
        print(f"{r['mask']:<34} {r['method']:<12} PSNR {r['psnr']:6.2f} dB  SSIM "
              f"{r['ssim']:.4f}  NMSE {r['nmse']:.5f} | vs SENSE: PSNR "
              f"{r['psnr_vs_sense']:6.2f} dB  SSIM {r['ssim_vs_sense']:.4f}")
    print(f"fully sampled SENSE vs RSS: {res['reference']['sense_vs_rss']}")
    if args.json:
        atomic_write_text(args.json, json.dumps(table, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
