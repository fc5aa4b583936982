"""The DICOM side of ``mri-unfold recon``: DICOM inputs (a folder, files, ``--series``,
``--skip-invalid``) and DICOM output folders (``--format dicom``, ``--dicom-enhanced``,
``--anonymize``), kept out of :mod:`.recon` so that module stays a thin layer.

See ``docs/dicom.md``.
"""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
from pydicom.uid import generate_uid

from ..data import NiftiVolume
from ..data.dicom_files import InvalidDicomFiles, SeveralSeries, is_dicom
from ..data.dicom_volume import DicomVolume
from ..errors import UserError
from ..models.zoo import load_card, model_names
from ..reconstruct import Provenance, dicom_series, output_format, write_dicom_folders
from ..reconstruct.dicom_input import phase_encoding_slices
from .common import same_file

__all__ = ["add_dicom_options", "dicom_input", "wants_dicom_output", "dicom_outputs",
           "read_dicom", "write_dicom_outputs", "nifti_stack_affine", "FORMATS"]

#: ``--format`` values; ``auto`` takes a file format from the output name.
FORMATS = ("auto", "h5", "nifti", "npy", "dicom")


def add_dicom_options(p) -> None:
    """``--format``, ``--dicom-enhanced``, ``--anonymize``, ``--series``, ``--skip-invalid``."""
    p.add_argument("--format", choices=FORMATS, default="auto",
                   help="output format: auto (default: from the --output name; a DICOM input "
                        "without --output gives a DICOM folder), h5, nifti, npy, or dicom (a "
                        "folder of DICOM MR images)")
    g = p.add_argument_group("DICOM")
    g.add_argument("--dicom-enhanced", action="store_true",
                   help="--format dicom: one Enhanced MR multi-frame file instead of one file "
                        "per slice")
    g.add_argument("--anonymize", action="store_true",
                   help="--format dicom: leave out names, IDs, dates, institution and "
                        "references to the source images; new frame of reference")
    g.add_argument("--series", metavar="UID|NUMBER",
                   help="DICOM input with several series: the SeriesInstanceUID or "
                        "SeriesNumber to reconstruct")
    g.add_argument("--skip-invalid", action="store_true",
                   help="DICOM input: skip (and list) files that are not valid DICOM images "
                        "instead of refusing the input")


def dicom_input(args) -> tuple[Path, list[Path] | None]:
    """``(input path, DICOM inputs or None)`` from the positional inputs: a folder, several
    paths or a DICOM file are a DICOM input (its path: the folder, or the files' folder);
    one other file is returned as is.

    Raises:
        UserError: DICOM-only flags without a DICOM input, or several inputs of which one is
            not a file or folder.
    """
    paths = [Path(p) for p in args.input]
    for p in paths:
        if not p.exists():
            raise FileNotFoundError(f"{p}: input file not found")
    is_dcm = len(paths) > 1 or paths[0].is_dir() or is_dicom(paths[0])
    if not is_dcm:
        for flag, given in (("--series", args.series), ("--skip-invalid", args.skip_invalid)):
            if given:
                raise UserError(f"{flag} is for DICOM inputs; {paths[0]} is not DICOM")
        return paths[0], None
    # a folder names the input; files are named by their folder (outputs go next to it)
    return (paths[0] if paths[0].is_dir() else paths[0].resolve().parent), paths


def wants_dicom_output(args, dicom_in: bool) -> bool:
    """Whether ``recon`` writes a DICOM folder: ``--format dicom``, or a DICOM input without
    ``--format`` whose ``--output`` (if any) is not a file name of another format.  Raises
    UserError for DICOM output flags without it."""
    out = args.format == "dicom" or (args.format == "auto" and dicom_in and (
        not args.output or output_format(args.output) is None))
    if not out:
        for flag, given in (("--dicom-enhanced", args.dicom_enhanced),
                            ("--anonymize", args.anonymize)):
            if given:
                raise UserError(f"{flag} applies to DICOM output (--format dicom)")
    elif args.output and output_format(args.output) is not None:
        raise UserError(f"--output {args.output}: --format dicom writes a folder of DICOM "
                        f"files; give a folder name, not a {output_format(args.output)} file")
    if not out and args.format not in ("auto", "dicom") and args.output \
            and output_format(args.output) != args.format:
        raise UserError(f"--format {args.format} does not match --output {args.output}")
    return out


def _check_folder(out: Path, inputs: list[Path], overwrite: bool) -> Path:
    if not out.parent.is_dir():
        raise UserError(f"--output {out}: folder {out.parent} does not exist")
    for src in inputs:
        src = src.resolve()
        if src == out.resolve() or out.resolve() in src.parents or same_file(out, src):
            raise UserError(f"--output {out}: holds the input {src}; refusing to write over an "
                            "input — choose another output folder")
    if out.exists():
        if not out.is_dir():
            raise UserError(f"--output {out}: exists and is not a folder")
        entries = list(out.iterdir())
        if entries and not overwrite:
            raise UserError(f"--output {out}: holds {len(entries)} files; pass --overwrite to "
                            "replace the series")
        other = [e for e in entries if e.is_dir() or not is_dicom(e)]
        if other:
            raise UserError(f"--output {out}: holds {other[0].name}, which is not a DICOM file; "
                            "refusing to replace a folder with other content")
    return out


def dicom_outputs(args, src: Path, inputs: list[Path] | None) -> list[Path]:
    """The output folder (default: ``<input>_recon`` next to the input, or next to the
    folder of DICOM input files) and the zero-filled one, checked before any work: never an
    input or a folder holding one; an existing non-empty folder only with ``--overwrite`` and
    only when it holds DICOM files alone."""
    folder = src if inputs else src.with_name(src.name.split(".")[0])
    out = Path(args.output) if args.output else folder.with_name(folder.name + "_recon")
    outs = [out] + ([out.with_name(out.name + "_zero_filled")] if args.save_zero_filled else [])
    ins = list(inputs or [src]) + [Path(p) for p in (args.model, args.mask_file) if p]
    return [_check_folder(o, ins, args.overwrite) for o in outs]


def read_dicom(args, inputs: list[Path]) -> DicomVolume:
    """The DICOM series of the inputs; errors name the option that resolves them."""
    try:
        return DicomVolume(inputs, args.series, skip_invalid=args.skip_invalid)
    except SeveralSeries as e:
        raise UserError(f"{e} with --series UID|NUMBER") from e
    except InvalidDicomFiles as e:
        raise UserError(f"{e}; --skip-invalid skips them") from e


def slice_shape(volume: DicomVolume) -> tuple[int, int]:
    """The shape of the slices as simulated (phase encoding on the last axis)."""
    return tuple(phase_encoding_slices(volume).shape[-2:])


def nifti_stack_affine(nv: NiftiVolume) -> np.ndarray:
    """The RAS affine of a NIfTI volume's slice stack ``(H, W, S)`` (slices along its axis,
    the two other array axes in order)."""
    rest = [a for a in range(3) if a != nv.axis]
    return np.asarray(nv.affine)[:, [rest[0], rest[1], nv.axis, 3]]


def _stack_affine(res) -> np.ndarray:
    """The RAS affine of the result's ``(H, W, S)`` stack."""
    if isinstance(res.source, NiftiVolume):
        return nifti_stack_affine(res.source)
    if res.info.get("affine") is not None:
        return np.asarray(res.info["affine"], np.float64)
    warnings.warn("the input has no slice geometry: the DICOM series is written as axial "
                  "slices of 1 mm voxels at the origin", stacklevel=2)
    return np.diag([-1.0, -1.0, 1.0, 1.0])


def _card(args, ck) -> str:
    if ck is None:
        return ""
    name = str(args.model)
    if not Path(name).exists() and name in model_names():
        card = load_card(name)
        return f"{card['label']}: {card['description']}"
    digest = hashlib.sha256(Path(name).read_bytes()).hexdigest()[:16]
    return f"checkpoint {Path(name).name} ({ck.arch}), sha256 {digest}"


def provenance(args, ck, label: str, res, kind: str) -> Provenance:
    """What made the series: method, model, card and how the data were measured."""
    info = res.info
    sampling = "measured k-space" if kind not in ("nifti", "dicom") else "images"
    if info.get("mask"):
        seed = f", seed {info['mask_seed']}" if info.get("mask_seed") is not None else ""
        sampling += (f" undersampled retrospectively ({info['mask']} mask, sampled fraction "
                     f"{info['sampled_fraction']:.3f}{seed}; a simulation)")
    model = Path(str(args.model)).name if ck is not None else ""
    return Provenance(method=label, model=model, card=_card(args, ck), sampling=sampling)


def write_dicom_outputs(res, outputs: list[Path], args, prov: Provenance) -> str:
    """Write the reconstruction (and zero-filled) series all-or-nothing; returns what was
    written (NaN/Inf values are refused before anything is written)."""
    affine = _stack_affine(res)
    info = res.info
    source = info.get("scan_attributes") or {}
    voxel = info.get("voxel_size_mm") or ()
    thickness = info.get("slice_thickness") or (voxel[2] if len(voxel) == 3 else None)
    common = dict(attributes=source, enhanced=args.dicom_enhanced, anonymize=args.anonymize,
                  slice_thickness=thickness, source_images=info.get("source_images"),
                  study_uid=generate_uid(), frame_uid=None)
    if args.anonymize or not source.get("FrameOfReferenceUID"):
        common["frame_uid"] = generate_uid()  # one new frame of reference for both series
    number = res.source.series.number if isinstance(res.source, DicomVolume) else None
    base = 1000 + int(number or 0)
    series = {outputs[0]: dicom_series(res.reconstruction, affine, provenance=prov,
                                       series_number=base + 1, **common)}
    if len(outputs) > 1:
        zf = Provenance("zero-filled", sampling=prov.sampling)
        series[outputs[1]] = dicom_series(res.zero_filled, affine, provenance=zf,
                                          series_number=base + 2, **common)
    written = write_dicom_folders(series, replace=args.overwrite)
    kind = "Enhanced MR multi-frame file" if args.dicom_enhanced else "MR image files"
    return f"DICOM ({len(written) // len(outputs)} {kind}), 16-bit"

