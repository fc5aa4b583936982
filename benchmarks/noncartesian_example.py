"""The non-Cartesian example protocol's test: ISTA-Net+ vs gridding, CG-SENSE and L1-wavelet.

Every 8-bit slice of ``brain_test`` (the brain CS-MRI test set, 50 slices 256 x 256) is
scaled to [0, 1] and measured with the trained checkpoint's own operator (8x golden-angle
radial, 51 spokes x 512 samples, single coil, real images, ramp DCF:
``protocols/noncartesian_radial_ista_net_plus.toml``); then, on the same measurements
``y = Φ x``:

* ``ISTA-Net+`` — the trained network ``model(y, Φ)``;
* ``gridding`` — ``mri_unfold.baselines.zero_filled`` (adjoint with the DCF, unit DC gain);
* ``CG-SENSE`` — ``mri_unfold.baselines.sense`` (30 CG iterations on the normal equations);
* ``L1-wavelet`` — ``mri_unfold.baselines.l1_wavelet`` (SigPy ``L1WaveletRecon`` with
  ``coord=``, λ = ``--l1-lambda``, 100 iterations).

Outputs are clipped to [0, 1]; PSNR (255 scale) and SSIM (``data_range=255``) against the
uint8 slice, as the brain CS-MRI protocol (``docs/reproduction.md``).  Writes a JSON
(per-slice and mean metrics, seconds per slice, the protocol) and the comparison figure of
one slice (:func:`mri_unfold.figures.comparison_grid`; the "mask" panel is the trajectory's
sample density on the Cartesian grid).

Usage: ``python benchmarks/noncartesian_example.py CHECKPOINT [--max-images N]
[--l1-images N] [--l1-lambda L] [--slice K] [--out FILE] [--figure PNG]``.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from benchmarks.measure import write_json  # noqa: E402
from mri_unfold.baselines import l1_wavelet, sense, zero_filled  # noqa: E402
from mri_unfold.checkpoints import load_checkpoint  # noqa: E402
from mri_unfold.data.luma import list_images, read_luminance  # noqa: E402
from mri_unfold.figures import comparison_grid  # noqa: E402
from mri_unfold.metrics import psnr_255, ssim_255  # noqa: E402
from mri_unfold.shared_data import shared_root  # noqa: E402

METHODS = ("ISTA-Net+", "gridding", "CG-SENSE", "L1-wavelet")


def sample_density(op) -> np.ndarray:
    """``(H, W)`` number of trajectory samples per Cartesian k-space cell (centred)."""
    h, w = op.image_shape
    kappa = op.traj[0].double().numpy() * np.array([h, w]) / (2 * math.pi)
    counts, _, _ = np.histogram2d(kappa[:, 0], kappa[:, 1], bins=(h, w),
                                  range=((-h / 2, h / 2), (-w / 2, w / 2)))
    return counts


def reconstruct(name: str, y, op, model, l1_lambda: float) -> np.ndarray:
    """One method on ``y`` ``(1, 1, K)`` -> ``(H, W)`` float64 in [0, 1]."""
    with torch.inference_mode():
        if name == "ISTA-Net+":
            x = model(y, op)[0, 0]
        elif name == "gridding":
            x = zero_filled(y, op)[0]
        elif name == "CG-SENSE":
            x = sense(y, op)[0]
        else:
            x = l1_wavelet(y, op, lamda=l1_lambda)[0]
    return np.clip(x.abs().double().numpy(), 0.0, 1.0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--images", type=Path, default=None,
                   help="test folder (default: <shared>/data/mri/brain_test)")
    p.add_argument("--max-images", type=int, default=0, help="first N slices (0 = all)")
    p.add_argument("--l1-images", type=int, default=0,
                   help="L1-wavelet on the first N slices only (0 = all; it is the slow one)")
    p.add_argument("--l1-lambda", type=float, default=1e-3)
    p.add_argument("--slice", type=int, default=0, help="slice shown in the figure")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/noncartesian.json")
    p.add_argument("--figure", type=Path, default=ROOT / "docs/noncartesian_comparison.png")
    args = p.parse_args(argv)
    folder = args.images or shared_root() / "data/mri/brain_test"
    files = list_images(folder)[: args.max_images or None]
    ck = load_checkpoint(args.checkpoint)
    model, op = ck.model.eval(), ck.op
    rows, seconds = [], {m: [] for m in METHODS}
    shown = None
    for i, path in enumerate(tqdm(files, desc="brain_test (radial)")):
        ref = read_luminance(path)
        x = torch.from_numpy(ref.astype(np.float32) / np.float32(255))[None, None]
        with torch.inference_mode():
            y = op(x)
        row = {"image": path.name}
        recons = {}
        for m in METHODS:
            if m == "L1-wavelet" and args.l1_images and i >= args.l1_images:
                continue
            t0 = time.perf_counter()
            rec = reconstruct(m, y, op, model, args.l1_lambda)
            seconds[m].append(time.perf_counter() - t0)
            recons[m] = rec
            row[m] = {"psnr": psnr_255(ref, rec * 255), "ssim": ssim_255(ref, rec * 255)}
        rows.append(row)
        if i == args.slice:
            shown = (ref / 255.0, recons)
    means = {m: {k: float(np.mean([r[m][k] for r in rows if m in r])) for k in ("psnr", "ssim")}
             | {"slices": sum(m in r for r in rows),
                "seconds_per_slice": float(np.median(seconds[m])) if seconds[m] else None}
             for m in METHODS}
    for m, v in means.items():
        print(f"{m:12s} PSNR {v['psnr']:.2f} dB  SSIM {v['ssim']:.4f}  ({v['slices']} slices, "
              f"{v['seconds_per_slice']:.2f} s/slice)")
    info = {"checkpoint": str(args.checkpoint), "operator": ck.operator_cfg,
            "samples": op.num_samples, "image_shape": list(op.image_shape),
            "l1_lambda": args.l1_lambda, "test_folder": folder.name, "protocol": ck.protocol}
    print(f"wrote {write_json({'mean': means, 'slices': rows, 'info': info}, args.out)}")
    if shown is not None:
        target, recons = shown
        comparison_grid(target, {"gridding": recons["gridding"], **{
            m: recons[m] for m in METHODS if m in recons and m != "gridding"}},
            sample_density(op) > 0, args.figure,
            title=f"{files[args.slice].name}: golden-angle radial, {op.num_samples} samples "
                  f"(8x below Nyquist)")
        print(f"wrote {args.figure}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
