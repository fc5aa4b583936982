"""``mri-unfold recon --ndim 3``: whole 3-D scans — a NIfTI volume simulated into 3-D k-space
(ky–kz mask, readout along ``--readout-axis``) or a 3-D raw scan (detected from its
encoding) — reconstructed whole and written as one volume with its geometry.

A thin layer over :mod:`mri_unfold.reconstruct.volume_inputs`; ``recon`` hands over here
(:func:`wants_3d`) and passes its own helpers (outputs, network loading), so the 2-D paths
are untouched.  See ``docs/volumes.md``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..atomic import atomic_outputs
from ..data import NiftiVolume, save_like
from ..device import resolve_device
from ..errors import UserError
from ..precision import needs_cuda
from ..reconstruct import (MASK_CHECKPOINT_KINDS, MaskSpec, VolumeSettings, output_format,
                           reconstruct_nifti_3d, reconstruct_raw_3d, write_fastmri_h5,
                           write_npy, write_volume_nifti)
from ..reconstruct.volume3d import COIL_MAPS
from ..tables import METRIC_COLUMNS, format_table
from ..data.raw_volumes import is_3d_scan
from .common import mask_flag_hints, mask_spec, refuse_non_finite

__all__ = ["add_volume_options", "wants_3d", "run"]

#: Checkpoints whose stored mask recon reuses in ky-kz when its shape fits.
KYKZ_MASK_KINDS = (*MASK_CHECKPOINT_KINDS, "learned_kspace_mask")
_FLAGS = ("readout_axis", "sim_coils", "acs", "elliptical", "coil_maps", "chunk", "complex_output",
          "noise_std")


def add_volume_options(p: argparse.ArgumentParser) -> None:
    """The 3-D flags of ``recon``."""
    g = p.add_argument_group("3-D scans (--ndim 3)")
    g.add_argument("--ndim", type=int, choices=(2, 3), default=None,
                   help="2: slice by slice; 3: a whole 3-D scan (ky-kz mask, readout "
                        "positions as 2-D problems, classical methods in 3-D). Default: 3 for "
                        "raw scans with a 3-D encoding, else 2")
    g.add_argument("--readout-axis", type=int, choices=(0, 1, 2), default=None,
                   help="NIfTI input: the array axis of the readout (default 0); the other "
                        "two are ky, kz")
    g.add_argument("--sim-coils", type=int, default=None, metavar="C",
                   help="NIfTI input: simulated birdcage coils (default 8; 1 = single coil); "
                        "--coils N compresses the coils of a raw scan")
    g.add_argument("--acs", nargs=2, type=int, default=None, metavar=("KY", "KZ"),
                   help="fully sampled ky-kz block of --mask (default 24 24)")
    g.add_argument("--elliptical", action="store_true",
                   help="--mask: elliptical scanning in ky-kz")
    g.add_argument("--partial-fourier", type=float, default=None, metavar="F",
                   help="--mask: fraction of kz acquired (0.5..1, default 1)")
    g.add_argument("--coil-maps", choices=COIL_MAPS, default=None,
                   help="multi-coil maps: ESPIRiT per readout position (default), 3-D ESPIRiT, "
                        "or the simulation's own maps (given)")
    g.add_argument("--chunk", type=int, default=None, metavar="N",
                   help="readout positions in memory at once (default 32)")
    g.add_argument("--complex-output", action="store_true",
                   help="write the complex image (complex64 NIfTI) instead of the magnitude")
    g.add_argument("--noise-std", type=float, default=None, metavar="S",
                   help="NIfTI input: complex Gaussian k-space noise, relative to the volume "
                        "peak (default 0)")


def wants_3d(args, kind: str, src: Path) -> bool:
    """Whether ``recon`` reconstructs a whole 3-D scan: ``--ndim 3``, or a raw k-space input
    with a 3-D encoding (unless ``--ndim 2``).

    Raises:
        UserError: 3-D flags without ``--ndim 3`` on a 2-D input, ``--ndim 3`` on DICOM or a
            2-D k-space file.
    """
    given = [f for f in _FLAGS if getattr(args, f, None) not in (None, False)]
    if getattr(args, "partial_fourier", None) is not None:
        given.append("partial_fourier")
    if args.ndim == 2:
        if given:
            raise UserError(f"--{given[0].replace('_', '-')} is for 3-D scans (--ndim 3)")
        return False
    if kind == "dicom":
        if args.ndim == 3:
            raise UserError("--ndim 3 takes a NIfTI volume or a 3-D raw scan, not a DICOM "
                            "series")
        return False
    if kind == "nifti":
        if args.ndim != 3 and given:
            raise UserError(f"--{given[0].replace('_', '-')} is for 3-D scans: add --ndim 3")
        return args.ndim == 3
    three = is_3d_scan(kind, src)
    if args.ndim == 3 and not three:
        raise UserError(f"{src}: --ndim 3 needs a 3-D scan, but the file's encoding is 2-D "
                        "(one partition)")
    if not three and given:
        raise UserError(f"--{given[0].replace('_', '-')} is for 3-D scans; {src} is 2-D")
    return three


def _settings(args, kind: str) -> VolumeSettings:
    if kind != "nifti":
        for flag in ("readout_axis", "sim_coils", "noise_std"):
            if getattr(args, flag) is not None:
                raise UserError(f"--{flag.replace('_', '-')} is for NIfTI volumes simulated "
                                "into 3-D k-space; a raw scan has its own encoding")
    try:
        return VolumeSettings(
            readout_axis=0 if args.readout_axis is None else args.readout_axis,
            coils=8 if args.sim_coils is None else args.sim_coils,
            acs=tuple(args.acs) if args.acs else (24, 24), elliptical=args.elliptical,
            partial_fourier=1.0 if args.partial_fourier is None else args.partial_fourier,
            maps=args.coil_maps or "espirit", chunk=32 if args.chunk is None else args.chunk,
            noise_std=0.0 if args.noise_std is None else args.noise_std,
            espirit_crop=args.espirit_crop, espirit_cache=args.espirit_cache)
    except UserError as e:
        raise UserError(f"{e} (--readout-axis, --coils, --chunk, --coil-maps, --noise-std)") \
            from e


def _checkpoint_mask(args, ck):
    """A ky–kz mask stored in the checkpoint (``--mask`` absent), as a MaskSpec, or None."""
    if ck is None or ck.operator_cfg.get("kind") not in KYKZ_MASK_KINDS:
        return None
    m = getattr(ck.op, "mask", None)
    if m is None:
        return None
    return MaskSpec(array=np.ascontiguousarray(m.detach().cpu().numpy().astype(np.float32)))


def run(args, src: Path, kind: str, outputs_of, network_of) -> int:
    """``recon`` of a 3-D scan; ``outputs_of(args, src)`` and ``network_of(args, device, kind,
    src)`` are ``recon``'s own helpers."""
    if getattr(args, "adapt", False):
        raise UserError("--adapt (scan-specific fine-tuning) is for 2-D reconstructions; it is "
                        "not available with --ndim 3")
    if not 0 <= args.espirit_crop < 1:
        raise UserError(f"--espirit-crop must be in [0, 1), got {args.espirit_crop}")
    outputs = outputs_of(args, src)
    if args.complex_output and any(output_format(o) != "nifti" for o in outputs):
        raise UserError("--complex-output writes complex64 NIfTI: give an --output ending in "
                        ".nii or .nii.gz")
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
    device = resolve_device(args.device)
    if needs_cuda(args.precision, device):
        raise UserError(f"--precision fp16 needs a CUDA device (running on {device}); use "
                        "--precision bf16 or fp32")
    settings = _settings(args, kind)
    model, label, cplx, ck = network_of(args, device, "3-D scan", src)
    mask = mask_spec(args) or _checkpoint_mask(args, ck)
    common = dict(batch_size=args.batch_size, device=device, progress=not args.no_progress,
                  keep_complex=args.complex_output, pad_last_batch=bool(args.compile),
                  auto_compile=args.compile is None and model is not None)
    method = None if model is not None else label
    with mask_flag_hints():
        if kind == "nifti":
            if mask is None:
                raise UserError("a NIfTI volume is undersampled retrospectively in ky-kz: give "
                                "--mask KIND --acceleration R (KIND: poisson, gaussian2d, "
                                "random2d, caipi) or --mask-file FILE")
            res = reconstruct_nifti_3d(src, model, mask, method=method, settings=settings,
                                       complex_model=cplx, **common)
        else:
            res = reconstruct_raw_3d(kind, src, model, mask=mask, method=method,
                                     settings=settings, complex_model=cplx, **common)
    _write(res, outputs, args.complex_output, args.keep_dtype)
    shape = res.source.shape[:3] if isinstance(res.source, NiftiVolume) else \
        res.reconstruction.shape
    what = "complex64" if args.complex_output else "float32 magnitude"
    print(f"wrote {outputs[0]}  (3-D volume {'x'.join(map(str, shape))}, {what})")
    if len(outputs) > 1:
        print(f"wrote {outputs[1]}  (zero-filled)")
    _report(res, src, kind, label, model is not None, device, args)
    return 0


def _write(res, outputs: list[Path], complex_output: bool, keep_dtype: bool) -> None:
    first = res.complex_image if complex_output else res.reconstruction
    stacks = [first, res.zero_filled][:len(outputs)]
    refuse_non_finite(stacks)
    with atomic_outputs(outputs) as tmps:
        for stack, out, tmp in zip(stacks, outputs, tmps):
            fmt = output_format(out)
            if fmt == "h5":
                write_fastmri_h5(stack, tmp)
            elif fmt == "npy":
                write_npy(stack, tmp)
            elif isinstance(res.source, NiftiVolume):
                full = res.source.volume_from_slices(stack)
                full = full[..., None] if len(res.source.shape) == 4 else full
                dtype = np.complex64 if np.iscomplexobj(stack) else \
                    (None if keep_dtype else np.float32)
                save_like(full, res.source, tmp, dtype=dtype)
            else:
                write_volume_nifti(stack, tmp, affine=res.info.get("affine"))


def _stats(p: dict, name: str) -> str:
    s = p[f"{name}_stats"]
    return f"{s['mean']:.3f} [{s['ci_low']:.3f}, {s['ci_high']:.3f}]"


def _report(res, src, kind, label, network: bool, device, args) -> None:
    info = res.info
    seed = ""
    if info.get("mask_seed") is not None:
        seed = f", mask seed {info['mask_seed']} ({info.get('mask_seed_source') or 'given'})"
    what = f"model {label}" if network else f"method {label}"
    maps = f", coil maps {info['coil_maps']}" if info.get("coil_maps") else ""
    print(f"input {src} ({kind}, 3-D): {info['positions']} readout positions of "
          f"{info['volume_shape'][1]}x{info['volume_shape'][2]} ky-kz, sampled fraction "
          f"{info['sampled_fraction']:.3f}{seed}; {what} on {device}{maps}")
    if info.get("empty_positions"):
        print(f"{info['empty_positions']} readout positions without signal were left zero")
    if not res.metrics:
        print("no reference image in the input: no metrics")
        return
    print("metrics vs the reference (per volume, data_range = reference max):")
    rows = [{"method": k if k != "network" else label, **v} for k, v in res.metrics.items()]
    print(format_table(rows, METRIC_COLUMNS))
    print("per readout position (mean [95% CI] over positions with signal):")
    for k, p in res.positions.items():
        n = p["psnr_stats"]["n"]
        print(f"  {k if k != 'network' else label}: PSNR {_stats(p, 'psnr')} dB, SSIM "
              f"{_stats(p, 'ssim')} (n = {n})")
