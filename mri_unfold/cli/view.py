"""``mri-unfold view`` — a three-plane picture of a DICOM series or NIfTI volume, as a viewer
shows it (axial, coronal, sagittal through the centre; radiological convention), from the
files themselves: the DICOM series is read like a ``recon`` input (slices sorted along the
normal, rescaled, geometry from the headers) and its window centre/width is used."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.multival import MultiValue

from ..data import NiftiVolume
from ..data.dicom_files import is_dicom
from ..errors import UserError
from ..figures import three_plane_figure
from .common import add_command, check_new_outputs
from .recon_dicom import nifti_stack_affine, read_dicom

NAME = "view"
HELP = "three-plane picture (PNG) of a DICOM series or NIfTI volume"
DESCRIPTION = ("Draw the axial, coronal and sagittal planes through the centre of a DICOM "
               "series or NIfTI volume, resampled to the patient's axes as a viewer shows "
               "them (the patient's right on the left).")
EXAMPLES = """examples:
  mri-unfold view recon_dicom/ --output recon_view.png
  mri-unfold view dicom_folder/ --series 3 --output t1.png
  mri-unfold view scan_recon.nii.gz --output scan.png"""


def register(sub) -> None:
    p = add_command(sub, NAME, help=HELP, description=DESCRIPTION, examples=EXAMPLES)
    p.add_argument("input", metavar="INPUT", nargs="+",
                   help="a DICOM folder or files, or a NIfTI .nii/.nii.gz volume")
    p.add_argument("--output", metavar="PNG", required=True, help="the picture (.png)")
    p.add_argument("--series", metavar="UID|NUMBER", help="DICOM: the series to show")
    p.add_argument("--skip-invalid", action="store_true",
                   help="DICOM: skip files that are not valid DICOM images")
    p.add_argument("--title", help="title (default: the series description or file name)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing PNG")
    p.set_defaults(func=run)


def _first(value) -> float:
    return float(value[0] if isinstance(value, (list, tuple, MultiValue)) else value)


def _window(ds) -> tuple[float, float] | None:
    """The first ``WindowCenter``/``WindowWidth`` of a header, or None."""
    try:
        c, w = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
    except (TypeError, ValueError, IndexError):
        return None
    return (c, w) if w > 0 else None


def run(args) -> int:
    out = Path(args.output)
    if out.suffix.lower() != ".png":
        raise UserError(f"--output {out}: the picture is a PNG file (.png)")
    paths = [Path(p) for p in args.input]
    dicom = len(paths) > 1 or paths[0].is_dir() or is_dicom(paths[0])
    check_new_outputs([out], paths, args.overwrite)
    if dicom:
        vol = read_dicom(args, paths)
        values = np.abs(vol.volume) if vol.is_complex else vol.volume
        affine, window = vol.affine, _window(vol.reference)
        title = args.title or str(vol.reference.get("SeriesDescription") or vol.series.label())
    else:
        nv = NiftiVolume(paths[0])
        values, affine, window = np.abs(nv.slices()), nifti_stack_affine(nv), None
        title = args.title or paths[0].name
    three_plane_figure(values, affine, out, title=title, window=window)
    s, h, w = values.shape
    print(f"wrote {out}  ({s} slices of {h}x{w})")
    return 0
