"""The masks of a study, made and checked before any cell runs.

* generated masks: :func:`mri_unfold.masks.make_mask` at the images' size; a kind that
  misses the requested acceleration by more than ``masks.tolerance`` (relative) cannot reach
  it and is refused;
* mask files: :func:`mri_unfold.masks.load_mask` in ``masks.file_layout``; the shape must be
  the images' size; their acceleration is the achieved one (rounded to 0.01);
* learned masks: made by their network cell, exported to the study folder's
  ``masks/<id>.npy`` (binary, centred) and read from there.

Every mask is ``float32`` 0/1 ``(H, W)`` in the centred layout.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InvalidValue, UserError
from ..masks import load_mask, make_mask
from ..masks.kykz import make_kykz_mask
from .cells import StudyMask

__all__ = ["file_accelerations", "make_study_mask", "mask_path"]


def _read_file(path: str, layout: str, shape) -> np.ndarray:
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: mask file (masks.files) not found")
    m = load_mask(path, layout=layout)
    if tuple(m.shape) != tuple(shape):
        raise UserError(f"{path}: mask of shape {tuple(m.shape)} does not match the "
                        f"{shape[0]}x{shape[1]} images of the study")
    return m


def file_accelerations(masks_cfg: dict, shape) -> dict[str, float]:
    """Read and check every ``masks.files`` entry; file -> its acceleration (1/ratio,
    rounded to 0.01).

    Raises:
        FileNotFoundError / UserError: a missing, unreadable or wrongly sized mask file.
    """
    out = {}
    for f in masks_cfg["files"]:
        m = _read_file(f, masks_cfg["file_layout"], shape)
        out[f] = round(float(m.size / m.sum()), 2)
    return out


def mask_path(out_dir, mask: StudyMask) -> Path:
    """Where the study folder keeps a mask: ``masks/<id>.npy``."""
    return Path(out_dir) / "masks" / f"{mask.id}.npy"


def make_study_mask(mask: StudyMask, shape, masks_cfg: dict) -> np.ndarray:
    """The mask of a generated or file mask (learned masks come from their cell).

    Raises:
        UserError: the kind cannot make it (the message of ``make_mask``) or cannot reach
            the acceleration within the tolerance.
    """
    if mask.kind == "file":
        return _read_file(mask.file, masks_cfg["file_layout"], shape)
    if mask.learned:
        raise ValueError("learned masks are made by their network cell")
    kw = {"center_fraction": mask.center_fraction} if mask.center_fraction else {}
    try:
        if masks_cfg.get("acs"):          # ky-kz masks of 3-D scans
            res = make_kykz_mask(mask.kind, tuple(shape), acceleration=mask.acceleration,
                                 acs=tuple(masks_cfg["acs"]), elliptical=masks_cfg["elliptical"],
                                 partial_fourier=masks_cfg["partial_fourier"], seed=mask.seed)
        else:
            res = make_mask(mask.kind, tuple(shape), acceleration=mask.acceleration,
                            seed=mask.seed, **kw)
    except (ValueError, TypeError) as e:
        raise InvalidValue(f"masks: {mask.kind!r} at {mask.acceleration:g}x on "
                           f"{shape[0]}x{shape[1]} k-space: {e}") from e
    tol = masks_cfg["tolerance"]
    if abs(res.acceleration / mask.acceleration - 1) > tol:
        raise InvalidValue(f"masks: kind {mask.kind!r} cannot reach {mask.acceleration:g}x on "
                           f"{shape[0]}x{shape[1]} k-space (it gives {res.acceleration:.2f}x, "
                           f"more than masks.tolerance = {tol:g} off)")
    return res.mask
