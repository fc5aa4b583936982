"""``mri-unfold compare`` — one image, one mask, several methods -> comparison PNG + table.

The image (PNG/TIFF, MATLAB ``im_ori``, a NIfTI slice, or ``.npy``) is normalised to
[0, 1] by its maximum, measured with a single-coil Fourier operator (centred layout, the
mask from ``--mask``/``--mask-file``), and reconstructed by each requested baseline and
checkpoint; the figure is :func:`mri_unfold.figures.comparison_grid`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..baselines import BASELINES, run_baseline
from ..checkpoints import load_checkpoint
from ..data import NiftiVolume, load_mat_image, read_image
from ..device import resolve_device
from ..errors import UserError
from ..figures import comparison_grid, image_metrics
from ..npy_files import load_npy
from ..operators import SingleCoilFourier
from ..reconstruct import reconstruct_image, require_mri_checkpoint
from ..tables import METRIC_COLUMNS, format_table

from .common import (add_command, add_mask_options, check_new_outputs, mask_flag_hints,
                     mask_spec)

NAME = "compare"
HELP = "comparison figure of baselines and checkpoints on one image"
DESCRIPTION = ("Simulate undersampled k-space from one image and write a "
               "PNG grid (ground truth, each method with PSNR/SSIM, error "
               "maps, mask) plus a metrics table.")

EXAMPLES = """examples:
  mri-unfold compare brain.png --mask radial --acceleration 5 --output cmp.png
  mri-unfold compare scan.nii.gz --slice 40 --mask-file radial_20.mat --mask-layout unshifted \\
      --baseline zero-filled --baseline l1-wavelet --baseline tv --model ckpt.safetensors \\
      --output cmp.png"""


def register(sub) -> None:
    p = add_command(sub, NAME, help=HELP, description=DESCRIPTION, examples=EXAMPLES)
    p.add_argument("image", metavar="IMAGE",
                   help="PNG/TIFF, .mat (variable im_ori), .npy, or NIfTI (with --slice)")
    p.add_argument("--slice", type=int, default=None,
                   help="NIfTI slice index along --axis (default: middle slice)")
    p.add_argument("--axis", type=int, default=2, choices=(0, 1, 2), help="NIfTI slice axis")
    add_mask_options(p)
    p.add_argument("--baseline", action="append", choices=sorted(BASELINES), default=None,
                   help="classical method(s) to run (repeatable; default: zero-filled "
                        "l1-wavelet)")
    p.add_argument("--model", action="append", default=[], metavar="NAME|CKPT",
                   help="bundled model name(s) or checkpoint(s) to run (repeatable)")
    p.add_argument("--output", required=True, metavar="PNG",
                   help="output PNG path (never an input, never an existing file without "
                        "--overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output PNG")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda")
    p.set_defaults(func=run)


def load_image(path: Path, slice_index: int | None, axis: int):
    """The image as ``(H, W)`` float32 scaled to a maximum of 1."""
    name = path.name.lower()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file")
    if slice_index is not None and not name.endswith((".nii", ".nii.gz")):
        raise UserError(f"--slice {slice_index}: {path} is a 2-D image; --slice chooses a slice "
                        "of a NIfTI volume")
    if name.endswith((".nii", ".nii.gz")):
        vol = NiftiVolume(path, axis=axis)
        k = len(vol) // 2 if slice_index is None else slice_index
        if not 0 <= k < len(vol):
            raise UserError(f"--slice {k}: {path} has slices 0..{len(vol) - 1} along axis {axis}")
        img = vol[k]
    elif name.endswith(".mat"):
        img = load_mat_image(path)
    elif name.endswith(".npy"):
        img = load_npy(path)
    else:
        img = read_image(path)
    img = np.abs(np.asarray(img, dtype=np.float32))
    if img.ndim != 2:
        raise UserError(f"{path}: expected a 2-D image, got shape {img.shape}")
    peak = float(img.max())
    if not np.isfinite(img).all() or peak == 0:
        raise UserError(f"{path}: image is empty or contains NaN/Inf")
    return img / peak


def run(args) -> int:
    if not args.output.lower().endswith(".png"):
        raise UserError(f"--output {args.output}: must end with .png")
    out, = check_new_outputs([args.output], [args.image, args.mask_file, *args.model],
                             args.overwrite)
    target = load_image(Path(args.image), args.slice, args.axis)
    spec = mask_spec(args)
    if spec is None:
        raise UserError("give --mask KIND --acceleration R or --mask-file FILE")
    with mask_flag_hints():
        mask = spec.make(target.shape)
    device = resolve_device(args.device)
    x = torch.from_numpy(target)[None, None]
    op = SingleCoilFourier(mask, real_input=True)
    y = op(x)
    recons = {name: run_baseline(name, y, op)[0].numpy()
              for name in (args.baseline or ["zero-filled", "l1-wavelet"])}
    for ckpt in args.model:
        ck = load_checkpoint(ckpt, device=device)
        require_mri_checkpoint(ck, ckpt, "compare simulates single-coil MRI k-space")
        label = f"{ck.arch} ({Path(ckpt).stem})"
        recons[label] = reconstruct_image(ck.model, target, mask,
                                          complex_model=ck.complex_model, device=device)
    rows = [{"method": name, **image_metrics(target, r, data_range=1.0)}
            for name, r in recons.items()]
    print(f"{args.image}: {target.shape[0]}x{target.shape[1]}, mask {spec.label}, "
          f"{mask.mean():.1%} sampled")
    print(format_table(rows, METRIC_COLUMNS))
    comparison_grid(target, recons, mask, out)
    print(f"wrote {out}")
    return 0
