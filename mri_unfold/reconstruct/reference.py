"""References for scoring a reconstruction: what the undersampled result is compared with.

A fully sampled scan undersampled retrospectively is its own reference: the image of *all*
its k-space, reconstructed by the same pipeline (same crop, same intensity scale) —

* ``"rss"`` — the root sum of squares of the coil images (:func:`~mri_unfold.baselines.
  zero_filled` of the fully sampled data; the magnitude image for one coil);
* ``"sense"`` — CG-SENSE of the fully sampled data with ESPIRiT maps from it (for one coil,
  the magnitude image again);

or a given image (:func:`read_reference_file`: ``.npy``, NIfTI, or an ``.h5`` with a
``reconstruction``/``reconstruction_rss`` dataset — e.g. an earlier ``recon`` output).
:func:`score_result` puts the reference and PSNR/SSIM/NMSE (fastMRI conventions,
:func:`~mri_unfold.reconstruct.pipeline.volume_metrics`) into a
:class:`~mri_unfold.reconstruct.pipeline.ReconResult`.  Errors name the file, never a flag.
"""
from __future__ import annotations

import os
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np

from ..data.sources import kspace_transform
from ..errors import UserError
from ..npy_files import load_npy
from .pipeline import ReconResult, reconstruct_samples, volume_metrics

__all__ = ["REFERENCES", "fully_sampled_reference", "read_reference_file", "score_result"]

#: References computed from the fully sampled input itself.
REFERENCES = ("rss", "sense")
#: Datasets of an ``.h5`` reference file, in the order they are looked for.
H5_DATASETS = ("reconstruction", "reconstruction_rss", "reconstruction_esc")


def fully_sampled_reference(raw, path: str | os.PathLike, how: str = "rss", *,
                            espirit_crop: float = 0.95, espirit_cache=None, batch_size: int = 8,
                            device=None, progress: bool = False) -> np.ndarray:
    """The reference image ``(S, h, w)`` float32 of fully sampled k-space slices ``raw`` (as
    a source reads them) in the input's intensity scale, cropped to the recon size.

    Raises:
        UserError naming ``path``: an unknown ``how``; k-space that is already undersampled
            (no fully sampled image to compare with: give a reference image file).
    """
    if how not in REFERENCES:
        raise UserError(f"unknown reference {how!r}; valid: {', '.join(REFERENCES)} or an "
                        "image file")
    first = raw[0]
    if first.metadata.undersampled:
        raise UserError(f"{path}: the k-space is already undersampled, so it has no fully "
                        f"sampled {how.upper()} image to score against; give a reference "
                        "image file")
    sense = how == "sense" and first.num_coils > 1
    prepare = kspace_transform(multicoil=sense, mask=None, espirit_crop=espirit_crop,
                               espirit_cache=espirit_cache)
    full = [prepare(raw[i]) for i in range(len(raw))]
    res = reconstruct_samples(full, method="sense" if sense else "zero-filled",
                              batch_size=batch_size, device=device, progress=progress,
                              desc=f"reference ({how})")
    return res.reconstruction


def read_reference_file(path: str | os.PathLike, shape: tuple[int, ...]) -> np.ndarray:
    """A reference image of ``shape`` ``(S, h, w)`` from ``path``: ``.npy`` ``(S, h, w)`` or
    ``(h, w)`` for one slice; NIfTI with the slices along the last axis (as ``recon`` writes
    k-space inputs); ``.h5`` with a dataset of :data:`H5_DATASETS`.  Magnitudes are taken.

    Raises:
        FileNotFoundError / UserError naming the file: missing, unreadable, another shape,
            NaN/Inf values.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: reference image file not found")
    name = path.name.lower()
    try:
        if name.endswith(".npy"):
            img = load_npy(path)
        elif name.endswith((".nii", ".nii.gz")):
            img = np.moveaxis(np.asanyarray(nib.load(str(path)).dataobj), -1, 0)
        elif name.endswith((".h5", ".hdf5")):
            with h5py.File(path, "r") as f:
                key = next((k for k in H5_DATASETS if k in f), None)
                if key is None:
                    raise UserError(f"{path}: no {' / '.join(H5_DATASETS)} dataset; found "
                                    f"{sorted(f.keys())}")
                img = f[key][()]
        else:
            raise UserError(f"{path}: a reference image must be .npy, .nii/.nii.gz or .h5")
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: not a readable reference image ({e})") from e
    img = np.abs(np.asarray(img)).astype(np.float32)
    if img.ndim == 2:
        img = img[None]
    if img.shape != tuple(shape):
        raise UserError(f"{path}: the reference is {'x'.join(map(str, img.shape))}, the "
                        f"reconstruction {'x'.join(map(str, shape))} (slices x rows x columns)")
    if not np.isfinite(img).all():
        raise UserError(f"{path}: the reference image has NaN/Inf values")
    return img


def score_result(result: ReconResult, reference: np.ndarray, label: str) -> ReconResult:
    """``result`` with ``target`` = ``reference`` ``(S, h, w)``, its metrics (the
    reconstruction's and the zero-filled image's) and ``info["reference"]`` = ``label``.

    Raises:
        UserError: a reference of another shape, or all zero.
    """
    ref = np.asarray(reference, np.float32)
    if ref.shape != result.reconstruction.shape:
        raise UserError(f"the reference ({label}) is {ref.shape}, the reconstruction "
                        f"{result.reconstruction.shape}")
    if not float(ref.max()) > 0:
        raise UserError(f"the reference ({label}) is all zero: nothing to score against")
    result.target = ref
    result.metrics = {"network": volume_metrics(ref, result.reconstruction),
                      "zero-filled": volume_metrics(ref, result.zero_filled)}
    result.info["reference"] = label
    return result


def apply_reference(result: ReconResult, raw, path, reference, *, retrospective: bool,
                    **options) -> ReconResult:
    """Score ``result`` of the k-space slices ``raw`` read from ``path``.

    ``reference``: ``None`` (no scores beyond the file's own target), ``"auto"`` (the file's
    own target when it has one, else the fully sampled RSS image when ``retrospective`` —
    a fully sampled Cartesian input undersampled by a mask), ``"rss"`` / ``"sense"``
    (:func:`fully_sampled_reference`), or a path (:func:`read_reference_file`).  ``options``:
    ``espirit_crop``, ``espirit_cache``, ``batch_size``, ``device``, ``progress``.
    """
    if reference is None:
        return result
    if isinstance(reference, str) and reference == "auto":
        first = raw[0]
        if (result.target is not None or not retrospective or first.metadata.undersampled
                or not first.is_cartesian):
            return result
        reference = "rss"
    if isinstance(reference, str):
        if not raw[0].is_cartesian:
            raise UserError(f"{path}: a fully sampled {reference.upper()} reference needs "
                            "Cartesian k-space; give a reference image file")
        ref = fully_sampled_reference(raw, path, reference, **options)
        return score_result(result, ref, f"fully sampled {reference.upper()}")
    ref = read_reference_file(reference, result.reconstruction.shape)
    return score_result(result, ref, str(reference))
