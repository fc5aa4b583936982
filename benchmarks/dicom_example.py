"""The example DICOM series of ``docs/dicom.md``: the MNI T1 template (shipped in nilearn)
resampled onto an oblique stack of slices and written as a DICOM MR series, what a scanner
would send for a T1 volume.

The stack (``--plane`` axial, sagittal or coronal; ``--oblique`` degrees about the RAS x
axis, then half of it about y) is centred in the brain; pixels are sampled from the template
with linear interpolation (0 outside it).  The series is written with
:func:`mri_unfold.reconstruct.write_dicom_series` (a derived series; its description names
the template).  Also used by the tests (``tests/dicom_fixtures.py``) to make their series.

Usage: ``python benchmarks/dicom_example.py OUT_DIR [--plane axial] [--matrix 192 192]
[--slices 36] [--spacing 1.0 1.0 4.0] [--oblique 15] [--overwrite]``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
from scipy.ndimage import map_coordinates  # noqa: E402

from mri_unfold.cli.demo_data import mni_template_path  # noqa: E402
from mri_unfold.reconstruct import Provenance, write_dicom_series  # noqa: E402

#: Plane orientations as DICOM gives them: (row direction, column direction) in LPS, before
#: the oblique rotation.
PLANES = {"axial": ((1, 0, 0), (0, 1, 0)),
          "sagittal": ((0, 1, 0), (0, 0, -1)),
          "coronal": ((1, 0, 0), (0, 0, -1))}
_FLIP = np.diag([-1.0, -1.0, 1.0])  # LPS <-> RAS


def rotation(axis: str, degrees: float) -> np.ndarray:
    """The 3x3 rotation about a RAS axis (``"x"``, ``"y"``, ``"z"``)."""
    t = np.deg2rad(degrees)
    c, s = np.cos(t), np.sin(t)
    return {"x": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
            "y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
            "z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])}[axis]


def plane_affine(plane: str, shape, spacing, oblique=(("x", 0.0),), centre=(0, -18, 8)):
    """RAS affine of an ``(H, W, S)`` stack on ``plane``: column 0 steps down the rows (the
    column direction), column 1 along the columns (the row direction), column 2 along the
    DICOM normal (row x column direction); centred on ``centre`` (RAS mm) and rotated by
    ``oblique`` ``[(RAS axis, degrees)]``."""
    row_lps, col_lps = (np.asarray(v, float) for v in PLANES[plane])
    normal_lps = np.cross(row_lps, col_lps)
    rot = np.eye(3)
    for ax, deg in oblique:
        rot = rotation(ax, deg) @ rot
    col, row, normal = (rot @ _FLIP @ v for v in (col_lps, row_lps, normal_lps))
    h, w, s = shape
    a = np.eye(4)
    a[:3, 0], a[:3, 1], a[:3, 2] = col * spacing[0], row * spacing[1], normal * spacing[2]
    a[:3, 3] = np.asarray(centre, float) - a[:3, :3] @ ((np.array([h, w, s]) - 1) / 2)
    return a


def mni_images(affine, shape) -> np.ndarray:
    """``(S, H, W)`` float64 samples of the MNI template (linear interpolation, 0 outside) on
    the grid of ``affine`` ``(H, W, S)``."""
    img = nib.load(mni_template_path())
    data = np.asarray(img.dataobj, np.float64)
    h, w, s = shape
    ijk = np.stack(np.meshgrid(np.arange(h), np.arange(w), np.arange(s), indexing="ij"), -1)
    world = ijk.reshape(-1, 3) @ affine[:3, :3].T + affine[:3, 3]
    vox = (world - img.affine[:3, 3]) @ np.linalg.inv(img.affine[:3, :3]).T
    out = map_coordinates(data, vox.T, order=1, mode="constant", cval=0.0).reshape(h, w, s)
    return np.moveaxis(out, -1, 0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="the series folder to write")
    p.add_argument("--plane", choices=tuple(PLANES), default="axial")
    p.add_argument("--matrix", type=int, nargs=2, default=(192, 192), metavar=("ROWS", "COLS"))
    p.add_argument("--slices", type=int, default=36)
    p.add_argument("--spacing", type=float, nargs=3, default=(1.0, 1.0, 4.0),
                   metavar=("ROW", "COL", "SLICE"), help="mm")
    p.add_argument("--oblique", type=float, default=15.0, help="degrees (default 15)")
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    shape = (*args.matrix, args.slices)
    affine = plane_affine(args.plane, shape, args.spacing,
                          (("x", args.oblique), ("y", args.oblique / 2)))
    images = mni_images(affine, shape)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    files = write_dicom_series(
        images, affine, args.out, replace=args.overwrite, series_number=1,
        provenance=Provenance("resampling", "MNI ICBM152 T1 2009a (nilearn)",
                              sampling=f"the template on an oblique {args.plane} stack"),
        description=f"MNI T1 oblique {args.plane}",
        attributes={"PatientName": "MNI^Template", "PatientID": "MNI152",
                    "BodyPartExamined": "HEAD", "PatientPosition": "HFS"})
    print(f"wrote {args.out}  ({len(files)} slices of {shape[0]}x{shape[1]}, "
          f"{args.spacing[0]:g}x{args.spacing[1]:g}x{args.spacing[2]:g} mm, {args.plane}, "
          f"oblique {args.oblique:g} degrees)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
