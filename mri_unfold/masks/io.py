"""Read and write sampling masks; convert between the centred and unshifted layouts.

Layouts: ``"centered"`` — DC at ``(H // 2, W // 2)`` (fastMRI, the convention of every mask made
by :func:`mri_unfold.masks.make_mask`); ``"unshifted"`` — DC at ``[0, 0]`` (plain ``fft2``; the
CS-MRI radial masks ``radial_*.mat`` of ADMM-Net / ISTA-Net+ / MADUN).
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import scipy.io
import torch

from ..atomic import atomic_output
from ..errors import DataFileError, InvalidValue
from ..fft import LAYOUTS
from ..npy_files import load_npy, no_pickle

SUFFIXES = (".mat", ".npy", ".npz")


def to_centered(mask):
    """Unshifted -> centred layout: ``fftshift`` over the last two dims.

    Args:
        mask: numpy array or torch tensor ``(..., H, W)`` of any dtype.

    Returns:
        Same type, shape and dtype.  Exact inverse of :func:`to_unshifted`, also for odd sizes.
    """
    if isinstance(mask, torch.Tensor):
        return torch.fft.fftshift(mask, dim=(-2, -1))
    return np.fft.fftshift(np.asarray(mask), axes=(-2, -1))


def to_unshifted(mask):
    """Centred -> unshifted layout: ``ifftshift`` over the last two dims (see :func:`to_centered`)."""
    if isinstance(mask, torch.Tensor):
        return torch.fft.ifftshift(mask, dim=(-2, -1))
    return np.fft.ifftshift(np.asarray(mask), axes=(-2, -1))


def load_mask(path, layout: str | None = None, key: str | None = None) -> np.ndarray:
    """Load a binary 2-D sampling mask and return it in the **centred** layout.

    Args:
        path: ``.mat`` (MATLAB v5 read with scipy, v7.3/HDF5 read with h5py and transposed back
            to MATLAB's row/column order), ``.npy`` or ``.npz``.
        layout: the layout the file is stored in, ``"unshifted"`` (e.g. the CS-MRI
            ``radial_*.mat`` masks) or ``"centered"`` (e.g. masks saved by
            ``mri-unfold masks --save-npy``).  Required: a wrong layout silently ruins a
            reconstruction.  Use :func:`to_unshifted` on the result for an unshifted operator.
        key: variable name in a ``.mat``/``.npz`` file; optional when it holds exactly one array.

    Returns:
        ``float32`` C-contiguous array of 0/1, shape ``(H, W)``, DC at ``(H // 2, W // 2)``.

    Raises:
        ValueError: missing/unknown ``layout``, unsupported suffix, ambiguous or missing ``key``,
            not 2-D, values other than 0/1, all zero.
        MaskLayoutError: the mask looks like it is in the other layout (:func:`check_centred`).
        FileNotFoundError: ``path`` does not exist.
    """
    path = Path(path)
    if layout not in LAYOUTS:
        raise InvalidValue(f"load_mask({str(path)!r}): pass layout='unshifted' or 'centered' — the "
                         f"k-space layout the file is stored in (got {layout!r}); the CS-MRI "
                         "radial_*.mat masks are 'unshifted'; the result is always centred")
    if not path.is_file():
        raise FileNotFoundError(f"mask file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".mat":
        arr = _read_mat(path, key)
    elif suffix == ".npz":
        with load_npy(path) as z, no_pickle(path):
            arr = z[_pick_key(path, list(z.files), key)]
    elif suffix == ".npy":
        if key is not None:
            raise DataFileError(f"{path}: key= is only for .mat/.npz files")
        arr = load_npy(path)
    else:
        raise DataFileError(f"{path}: unsupported mask file type {suffix!r}; expected one of "
                         f"{SUFFIXES}")
    mask = _as_binary_2d(arr, path)
    if not mask.any():
        raise DataFileError(f"{path}: the mask samples nothing (all zero)")
    centred = to_centered(mask) if layout == "unshifted" else mask
    check_centred(centred, f"{path} read as {layout!r}")
    return np.ascontiguousarray(centred)  # MATLAB files are column-major


class MaskKeyError(DataFileError):
    """A mask file holds several arrays and no key chose one."""


class MaskLayoutError(DataFileError):
    """A mask read in one k-space layout looks like it is stored in the other."""


def check_centred(mask: np.ndarray, where: str) -> None:
    """Refuse the tell-tale of a wrong layout in a mask that should be centred: the k-space
    centre (DC, ``(H // 2, W // 2)``) unsampled while all four corners are sampled — what an
    unshifted mask read as centred (or the reverse) looks like.

    Raises:
        MaskLayoutError: naming ``where`` and the likely layout.
    """
    h, w = mask.shape
    corners = mask[[0, 0, h - 1, h - 1], [0, w - 1, 0, w - 1]]
    if mask[h // 2, w // 2] == 0 and bool(np.all(corners == 1)):
        raise MaskLayoutError(f"{where}: the k-space centre is not sampled but the corners are — "
                              "the mask is in the other k-space layout (the CS-MRI radial_*.mat "
                              "masks are 'unshifted', DC at [0, 0]); give its layout")


def save_mask(path, mask, layout: str = "centered") -> Path:
    """Write a mask to ``.npy`` atomically (temporary file in the same folder + ``os.replace``).

    Args:
        path: destination ending in ``.npy``.
        mask: 0/1 array ``(H, W)`` in the centred layout.
        layout: layout to store: ``"centered"`` (default) or ``"unshifted"``.
    """
    path = Path(path)
    if path.suffix.lower() != ".npy":
        raise DataFileError(f"{path}: save_mask writes .npy files")
    if layout not in LAYOUTS:
        raise InvalidValue(f"layout must be one of {LAYOUTS}, got {layout!r}")
    arr = _as_binary_2d(np.asarray(mask), "mask")
    if layout == "unshifted":
        arr = to_unshifted(arr)
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        np.save(f, arr)
    return path


def _read_mat(path: Path, key):
    if h5py.is_hdf5(path):  # MATLAB v7.3: HDF5, column-major -> transpose back
        with h5py.File(path, "r") as f:
            names = [k for k, v in f.items() if isinstance(v, h5py.Dataset)
                     and not k.startswith("#")]
            return np.asarray(f[_pick_key(path, names, key)][()]).T
    try:
        data = scipy.io.loadmat(path)
    except Exception as e:  # scipy raises several types for corrupt files
        raise DataFileError(f"{path}: cannot read MATLAB file ({e})") from None
    names = [k for k, v in data.items() if not k.startswith("__") and isinstance(v, np.ndarray)]
    return data[_pick_key(path, names, key)]


def _pick_key(path, names: list[str], key):
    if key is not None:
        if key not in names:
            raise DataFileError(f"{path}: no variable {key!r}; variables: {names}")
        return key
    if len(names) != 1:
        raise MaskKeyError(f"{path}: holds {len(names)} arrays {names}; choose one with key=")
    return names[0]


def _as_binary_2d(arr: np.ndarray, where) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim != 2:
        raise DataFileError(f"{where}: expected a 2-D mask (H, W), got shape {arr.shape}")
    if arr.dtype == bool:
        return arr.astype(np.float32)
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise DataFileError(f"{where}: expected a real 0/1 mask, got dtype {arr.dtype}")
    if not np.isin(arr, (0, 1)).all():
        bad = np.unique(arr[~np.isin(arr, (0, 1))])[:5]
        raise DataFileError(f"{where}: mask must contain only 0 and 1, found values {bad.tolist()}")
    return arr.astype(np.float32)
