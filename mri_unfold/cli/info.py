"""``mri-unfold info`` — what a k-space file or NIfTI volume holds.

For every registered k-space source (fastMRI, ISMRMRD, twix, BART, plain arrays) the file
is read as ``recon`` reads it (:meth:`DataSource.read`, slices as stored) and summarised:
format, stored dimensions, coils, slices, matrix and recon matrix, FOV and voxel size,
trajectory, and the sampling pattern measured from the data
(:func:`mri_unfold.data.sampling.sampling_pattern`: acceleration, ACS lines).  NIfTI
volumes: shape, data type, voxel size and orientation.  3-D scans (a 3-D encoding) are read
as volumes: slabs, matrix (readout, ky, kz), recon matrix and the ky–kz sampling.  ``--json``
prints one JSON object.
"""
from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np

from ..data import NiftiVolume
from ..data.raw_volumes import is_3d_scan, read_volumes
from ..data.sampling import sampling_pattern
from ..data.sources import get_source
from ..operators import to_radians
from ..trajectories import describe_sampling
from .common import add_command
from .read_options import add_read_options, read_options
from .recon import input_kind

NAME = "info"
HELP = "show what a k-space file or NIfTI volume holds"
DESCRIPTION = ("Print the format, dimensions, coils, slices, matrix, field of view, "
               "trajectory and the sampling pattern measured from the data (acceleration, "
               "ACS lines) of a fastMRI, ISMRMRD, Siemens twix, BART or plain-array k-space "
               "file, or of a NIfTI volume.")
EXAMPLES = """examples:
  mri-unfold info meas_MID00358_FID117959_gre.dat
  mri-unfold info scan.h5 --json
  mri-unfold info kspace.npy --axes coil,readout,phase"""


def register(sub) -> None:
    p = add_command(sub, NAME, help=HELP, description=DESCRIPTION, examples=EXAMPLES)
    p.add_argument("input", metavar="FILE", help="k-space file or NIfTI volume")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_read_options(p)
    p.set_defaults(func=run)


def _round(v):
    if isinstance(v, float):  # 4 decimals, or 4 significant digits for small values
        return round(v, 4) if abs(v) >= 1e-2 or v == 0 else float(f"{v:.4g}")
    if isinstance(v, (tuple, list)):
        return [_round(x) for x in v]
    if isinstance(v, dict):
        return {k: _round(x) for k, x in v.items()}
    return v


def kspace_info(path: Path, kind: str, options: dict) -> dict:
    """The summary of a k-space file (module doc) as a JSON-ready dict."""
    ds = get_source(kind).read(path, options)
    first = ds[0]
    meta = first.metadata
    out = {"file": str(path), "kind": kind, "format": getattr(ds, "info", {}).get("format", kind),
           "slices": len(ds), "coils": first.num_coils, "trajectory": meta.trajectory_type}
    if first.is_cartesian:
        out["dimensions"] = {"coils": first.num_coils, "readout": int(first.kspace.shape[1]),
                             "phase": int(first.kspace.shape[2]), "slices": len(ds)}
        out["matrix"] = list(first.image_shape)
        out["recon_matrix"] = list(first.crop)
        pattern = sampling_pattern(first.mask).as_dict()
        same = all(bool((ds[i].mask == first.mask).all()) for i in range(1, len(ds)))
        out["sampling"] = {**pattern, "same_for_all_slices": same}
    else:
        out["dimensions"] = {"coils": first.num_coils, "samples": int(first.kspace.shape[1]),
                             "slices": len(ds)}
        out["matrix"] = list(first.image_shape)
        traj = to_radians(first.trajectory.double(), first.image_shape, "cycles")
        out["sampling"] = {"kind": meta.trajectory_type, **describe_sampling(
            traj.numpy(), first.image_shape, radial=meta.trajectory_type == "radial",
            mask=first.mask.numpy())}
    out["fov_mm"] = meta.fov_mm and list(meta.fov_mm)
    out["voxel_size_mm"] = meta.voxel_size_mm and list(meta.voxel_size_mm)
    affine = meta.extras.get("affine")
    out["affine"] = None if affine is None else np.asarray(affine).round(4).tolist()
    if affine is not None:
        out["orientation"] = "".join(nib.aff2axcodes(np.asarray(affine)))
    details = {k: v for k, v in getattr(ds, "info", {}).items() if k not in out}
    if "noise_covariance" in meta.extras:
        details["noise_covariance_diagonal"] = np.real(
            np.diag(meta.extras["noise_covariance"])).tolist()
    out["details"] = details
    return _round(out)


def volume_info(path: Path, kind: str) -> dict:
    """The summary of a 3-D scan (its encoding is 3-D): slabs, coils, matrix ``(readout, ky,
    kz)``, recon matrix, FOV, geometry and the ky–kz sampling measured from the data."""
    vols = read_volumes(kind, path)
    v, meta = vols[0], vols[0].metadata
    c, x, y, z = (int(d) for d in v.kspace.shape)
    p = sampling_pattern(v.mask)
    out = {"file": str(path), "kind": kind, "format": f"3-D scan ({kind})", "coils": c,
           "dimensions": {"coils": c, "readout": x, "ky": y, "kz": z, "slabs": len(vols)},
           "matrix": [x, y, z], "recon_matrix": list(meta.extras.get("recon_shape", (x, y, z))),
           "fov_mm": meta.fov_mm and [meta.fov_mm[0], meta.fov_mm[1], meta.fov_mm[2] * z],
           "voxel_size_mm": meta.voxel_size_mm and list(meta.voxel_size_mm), "trajectory":
           "cartesian", "kykz_sampling": {"acceleration": p.acceleration,
                                          "acs_square": p.acs_square}}
    affine = meta.extras.get("affine")
    out["affine"] = None if affine is None else np.asarray(affine).round(4).tolist()
    if affine is not None:
        out["orientation"] = "".join(nib.aff2axcodes(np.asarray(affine)))
    out["details"] = {"ky-kz sampling": f"acceleration {p.acceleration:.2f} (readout fully "
                                        f"sampled), fully sampled centre {p.acs_square}x"
                                        f"{p.acs_square}"}
    return _round(out)


def nifti_info(path: Path) -> dict:
    """Shape, data type, voxel size and orientation of a NIfTI volume."""
    nv = NiftiVolume(path)
    img = nv.image
    return _round({"file": str(path), "kind": "nifti", "format": "NIfTI image volume",
                   "dimensions": list(img.shape), "dtype": str(img.get_data_dtype()),
                   "voxel_size_mm": [float(z) for z in img.header.get_zooms()[:3]],
                   "orientation": "".join(nib.aff2axcodes(img.affine)),
                   "affine": np.asarray(img.affine).round(4).tolist(),
                   "complex": bool(nv.is_complex)})


def _fmt(v, sep: str = " x ") -> str:
    if isinstance(v, list) and v and all(isinstance(x, (int, float)) for x in v):
        return sep.join(str(x) for x in v)
    return str(v)


def _text(info: dict) -> str:
    lines = []
    for key in ("file", "format", "kind", "dimensions", "slices", "coils", "matrix",
                "recon_matrix", "fov_mm", "voxel_size_mm", "trajectory", "orientation",
                "dtype", "complex"):
        if key in info:
            v = info[key]
            if isinstance(v, dict):
                v = ", ".join(f"{k} {x}" for k, x in v.items())
            lines.append(f"{key:<14} {_fmt(v)}")
    s = info.get("sampling")
    if s and "sampled_lines" in s:
        lines.append(f"{'sampling':<14} {s['kind']}: acceleration {s['acceleration']:.2f}, "
                     f"{s['sampled_lines']}/{s['lines']} phase-encode lines, "
                     f"{s['acs_lines']} ACS lines (fully sampled centre "
                     f"{s['acs_square']}x{s['acs_square']}), "
                     f"{s['readout_samples']} readout samples"
                     f"{'' if s['same_for_all_slices'] else '; differs between slices'}")
    elif s and "cells_hit" in s:
        radial = (f", {s['spokes']} spokes: acceleration {s['acceleration']:.2f} (Nyquist "
                  f"{s['nyquist_spokes']:.0f} spokes)" if s.get("spokes") else "")
        lines.append(f"{'sampling':<14} {s['kind']}: {s['samples']} samples{radial}, "
                     f"{s['cells_hit']:.1%} of the Cartesian k-space cells hit")
    for k, v in (info.get("details") or {}).items():
        lines.append(f"{k:<14} {_fmt(v, ', ' if k.endswith('_diagonal') else ' x ')}")
    return "\n".join(lines)


def run(args) -> int:
    path = Path(args.input)
    kind = input_kind(path)
    if kind == "nifti":
        info = nifti_info(path)
    elif is_3d_scan(kind, path):
        info = volume_info(path, kind)
    else:
        info = kspace_info(path, kind, read_options(args, kind))
    print(json.dumps(info, indent=2, default=str) if args.json else _text(info))
    return 0
