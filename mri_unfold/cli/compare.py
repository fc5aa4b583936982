"""``mri-unfold compare`` — one image, one mask, several methods -> comparison PNG + table.

The image (PNG/TIFF, MATLAB ``im_ori``, a NIfTI slice, or ``.npy``) is normalised to
[0, 1] by its maximum, measured with a single-coil Fourier operator (centred layout, the
mask from ``--mask``/``--mask-file``), and reconstructed by each requested baseline and
checkpoint; the figure is :func:`mri_unfold.figures.comparison_grid`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserError

NAME = "compare"

EXAMPLES = """examples:
  mri-unfold compare brain.png --mask radial --acceleration 5 --output cmp.png
  mri-unfold compare scan.nii.gz --slice 40 --mask-file radial_20.mat --mask-layout unshifted \\
      --baseline zero-filled --baseline l1-wavelet --baseline tv --model ckpt.safetensors \\
      --output cmp.png"""


def register(sub) -> None:
    from ..baselines import BASELINES

    p = sub.add_parser(NAME, help="comparison figure of baselines and checkpoints on one image",
                       description="Simulate undersampled k-space from one image and write a "
                                   "PNG grid (ground truth, each method with PSNR/SSIM, error "
                                   "maps, mask) plus a metrics table.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("image", metavar="IMAGE",
                   help="PNG/TIFF, .mat (variable im_ori), .npy, or NIfTI (with --slice)")
    p.add_argument("--slice", type=int, default=None,
                   help="NIfTI slice index along --axis (default: middle slice)")
    p.add_argument("--axis", type=int, default=2, choices=(0, 1, 2), help="NIfTI slice axis")
    p.add_argument("--mask", metavar="KIND", help="mask kind (mri_unfold.masks.make_mask)")
    p.add_argument("--acceleration", type=float, metavar="R")
    p.add_argument("--center-fraction", type=float, metavar="F")
    p.add_argument("--mask-file", metavar="FILE", help="mask file (.mat/.npy/.npz)")
    p.add_argument("--mask-layout", choices=("centered", "unshifted"), default="centered",
                   help="k-space layout of --mask-file (radial_*.mat masks are unshifted)")
    p.add_argument("--seed", type=int, default=0, help="mask seed (default 0)")
    p.add_argument("--baseline", action="append", choices=sorted(BASELINES), default=None,
                   help="classical method(s) to run (repeatable; default: zero-filled "
                        "l1-wavelet)")
    p.add_argument("--model", action="append", default=[], metavar="CKPT",
                   help="checkpoint(s) to run (repeatable)")
    p.add_argument("--output", required=True, metavar="PNG", help="output PNG path")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda")
    p.set_defaults(func=run)


def load_image(path: Path, slice_index: int | None, axis: int):
    """The image as ``(H, W)`` float32 scaled to a maximum of 1."""
    import numpy as np

    name = path.name.lower()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file")
    if name.endswith((".nii", ".nii.gz")):
        from ..data.nifti import NiftiVolume

        vol = NiftiVolume(path, axis=axis)
        k = len(vol) // 2 if slice_index is None else slice_index
        if not 0 <= k < len(vol):
            raise UserError(f"--slice {k}: {path} has slices 0..{len(vol) - 1} along axis {axis}")
        img = vol[k]
    elif name.endswith(".mat"):
        from ..data.image_files import load_mat_image

        img = load_mat_image(path)
    elif name.endswith(".npy"):
        img = np.load(path, allow_pickle=False)
    else:
        from ..data.image_files import read_image

        img = read_image(path)
    img = np.abs(np.asarray(img, dtype=np.float32))
    if img.ndim != 2:
        raise UserError(f"{path}: expected a 2-D image, got shape {img.shape}")
    peak = float(img.max())
    if not np.isfinite(img).all() or peak == 0:
        raise UserError(f"{path}: image is empty or contains NaN/Inf")
    return img / peak


def run(args) -> int:
    import numpy as np
    import torch

    from ..baselines import run_baseline
    from ..figures import comparison_grid, image_metrics
    from ..operators import SingleCoilFourier
    from ..reconstruct import (MaskSpec, check_output_path, format_table, model_is_complex,
                               reconstruct_volume)
    from ..training.checkpoint import load_model
    from ..training.device import resolve_device

    out = check_output_path(args.output)
    if not out.name.lower().endswith(".png"):
        raise UserError(f"--output {out}: must end with .png")
    target = load_image(Path(args.image), args.slice, args.axis)
    if args.mask and args.mask_file:
        raise UserError("give either --mask KIND or --mask-file FILE, not both")
    spec = MaskSpec(kind=args.mask, acceleration=args.acceleration,
                    center_fraction=args.center_fraction, file=args.mask_file, seed=args.seed,
                    layout=args.mask_layout)
    mask = spec.make(target.shape)
    device = resolve_device(args.device)
    x = torch.from_numpy(target)[None, None]
    op = SingleCoilFourier(mask, real_input=True)
    y = op(x)
    recons = {name: run_baseline(name, y, op)[0].numpy()
              for name in (args.baseline or ["zero-filled", "l1-wavelet"])}
    for ckpt in args.model:
        model, meta = load_model(ckpt, device=device)
        cplx = model_is_complex(model, meta)
        mop = SingleCoilFourier(mask, real_input=not cplx)
        yy = mop(x.to(torch.complex64) if cplx else x)
        rec = reconstruct_volume(yy, model, lambda idx: mop, batch_size=1, device=device,
                                 progress=False)
        label = f"{meta['arch']} ({Path(ckpt).stem})"
        recons[label] = np.abs(rec[0])
    rows = [(name, image_metrics(target, r, data_range=1.0)) for name, r in recons.items()]
    print(f"{args.image}: {target.shape[0]}x{target.shape[1]}, mask {spec.kind or spec.file}, "
          f"{mask.mean():.1%} sampled")
    print(format_table(rows))
    comparison_grid(target, recons, mask, out)
    print(f"wrote {out}")
    return 0
