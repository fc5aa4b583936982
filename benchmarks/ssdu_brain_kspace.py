"""Measurements only: write the brain CS-MRI slices as undersampled k-space files.

For the self-supervised experiment of docs/self_supervised.md: each ``brain_test`` slice of
``--slices`` is measured with the authors' ``radial_<ratio>.mat`` mask, ``y = B F (x / 255)``
(the ISTA-Net+ test protocol's scale), and written as ``<name>.npy``: complex64 ``(H, W)``
k-space in the centred layout, zero where the mask is 0.  Nothing else is written: no image,
no mask (the reader measures the mask from the non-zero samples), so a training run on these
files (``data.kind = "array"``, ``training.objective = "ssdu"``) has measurements and nothing
more::

    python benchmarks/ssdu_brain_kspace.py --ratio 20 --slices 11-50 --out runs/ssdu/brain20
    mri-unfold train protocols/ssdu/brain_radial20.toml --run-dir runs/ssdu/brain20_run

The output folder must be new (or empty); files are written all-or-nothing.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from mri_unfold.atomic import atomic_outputs
from mri_unfold.data.luma import list_images, read_luminance
from mri_unfold.evaluation.reproduce import mri_paths
from mri_unfold.fft import fft2
from mri_unfold.operators import load_mat_variable


def measurements(image_u8: np.ndarray, mask_centred: np.ndarray) -> np.ndarray:
    """``(H, W)`` complex64 centred k-space of ``image_u8 / 255`` at the mask's locations."""
    x = torch.from_numpy(image_u8.astype(np.float32) / np.float32(255.0)).to(torch.complex64)
    k = fft2(x[None], "centered")[0].numpy()
    return np.where(mask_centred > 0, k, 0).astype(np.complex64)


def parse_slices(text: str) -> list[int]:
    """``"11-50"`` or ``"1,3,5-7"`` -> the listed numbers (1-based slices, or ratios)."""
    out = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out += list(range(int(a), int(b) + 1)) if b else [int(a)]
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ratio", type=int, default=20, choices=(10, 20, 30, 40, 50))
    p.add_argument("--slices", default="11-50", help="brain_test slices, 1-based")
    p.add_argument("--out", required=True, help="a new folder for the .npy files")
    args = p.parse_args(argv)
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        print(f"--out {out}: exists and is not an empty folder", file=sys.stderr)
        return 2
    paths = mri_paths(args.ratio)
    mask = np.fft.fftshift(np.asarray(load_mat_variable(paths["mask"], "mask_matrix"),
                                      np.float32))
    files = list_images(paths["images"])
    chosen = [files[i - 1] for i in parse_slices(args.slices)]
    out.mkdir(parents=True, exist_ok=True)
    targets = [out / (f.stem + ".npy") for f in chosen]
    with atomic_outputs(targets) as tmps:
        for f, tmp in zip(chosen, tmps):
            with open(tmp, "wb") as fh:
                np.save(fh, measurements(read_luminance(f), mask))
    print(f"wrote {len(targets)} k-space files ({args.ratio} % radial, authors' mask) to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
