"""The demo's brain image: an axial slice of the MNI ICBM152 T1 template shipped in nilearn.

The file ``nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz``
(197 × 233 × 189 voxels, 1 mm isotropic, RAS, uint8) is part of the ``nilearn`` wheel, a
project dependency.  It is located with :mod:`importlib.resources` (only nilearn's tiny
top-level package is imported — nothing is downloaded) and read with nibabel.

Preparation of a slice (:func:`load_demo_slice`):

1. take the axial slice ``volume[:, :, k]`` (default ``k = DEFAULT_SLICE``, 10 mm above
   the MNI origin: ventricles, basal ganglia and cortex are all visible);
2. orient it for display, ``slice.T[::-1]``: rows run anterior (top) to posterior,
   columns patient-left to patient-right (neurological convention);
3. normalise to [0, 1] by the slice maximum;
4. zero-pad symmetrically (fastMRI-style centring, extra pixel at the end) from
   233 × 197 to 256 × 256 — no resampling, so pixels stay 1 mm.
"""
from __future__ import annotations

import importlib.resources
from pathlib import Path

import nibabel as nib
import numpy as np

from ..errors import UserError

__all__ = ["TEMPLATE_NAME", "DEFAULT_SLICE", "mni_template_path", "load_demo_slice",
           "pad_to_shape"]

TEMPLATE_NAME = "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
#: Default axial slice index (z = +10 mm in MNI space; the volume's z origin is at -72 mm).
DEFAULT_SLICE = 82


def mni_template_path() -> Path:
    """Path of the MNI ICBM152 T1 template inside the installed ``nilearn`` package.

    Raises:
        UserError: nilearn is not installed or its wheel lacks the template.
    """
    try:
        root = importlib.resources.files("nilearn")
    except ModuleNotFoundError as e:
        raise UserError("the demo image comes from the 'nilearn' package, which is not "
                        "installed (pip install nilearn)") from e
    path = root / "datasets" / "data" / TEMPLATE_NAME
    if not path.is_file():
        raise UserError(f"the installed nilearn has no {TEMPLATE_NAME} (looked in {path})")
    return Path(str(path))


def pad_to_shape(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Zero-pad a 2-D image symmetrically to ``shape`` (left pad ``(H' - H) // 2``).

    Raises:
        ValueError: the image is larger than ``shape``.
    """
    h, w = image.shape
    th, tw = shape
    if h > th or w > tw:
        raise ValueError(f"image of shape {image.shape} does not fit into {tuple(shape)}")
    top, left = (th - h) // 2, (tw - w) // 2
    out = np.zeros((th, tw), dtype=image.dtype)
    out[top:top + h, left:left + w] = image
    return out


def load_demo_slice(slice_index: int | None = None, size: int = 256) -> np.ndarray:
    """One axial slice of the MNI T1 template, prepared as described in the module docstring.

    Args:
        slice_index: axial index ``k`` in ``[0, 189)`` (default :data:`DEFAULT_SLICE`).
        size: output side length (>= 233).
    Returns:
        float32 array ``(size, size)`` with values in [0, 1] (maximum exactly 1).
    Raises:
        UserError: slice index out of range, or an empty slice.
    """
    img = nib.load(str(mni_template_path()))
    depth = img.shape[2]
    k = DEFAULT_SLICE if slice_index is None else int(slice_index)
    if not 0 <= k < depth:
        raise UserError(f"--slice {k}: the template has axial slices 0..{depth - 1}")
    sl = np.asarray(img.dataobj[:, :, k], dtype=np.float32).T[::-1]
    peak = float(sl.max())
    if peak <= 0:
        raise UserError(f"--slice {k}: the template slice is empty (outside the head)")
    return pad_to_shape(np.ascontiguousarray(sl / peak), (size, size))
