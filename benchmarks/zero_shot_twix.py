"""The real 2-coil twix scan, 4x: zero-shot adaptation against every other method.

The fully sampled scan (``../shared/data/raw/siemens_gre_2coil.dat``) gives the reference:
its SENSE reconstruction (ESPIRiT maps from the fully sampled data).  It is undersampled
retrospectively with the two masks of the real-scan study (:mod:`mri_unfold.evaluation.
raw_scan`: 1-D equispaced 4x with 24 calibration lines, 2-D Poisson-disc 4x) and prepared as
``mri-unfold recon`` prepares it (ESPIRiT maps from the undersampled data's centre,
normalisation by the zero-filled peak).  Then, scored against the reference (PSNR/SSIM):

* zero-filled (RSS), CG-SENSE, L1-wavelet and TV with the automatic λ (held-out k-space);
* every bundled complex-domain model, as released (simulation-trained);
* the same models adapted to the scan (:func:`mri_unfold.training.zero_shot.adapt_to_scan`,
  from the undersampled k-space alone), with the held-out loss and PSNR after every
  validation (the PSNR is computed for this study only; adaptation never sees it).

::

    python benchmarks/zero_shot_twix.py --json benchmarks/results/2026-12-07/zs_twix.json \\
        --png docs/self_supervised_twix.png --curve-png docs/self_supervised_twix_curve.png
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from mri_unfold import metrics
from mri_unfold.atomic import atomic_write_text
from mri_unfold.cpu_allocator import retain_freed_memory
from mri_unfold.data import collate_samples
from mri_unfold.data.sources import detect_source, get_source
from mri_unfold.evaluation.raw_scan import MASKS, _prepare
from mri_unfold.figures import comparison_grid, new_figure, save_png
from mri_unfold.image_ops import center_crop
from mri_unfold.masks import make_mask
from mri_unfold.masks.split import SplitSettings
from mri_unfold.models.zoo import list_cards, pretrained
from mri_unfold.operators import KSpaceOperatorFactory
from mri_unfold.reconstruct import reconstruct_samples
from mri_unfold.shared_data import shared_root
from mri_unfold.tables import Column, format_table
from mri_unfold.training.zero_shot import AdaptSettings, ScanAdapter

FACTORY = KSpaceOperatorFactory()
SETTINGS = AdaptSettings(max_steps=150, lr=1e-4, split=SplitSettings(ratio=0.2), holdout=0.1,
                         masks_per_step=2, val_every=5, patience=6, batch_size=1)
COLUMNS = (Column("mask", min_width=32, align="<"), Column("method", min_width=40, align="<"),
           Column("psnr", "PSNR", ".2f", 7), Column("ssim", "SSIM", ".4f", 7),
           Column("seconds", "s", ".1f", 6))


def complex_models() -> list[str]:
    """The bundled complex-domain (k-space) models."""
    return [c["name"] for c in list_cards() if c["task"] == "kspace_complex"]


def _psnr_monitor(reference: np.ndarray, sample, scale: float):
    def monitor(net, step):
        b = collate_samples([sample])
        with torch.no_grad():
            x = net(FACTORY.measurements(b), FACTORY.for_batch(b)).abs()[0, 0]
        img = center_crop(x, reference.shape).numpy() * scale
        return {"psnr": metrics.psnr(reference, img)}
    return monitor


def study(path: Path, models: list[str], settings: AdaptSettings, log=print) -> dict:
    """All rows of the module doc, the adaptation curves and the images."""
    raw = get_source(detect_source(path)).read(path)[0]
    full = _prepare(raw, None)
    reference = reconstruct_samples([full], method="sense", progress=False).reconstruction[0]
    h, w = raw.kspace.shape[-2:]
    out = {"rows": [], "curves": {}, "images": {}, "settings": {
        "max_steps": settings.max_steps, "lr": settings.lr, "split": settings.split.ratio,
        "holdout": settings.holdout, "masks_per_step": settings.masks_per_step}}
    for label, (kind, kw) in MASKS.items():
        mask = np.asarray(make_mask(kind, (h, w), seed=0, **kw).mask, np.float32)
        sample = _prepare(raw, mask)
        images = {}

        def add(method, img, seconds):
            q = metrics.quality(reference, img)
            out["rows"].append({"mask": label, "method": method, **q, "seconds": seconds})
            images[method] = img
            log(f"{label}: {method}: {q['psnr']:.2f} dB")

        for method in ("zero-filled", "sense", "l1-wavelet", "tv"):
            res = reconstruct_samples([sample], method=method, progress=False)
            name = method + (f" (auto lambda {res.info['lambda']:.2g})"
                             if "lambda" in res.info else "")
            if res.info.get("fallback"):
                name += ": no lambda beats zero-filling on held-out k-space, zero-filled"
            add(name, res.reconstruction[0], 0.0)
        for name in models:
            model = pretrained(name).model
            short = name.replace("complex_ista_net_plus_", "ISTA-Net+ ")
            add(f"{short} (as released)", reconstruct_samples(
                [sample], model, progress=False).reconstruction[0], 0.0)
            adapter = ScanAdapter(settings, progress=False,
                                  monitor=_psnr_monitor(reference, sample, sample.scale))
            res = reconstruct_samples([sample], model, progress=False, adapt=adapter)
            r = adapter.results[0][1]
            add(f"{short} (zero-shot, kept step {r.best_step})", res.reconstruction[0],
                r.seconds)
            out["curves"][f"{label}: {short}"] = r.history
        best_other = max(x["psnr"] for x in out["rows"]
                         if x["mask"] == label and "zero-shot" not in x["method"])
        out["images"][label] = (mask, images, best_other)
    out["reference"] = reference
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scan", default=None, help="default: the shared twix scan")
    p.add_argument("--models", nargs="*", help="zoo models (default: every complex one)")
    p.add_argument("--steps", type=int, default=SETTINGS.max_steps)
    p.add_argument("--json", required=True)
    p.add_argument("--png", help="comparison figures: PATH stem + _<mask kind>.png")
    p.add_argument("--curve-png", help="held-out loss and PSNR against steps")
    p.add_argument("--redraw", action="store_true",
                   help="only draw --curve-png from an existing --json")
    args = p.parse_args(argv)
    if args.redraw:
        print(f"wrote {curves(json.loads(Path(args.json).read_text())['curves'], args.curve_png)}")
        return 0
    retain_freed_memory(warn=False)
    scan = Path(args.scan or shared_root() / "data" / "raw" / "siemens_gre_2coil.dat")
    settings = AdaptSettings(**{**SETTINGS.__dict__, "max_steps": args.steps})
    res = study(scan, args.models if args.models is not None else complex_models(), settings,
                log=lambda m: print(m, flush=True))
    print(format_table(res["rows"], COLUMNS))
    atomic_write_text(args.json, json.dumps({k: res[k] for k in ("rows", "curves", "settings")},
                                            indent=1))
    if args.png:
        stem = Path(args.png)
        for label, (mask, images, _) in res["images"].items():
            kind = MASKS[label][0]
            keep = {k.split(" (auto")[0]: v for k, v in images.items()
                    if k.startswith(("zero-filled", "sense", "l1-wavelet", "tv"))
                    or "8coil_4x" in k}
            comparison_grid(res["reference"], keep, mask,
                            stem.with_name(f"{stem.stem}_{kind}.png"),
                            title=f"{scan.name}: {label} (reference: fully sampled SENSE)",
                            dpi=70)
    if args.curve_png:
        curves(res["curves"], args.curve_png)
    return 0


def curves(data: dict, path) -> Path:
    """Two panels against the adaptation step: the held-out k-space loss that steers the
    adaptation, and the PSNR against the fully sampled reference that it never sees."""
    fig = new_figure(figsize=(11, 4.2), dpi=100)
    a, b = fig.subplots(1, 2)
    for key, hist in data.items():
        steps = [h["step"] for h in hist]
        a.plot(steps, [h["val_loss"] for h in hist], ".-", label=key)
        b.plot(steps, [h["psnr"] for h in hist], ".-", label=key)
    a.set(xlabel="adaptation step", ylabel="held-out k-space loss (normalised L1-L2)",
          title="what adaptation sees")
    b.set(xlabel="adaptation step", ylabel="PSNR vs fully sampled SENSE (dB)",
          title="what it achieves (never seen by it)")
    for ax in (a, b):
        ax.grid(alpha=0.3)
    b.legend(fontsize=7)
    fig.tight_layout()
    return save_png(fig, path)


if __name__ == "__main__":
    sys.exit(main())
