"""``mri-unfold recon`` — reconstruct a fastMRI .h5 or a NIfTI volume with a trained network.

A thin layer over :mod:`mri_unfold.reconstruct`; see ``docs/reconstruction.md``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserError

NAME = "recon"
PRECISIONS = ("fp32", "bf16", "fp16")

EXAMPLES = """examples:
  mri-unfold recon file_brain_AXT2_200_2000019.h5 --model ckpt.safetensors --output recon.h5
  mri-unfold recon knee_full.h5 --model ckpt.safetensors --mask random --acceleration 4 \\
      --center-fraction 0.08 --output recon.nii.gz
  mri-unfold recon scan.nii.gz --model ckpt.safetensors --mask radial --acceleration 5 \\
      --seed 0 --output scan_recon.nii.gz --save-zero-filled
  mri-unfold recon big_volume.h5 --model ckpt.safetensors --precision bf16 --compile
input: a fastMRI .h5 (k-space; already undersampled, or undersampled with --mask/--mask-file)
or a NIfTI magnitude volume (.nii/.nii.gz; every slice is retrospectively undersampled)."""


def register(sub) -> None:
    p = sub.add_parser(NAME, help="reconstruct a fastMRI .h5 or NIfTI volume with a checkpoint",
                       description="Reconstruct every slice of a fastMRI k-space file or a NIfTI "
                                   "magnitude volume with a trained unfolding network.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="INPUT", help="fastMRI .h5 file or NIfTI .nii/.nii.gz volume")
    p.add_argument("--model", required=True, metavar="CKPT",
                   help="mri-unfold checkpoint (.safetensors)")
    p.add_argument("--mask", metavar="KIND",
                   help="mask kind for mri_unfold.masks.make_mask (e.g. random, equispaced, "
                        "radial, poisson)")
    p.add_argument("--acceleration", type=float, metavar="R", help="acceleration for --mask")
    p.add_argument("--center-fraction", type=float, metavar="F",
                   help="fully sampled centre fraction for --mask")
    p.add_argument("--mask-file", metavar="FILE", help="mask file (.mat/.npy/.npz), (H, W)")
    p.add_argument("--mask-layout", choices=("centered", "unshifted"), default="centered",
                   help="k-space layout of --mask-file (radial_*.mat masks are unshifted)")
    p.add_argument("--seed", type=int, default=0, help="mask seed (default 0)")
    p.add_argument("--output", metavar="OUT",
                   help="output .h5 (dataset 'reconstruction') or .nii/.nii.gz (default: "
                        "INPUT stem + '_recon' with the input's format)")
    p.add_argument("--batch-size", type=int, default=8, help="slices per batch (default 8)")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N")
    p.add_argument("--axis", type=int, default=2, choices=(0, 1, 2),
                   help="NIfTI array axis to slice along (default 2)")
    p.add_argument("--save-zero-filled", action="store_true",
                   help="also write the zero-filled volume (OUT stem + '_zero_filled')")
    p.add_argument("--espirit-cache", metavar="DIR", help="cache folder for ESPIRiT coil maps")
    p.add_argument("--espirit-crop", type=float, default=0.95, metavar="C",
                   help="ESPIRiT eigenvalue crop (default 0.95; 0 keeps maps everywhere)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="fp32 (default); bf16 (CPU/CUDA) or fp16 (CUDA only): the network's "
                        "convolutions under autocast, the operator (FFTs, coil maps) in "
                        "fp32/complex64")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the network (first call compiles for ~20-50 s on CPU; "
                        "falls back to eager with a warning if compiling fails)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def _kind_of(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        return "nifti"
    if name.endswith((".h5", ".hdf5")):
        return "h5"
    raise UserError(f"{path}: unsupported input (expected a fastMRI .h5 or a NIfTI .nii/.nii.gz)")


def _with_suffix(path: Path, tag: str) -> Path:
    """``a/b.nii.gz`` + ``_recon`` -> ``a/b_recon.nii.gz``."""
    name = path.name
    for ext in (".nii.gz", ".nii", ".hdf5", ".h5"):
        if name.lower().endswith(ext):
            return path.with_name(name[: -len(ext)] + tag + name[-len(ext):])
    return path.with_name(name + tag)


def _write(result, stack, out: Path) -> None:
    from ..reconstruct import write_fastmri_h5, write_nifti_like

    if _kind_of(out) == "h5":
        write_fastmri_h5(stack, out)
    elif result.source is not None:
        write_nifti_like(stack, result.source, out)
    else:  # fastMRI input written as NIfTI: identity affine, slices along the last axis
        _write_plain_nifti(stack, out)


def _write_plain_nifti(stack, out: Path) -> None:
    import nibabel as nib
    import numpy as np

    from ..atomic import atomic_output

    vol = np.ascontiguousarray(np.moveaxis(np.asarray(stack, np.float32), 0, -1))
    with atomic_output(out) as tmp:
        nib.save(nib.Nifti1Image(vol, np.eye(4)), tmp)


def _fast_model(model, precision: str, compile_: bool):
    """``model`` wrapped with :func:`mri_unfold.fastpath.accelerate` for ``--precision`` /
    ``--compile`` (unchanged for fp32 without compiling)."""
    from .. import fastpath

    if precision == "fp32" and not compile_:
        return model
    path = fastpath.FastPath(autocast=None if precision == "fp32" else precision,
                             compile=compile_)
    return fastpath.accelerate(model, path)


def run(args) -> int:
    from ..reconstruct import (MaskSpec, check_output_path, format_table, model_is_complex,
                               reconstruct_fastmri, reconstruct_nifti)
    from ..training.checkpoint import load_model
    from ..training.device import resolve_device

    src = Path(args.input)
    kind = _kind_of(src)
    if not src.is_file():
        raise FileNotFoundError(f"{src}: input file not found")
    out = Path(args.output) if args.output else _with_suffix(src, "_recon")
    _kind_of(out)
    check_output_path(out)
    zf_out = _with_suffix(out, "_zero_filled") if args.save_zero_filled else None
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
    mask = None
    if args.mask or args.mask_file:
        if args.mask and args.mask_file:
            raise UserError("give either --mask KIND or --mask-file FILE, not both")
        mask = MaskSpec(kind=args.mask, acceleration=args.acceleration,
                        center_fraction=args.center_fraction, file=args.mask_file,
                        seed=args.seed, layout=args.mask_layout)
    elif kind == "nifti":
        raise UserError("a NIfTI input is undersampled retrospectively: give --mask KIND "
                        "--acceleration R or --mask-file FILE")
    device = resolve_device(args.device)
    if args.precision == "fp16" and device.type != "cuda":
        raise UserError(f"--precision fp16 needs a CUDA device (running on {device}); use "
                        "--precision bf16 or fp32")
    model, meta = load_model(args.model, device=device)
    cplx = model_is_complex(model, meta)
    model = _fast_model(model, args.precision, args.compile)
    common = dict(complex_model=cplx, batch_size=args.batch_size, device=device,
                  progress=not args.no_progress, pad_last_batch=args.compile)
    if kind == "h5":
        res = reconstruct_fastmri(src, model, mask=mask, espirit_cache=args.espirit_cache,
                                  espirit_crop=args.espirit_crop,
                                  **common)
    else:
        res = reconstruct_nifti(src, model, mask, axis=args.axis, **common)
    _write(res, res.reconstruction, out)
    print(f"wrote {out}  ({res.reconstruction.shape[0]} slices of "
          f"{res.reconstruction.shape[1]}x{res.reconstruction.shape[2]}, float32 magnitude)")
    if zf_out is not None:
        _write(res, res.zero_filled, zf_out)
        print(f"wrote {zf_out}  (zero-filled)")
    info = res.info
    seed = f", seed {info['mask_seed']}" if info.get("mask_seed") is not None else ""
    print(f"input {src}: {info['slices']} slices, sampled fraction "
          f"{info['sampled_fraction']:.3f}{seed}; model {meta['arch']} "
          f"({'complex' if cplx else 'real'} images) on {device}, {args.precision}"
          f"{', torch.compile' if args.compile else ''}")
    if res.metrics:
        print("metrics vs the reference (per volume, data_range = reference max):")
        print(format_table([(f"{meta['arch']}", res.metrics["network"]),
                            ("zero-filled", res.metrics["zero-filled"])]))
    else:
        print("no reference image in the input: no metrics")
    return 0
