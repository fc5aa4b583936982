"""``mri-unfold recon`` — reconstruct raw k-space (fastMRI, ISMRMRD, twix, BART, arrays), a NIfTI
volume or a DICOM series with a trained network or a classical method, and score it.

A thin layer over :mod:`mri_unfold.reconstruct`; see ``docs/reconstruction.md``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .. import fastpath
from ..atomic import atomic_outputs
from ..checkpoints import load_checkpoint
from ..data import NiftiVolume
from ..data.sources import detect_source, get_source, source_kinds
from ..data.sources.sniff import hdf5_keys
from ..device import resolve_device
from ..errors import UserError
from ..operators import NonCartesianFourier
from ..precision import PRECISIONS, needs_cuda
from ..reconstruct import (AUTO_COMPILE_AFTER_S, MASK_CHECKPOINT_KINDS, METHODS, MaskSpec, TrajectorySpec, mask_of_checkpoint, output_format,
                           reconstruct_dicom, reconstruct_kspace_file, reconstruct_nifti,
                           require_mri_checkpoint, with_tag,
                           write_fastmri_h5, write_nifti_like, write_npy, write_plain_nifti)
from ..tables import METRIC_COLUMNS, format_table
from . import recon3d
from . import recon_adapt as zs
from . import recon_dicom as dcm
from . import recon_scores as sc
from .read_options import add_coil_options, add_read_options, coil_compression, read_options

from .common import (add_command, add_mask_options, check_new_outputs, mask_flag_hints,
                     mask_spec, refuse_non_finite)

NAME = "recon"
#: Inputs that are images, undersampled retrospectively (a simulation).
IMAGE_KINDS = ("nifti", "dicom")
HELP = ("reconstruct k-space (fastMRI, ISMRMRD, twix, BART, arrays), a NIfTI volume or a "
        "DICOM series")
DESCRIPTION = ("Reconstruct every slice of a k-space file (fastMRI, ISMRMRD, Siemens twix, BART, "
               "plain arrays), a NIfTI volume or a DICOM series with a trained unfolding "
               "network or a classical method; write .h5, NIfTI, .npy or DICOM. A fully "
               "sampled scan undersampled with --mask is scored (PSNR/SSIM/NMSE) against its "
               "own fully sampled image.")

EXAMPLES = """examples:
  mri-unfold recon file_brain_AXT2_200_2000019.h5 --model ckpt.safetensors --output recon.h5
  mri-unfold recon knee_full.h5 --model ckpt.safetensors --mask random --acceleration 4 \\
      --center-fraction 0.08 --output recon.nii.gz
  mri-unfold recon scan.nii.gz --model ckpt.safetensors --mask radial --acceleration 5 \\
      --seed 0 --output scan_recon.nii.gz --save-zero-filled
  mri-unfold recon big_volume.h5 --model ckpt.safetensors --precision bf16 --compile
  mri-unfold recon scan.nii.gz --model radial.safetensors --trajectory golden-radial \\
      --acceleration 8 --output scan_radial.nii.gz
  mri-unfold recon dicom_folder/ --series 3 --model ista_net_plus_radial20 --mask radial \\
      --acceleration 5 --output recon_series/ --format dicom
  mri-unfold recon meas_full.dat --model complex_ista_net_plus_8coil_4x --mask equispaced \\
      --acceleration 4 --reference sense --metrics scores.json --coils 8
  mri-unfold recon vol.nii.gz --method l1-wavelet --mask radial --acceleration 5
input: k-space (fastMRI .h5, ISMRMRD, twix, BART, arrays; already undersampled, or undersampled
with --mask/--mask-file), a NIfTI magnitude volume (.nii/.nii.gz) or a DICOM series (a
folder or files); NIfTI and DICOM slices are retrospectively undersampled."""


def register(sub) -> None:
    p = add_command(sub, NAME, help=HELP, description=DESCRIPTION, examples=EXAMPLES)
    p.add_argument("input", metavar="INPUT", nargs="+",
                   help="k-space file (fastMRI/ISMRMRD .h5, Siemens twix .dat, BART .cfl/.hdr, "
                        ".npy/.mat/.h5 array), NIfTI .nii/.nii.gz volume, or DICOM (a folder "
                        "or several files)")
    p.add_argument("--model", metavar="NAME|CKPT",
                   help="the network: a bundled model name ('mri-unfold models') or an "
                        "mri-unfold checkpoint (.safetensors)")
    p.add_argument("--method", choices=METHODS,
                   help="without --model: a classical method (default zero-filled: coil images "
                        "combined by RSS; sense: CG-SENSE with ESPIRiT maps)")
    p.add_argument("--lambda", dest="lamda", default="auto", metavar="auto|VALUE",
                   help="l1-wavelet/tv: the regularisation weight relative to a zero-filled "
                        "peak of 1, or auto (default): chosen for this scan by the k-space loss "
                        "on held-out measured samples")
    add_mask_options(p)
    p.add_argument("--trajectory", metavar="KIND",
                   help="NIfTI input: simulate non-Cartesian k-space along radial, "
                        "golden-radial, spiral or a trajectory file (.npy in radians, ISMRMRD "
                        ".h5), with --acceleration R relative to Nyquist (default for a "
                        "non-Cartesian checkpoint: the trajectory it was trained with)")
    p.add_argument("--dcf", choices=("auto", "ramp", "pipe-menon", "none"), default="auto",
                   help="density compensation for --trajectory (default auto: ramp for radial, "
                        "Pipe-Menon otherwise)")
    add_read_options(p)
    add_coil_options(p)
    p.add_argument("--output", metavar="OUT",
                   help="output .h5 (dataset 'reconstruction'), .nii/.nii.gz, .npy or a "
                        "DICOM folder (--format dicom) (default: INPUT stem + '_recon' with "
                        "the input's format); never an input, never an existing file without "
                        "--overwrite")
    p.add_argument("--batch-size", type=int, default=8, help="slices per batch (default 8)")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N")
    p.add_argument("--axis", type=int, default=2, choices=(0, 1, 2),
                   help="NIfTI array axis to slice along (default 2)")
    p.add_argument("--save-zero-filled", action="store_true",
                   help="also write the zero-filled volume (OUT stem + '_zero_filled')")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing output files (never an input)")
    p.add_argument("--keep-dtype", action="store_true",
                   help="NIfTI output in the input volume's data type (rounded, clipped) "
                        "instead of float32")
    p.add_argument("--espirit-cache", metavar="DIR", help="cache folder for ESPIRiT coil maps")
    p.add_argument("--espirit-crop", type=float, default=0.95, metavar="C",
                   help="ESPIRiT eigenvalue crop (default 0.95; 0 keeps maps everywhere)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="fp32 (default); bf16 (CPU/CUDA) or fp16 (CUDA only): the network's "
                        "convolutions under autocast, the operator (FFTs, coil maps) in "
                        "fp32/complex64")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile the network (--compile: always; --no-compile: never; "
                        "default: only when timing the first batch shows more than "
                        f"{AUTO_COMPILE_AFTER_S:.0f} s of eager work left — compiling costs "
                        "20-60 s on a CPU; compiled code is cached across runs; falls back to "
                        "eager with a warning if compiling fails)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    dcm.add_dicom_options(p)
    sc.add_score_options(p)
    zs.add_adapt_options(p)
    recon3d.add_volume_options(p)
    p.set_defaults(func=run)


def input_kind(path: Path) -> str:
    """The registered data source of ``path``, recognised by content: a k-space source
    (``fastmri``, ...) or ``nifti`` (an image volume, undersampled by simulation).

    Raises:
        FileNotFoundError: missing file.  UserError: a format ``recon`` does not read, with
            what the file looks like.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path}: input file not found")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: empty file (0 bytes)")
    kind = detect_source(path)
    if kind == "nifti" or (kind is not None and get_source(kind).yields == "kspace"):
        return kind
    keys = hdf5_keys(path)
    if keys is not None:
        raise UserError(f"{path}: no 'kspace' dataset (not a fastMRI k-space file); found "
                        f"{sorted(keys)}" if "kspace" not in keys else
                        f"{path}: HDF5 file with 'kspace' but no 'ismrmrd_header' (not a "
                        f"fastMRI file); found {sorted(keys)}")
    if path.name.lower().endswith((".h5", ".hdf5")):
        raise UserError(f"{path}: not a readable HDF5 file (truncated or corrupt?)")
    if path.name.lower().endswith((".nii", ".nii.gz")):
        raise UserError(f"{path}: not a readable NIfTI file (no NIfTI header; truncated or "
                        "corrupt?)")
    if path.name.lower().endswith(".dat"):
        raise UserError(f"{path}: not a readable Siemens twix file (no twix header; truncated "
                        "or corrupt?)")
    kspace_kinds = [k for k in source_kinds() if get_source(k).yields == "kspace"]
    raise UserError(f"{path}: unsupported input (expected k-space of a registered format: "
                    f"{', '.join(kspace_kinds)}; or a NIfTI .nii/.nii.gz volume)")


def _write(result, stack, fmt: str, path: Path, keep_dtype: bool) -> None:
    if fmt == "h5":
        write_fastmri_h5(stack, path)
    elif fmt == "npy":
        write_npy(stack, path)
    elif isinstance(result.source, NiftiVolume):
        write_nifti_like(stack, result.source, path, keep_dtype=keep_dtype)
    else:  # k-space input as NIfTI: slices along the last axis, the header's affine if known
        write_plain_nifti(stack, path, affine=result.info.get("affine"))


def write_outputs(result, outputs: list[Path], keep_dtype: bool) -> str:
    """Write the reconstruction (and the zero-filled volume) all-or-nothing; returns the
    description of what was written (dtype)."""
    stacks = [result.reconstruction, result.zero_filled][:len(outputs)]
    refuse_non_finite(stacks)
    with atomic_outputs(outputs) as tmps:
        for stack, out, tmp in zip(stacks, outputs, tmps):
            _write(result, stack, output_format(out), tmp, keep_dtype)
    if keep_dtype and isinstance(result.source, NiftiVolume):
        return f"{result.source.image.get_data_dtype()} like the input"
    return "float32"


def _fast_model(model, precision: str, compile_: bool):
    """``model`` wrapped with :func:`mri_unfold.fastpath.accelerate` for ``--precision`` /
    ``--compile`` (unchanged for fp32 without compiling)."""
    if precision == "fp32" and not compile_:
        return model
    path = fastpath.FastPath(autocast=None if precision == "fp32" else precision,
                             compile=bool(compile_))
    return fastpath.accelerate(model, path)


def _outputs(args, src: Path) -> list[Path]:
    out = args.output if args.output else str(with_tag(src, "_recon"))
    if output_format(out.rstrip("/")) is None:
        raise UserError(f"--output {out}: unsupported output (expected .h5, .nii/.nii.gz or "
                        ".npy)")
    outs = [out] + ([with_tag(Path(out), "_zero_filled")] if args.save_zero_filled else [])
    return check_new_outputs(outs, [src, args.model, args.mask_file], args.overwrite)


def _network(args, device, kind: str, src: Path):
    """``(model, label, complex_model, checkpoint)`` or ``(None, method, True, None)``; with
    ``--adapt`` the plain network (the adapter wraps the adapted ones for inference)."""
    if args.model and args.method:
        raise UserError("give either --model CKPT or --method METHOD, not both")
    if getattr(args, "arch", None):  # --adapt from scratch (zs.check_adapt_args); serve has none
        cplx = kind not in IMAGE_KINDS
        return zs.fresh_network(args, cplx, device), f"{args.arch} (new)", cplx, None
    if not args.model:
        return None, args.method or "zero-filled", True, None
    ck = load_checkpoint(args.model, device=device)
    require_mri_checkpoint(ck, args.model, f"it cannot reconstruct {src}")
    adapting = getattr(args, "adapt", False)
    model = ck.model if adapting else _fast_model(ck.model, args.precision, args.compile)
    return model, ck.arch, ck.complex_model, ck


def _method_options(args) -> dict:
    """``{"lamda": "auto" | float}`` for the methods with a regularisation weight."""
    if args.lamda == "auto" or args.method not in ("l1-wavelet", "tv", "l1-wavelet-fista"):
        return {}
    try:
        value = float(args.lamda)
    except ValueError:
        value = float("nan")
    if not (value > 0 and value < float("inf")):
        raise UserError(f"--lambda {args.lamda}: expected 'auto' or a number > 0")
    return {"lamda": value}


def _trajectory(args, kind: str, ck) -> TrajectorySpec | None:
    """The non-Cartesian simulation of a NIfTI input: ``--trajectory`` (with
    ``--acceleration``), else the trajectory of a non-Cartesian checkpoint without mask flags,
    else None."""
    if args.trajectory:
        if kind not in IMAGE_KINDS:
            raise UserError("--trajectory simulates non-Cartesian k-space from NIfTI/DICOM "
                            f"images; this input is {kind} k-space")
        if args.mask or args.mask_file:
            raise UserError("give either --trajectory or --mask/--mask-file, not both")
        if args.acceleration is None:
            raise UserError(f"--trajectory {args.trajectory} needs --acceleration R (relative "
                            "to Nyquist)")
        return TrajectorySpec(args.trajectory, args.acceleration, dcf=args.dcf)
    if (kind in IMAGE_KINDS and ck is not None and isinstance(ck.op, NonCartesianFourier)
            and not (args.mask or args.mask_file)):
        return TrajectorySpec.of_checkpoint(ck.operator_cfg, ck.op)
    return None


def _mask(args, kind: str, ck, src: Path, volume=None) -> MaskSpec | None:
    spec = mask_spec(args)
    if spec is not None or kind not in IMAGE_KINDS:
        return spec
    if ck is None or ck.operator_cfg.get("kind") not in MASK_CHECKPOINT_KINDS:
        raise UserError(f"a {kind} image input is undersampled retrospectively: give --mask "
                        "KIND --acceleration R or --mask-file FILE")
    shape = dcm.slice_shape(volume) if volume is not None else \
        NiftiVolume(src, axis=args.axis).slices().shape[-2:]
    try:
        return mask_of_checkpoint(ck.operator_cfg, ck.op, shape)
    except UserError as e:
        raise UserError(f"{args.model}: {e} (--mask / --mask-file)") from e


def run(args) -> int:
    src, dicom_in = dcm.dicom_input(args)
    zs.check_adapt_args(args)
    kind = "dicom" if dicom_in else input_kind(src)
    if recon3d.wants_3d(args, kind, src):   # whole 3-D scans: docs/volumes.md
        return recon3d.run(args, src, kind, _outputs, _network)
    to_dicom = dcm.wants_dicom_output(args, dicom_in is not None)
    outputs = dcm.dicom_outputs(args, src, dicom_in) if to_dicom else _outputs(args, src)
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
    if not 0 <= args.espirit_crop < 1:
        raise UserError(f"--espirit-crop must be in [0, 1), got {args.espirit_crop}")
    device = resolve_device(args.device)
    if needs_cuda(args.precision, device):
        raise UserError(f"--precision fp16 needs a CUDA device (running on {device}); use "
                        "--precision bf16 or fp32")
    model, label, cplx, ck = _network(args, device, kind, src)
    volume = dcm.read_dicom(args, dicom_in) if dicom_in else None
    traj = _trajectory(args, kind, ck)
    mask = None if traj is not None else _mask(args, kind, ck, src, volume)
    adapter = zs.adapter(args, device, wrap=lambda m: _fast_model(m, args.precision,
                                                                  args.compile))
    saved = check_new_outputs(zs.adapted_outputs(args), [src, args.model], args.overwrite,
                              "--save-adapted")
    reference, compress = sc.reference_of(args, kind, IMAGE_KINDS), coil_compression(args, kind)
    scores = sc.metrics_outputs(args, [src, args.model, args.mask_file, *outputs])

    def adapt(net, samples, factory):  # per-slice checkpoint names are known only now
        saved[:] = check_new_outputs(zs.adapted_outputs(args, len(samples)), [src, args.model],
                                     args.overwrite, "--save-adapted")
        return adapter(net, samples, factory)

    common = dict(complex_model=cplx, batch_size=args.batch_size, device=device,
                  progress=not args.no_progress, pad_last_batch=bool(args.compile),
                  auto_compile=args.compile is None and model is not None and not args.adapt,
                  adapt=adapt if adapter is not None else None)
    with mask_flag_hints():
        if kind == "nifti":
            res = reconstruct_nifti(src, model, mask, trajectory=traj, axis=args.axis,
                                    method=None if model else label,
                                    method_options=_method_options(args), **common)
        elif kind == "dicom":
            res = reconstruct_dicom(dicom_in, model, mask, trajectory=traj, volume=volume,
                                    method=None if model else label,
                                    method_options=_method_options(args), **common)
        else:
            res = reconstruct_kspace_file(src, kind, model, method=None if model else label,
                                          mask=mask, espirit_cache=args.espirit_cache,
                                          espirit_crop=args.espirit_crop,
                                          read_options=read_options(args, kind),
                                          reference=reference, compress=compress,
                                          method_options=_method_options(args), **common)
    res = sc.score_given_image(res, reference, kind)
    with atomic_outputs(saved + scores) as tmps:  # weights, scores: with the images or not
        if scores:
            sc.write_metrics(tmps[-1], res, label, src)
        if saved:
            zs.save_adapted(tmps, adapter, ck, args, str(src))
        if to_dicom:
            prov = dcm.provenance(args, ck, label, res, kind)
            dtype = dcm.write_dicom_outputs(res, outputs, args, prov)
        else:
            dtype = write_outputs(res, outputs, args.keep_dtype)
    r = res.reconstruction
    print(f"wrote {outputs[0]}  ({r.shape[0]} slices of {r.shape[1]}x{r.shape[2]}, {dtype} "
          "magnitude)")
    if len(outputs) > 1:
        print(f"wrote {outputs[1]}  (zero-filled)")
    for path in saved:
        print(f"wrote {path}  (adapted weights)")
    if adapter is not None:
        print(zs.describe(adapter))
    _report(res, src, kind, label, model is not None, cplx, device, args)
    return 0


def _report(res, src, kind, label, network: bool, cplx: bool, device, args) -> None:
    info = res.info
    for path, reason in info.get("skipped_files") or []:
        print(f"skipped {path}: {reason}")
    what = (f"model {label} ({'complex' if cplx else 'real'} images)" if network
            else f"method {label}")
    if info.get("lambda") is not None:
        how = ("chosen by the held-out k-space loss on slices "
               f"{', '.join(map(str, info['lambda_slices']))}" if "lambda_losses" in info
               else "given")
        what += f" (lambda {info['lambda']:g}, {how})"
        if info.get("fallback"):
            print(f"note: no lambda predicts the held-out k-space better than zero-filling "
                  f"(best loss {min(info['lambda_losses'].values()):.3f}, zero-filled "
                  f"{info['zero_filled_loss']:.3f}): {label} cannot resolve this undersampling;"
                  f" the output is the zero-filled image")
    print(f"input {src} ({kind}): {info['slices']} slices, {sc.sampling_line(info, args)}; "
          f"{what} on {device}, {args.precision}{', torch.compile' if args.compile else ''}")
    if res.metrics:
        print(f"metrics vs the reference ({info.get('reference') or 'the input image'}; per "
              "volume, data_range = reference max):")
        print(format_table(sc.metric_rows(res, label), METRIC_COLUMNS))
    else:
        print("no reference image in the input: no metrics")
