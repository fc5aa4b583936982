"""PSNR change of the bf16 path against fp32 on the imported ISTA-Net+ models.

* CS-NI: Set11 at 25% (``CS_ISTA_Net_plus_layer_9_group_1_ratio_25``) with the authors'
  ``phi``/``Qinit``, evaluated by ``natural_cs.evaluate.evaluate_folder`` (PSNR on [0, 255]);
* CS-MRI: the 50 brain slices at 20% (``MRI_CS_ISTA_Net_plus_layer_9_group_1_ratio_20``,
  ``radial_20.mat``), PSNR of the [0, 1] images with data range 1.

Usage: ``python benchmarks/bf16_psnr.py [--out FILE] [--max-images N]``; prints and writes
JSON (default ``benchmarks/results/bf16_psnr.json``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from benchmarks.measure import write_json  # noqa: E402
from mri_unfold.fastpath import accelerate  # noqa: E402
from mri_unfold.models import load_official  # noqa: E402
from mri_unfold.operators import GaussianBlockCS, SingleCoilFourier  # noqa: E402
from mri_unfold.operators.block_cs import load_mat_variable  # noqa: E402
from mri_unfold.shared_data import shared_root  # noqa: E402
from natural_cs.evaluate import evaluate_folder  # noqa: E402

REF = "reference/ista_net_pytorch"


def set11(shared: Path) -> dict:
    model = load_official(shared / REF / "model/CS_ISTA_Net_plus_layer_9_group_1_ratio_25_lr_0.0001"
                          / "net_params_200.pkl")
    op = GaussianBlockCS.from_mat_files(shared / REF / "sampling_matrix/phi_0_25_1089.mat",
                                        shared / REF / "sampling_matrix/Initialization_Matrix_25.mat")
    folder = shared / "data/natural/Set11"
    fp32 = evaluate_folder(model, op, folder, progress=False)["psnr"]
    bf16 = evaluate_folder(accelerate(model, autocast="bf16", inference_mode=True), op, folder,
                           progress=False)["psnr"]
    return {"task": "Set11 25%", "psnr_fp32": fp32, "psnr_bf16": bf16, "change_db": bf16 - fp32}


def brain(shared: Path, max_images: int) -> dict:
    model = load_official(shared / REF / "model/MRI_CS_ISTA_Net_plus_layer_9_group_1_ratio_20"
                          / "net_params_200.pkl")
    mask = load_mat_variable(shared / "data/mri/masks/radial_20.mat", "mask_matrix")
    op = SingleCoilFourier(mask, layout="unshifted", real_input=True)
    fast = accelerate(model, autocast="bf16", inference_mode=True)
    files = sorted((shared / "data/mri/brain_test").glob("*.png"))[: max_images or None]
    psnr = {"fp32": [], "bf16": []}
    for f in files:
        x = torch.from_numpy(np.asarray(Image.open(f).convert("L"), np.float32) / 255.0)[None, None]
        y = op(x)
        with torch.no_grad():
            outs = {"fp32": model(y, op), "bf16": fast(y, op)}
        for k, rec in outs.items():
            mse = float((rec.clamp(0, 1) - x).square().mean())
            psnr[k].append(10 * np.log10(1.0 / mse))
    a, b = float(np.mean(psnr["fp32"])), float(np.mean(psnr["bf16"]))
    return {"task": f"brain 20% ({len(files)} slices)", "psnr_fp32": a, "psnr_bf16": b,
            "change_db": b - a}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="bf16 vs fp32 PSNR on the imported ISTA-Net+ models")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/bf16_psnr.json")
    p.add_argument("--max-images", type=int, default=0, help="brain slices to use (0: all 50)")
    args = p.parse_args(argv)
    shared = shared_root()
    rows = [set11(shared), brain(shared, args.max_images)]
    for r in rows:
        print(f"{r['task']}: fp32 {r['psnr_fp32']:.3f} dB, bf16 {r['psnr_bf16']:.3f} dB, "
              f"change {r['change_db']:+.4f} dB")
    print(f"wrote {write_json({'rows': rows}, args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
