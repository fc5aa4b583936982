"""NIfTI volumes as stacks of 2-D slices, and writing results "like" an input volume.

:class:`NiftiVolume` reads a 3-D or 4-D NIfTI file (any orientation; nibabel applies the
header's scaling) and exposes one 3-D volume as slices along a chosen array axis —
*array* axes, not anatomical ones: the data are not reoriented, so writing the slices back
with :func:`save_like` lands every voxel where it came from.

:func:`save_like` writes an array with the reference image's shape, affine, header
(qform/sform codes, pixel sizes, units, description ...) and on-disk data-type family
(integer stays integer with the same dtype, float stays float), atomically.
"""
from __future__ import annotations

import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

from ..atomic import atomic_output
from ..memory import require_memory
from .errors import DataFileError

__all__ = ["NiftiVolume", "save_like", "nifti_suffix"]


def nifti_suffix(path: str | Path) -> str:
    """``".nii.gz"`` or ``".nii"``; raises ``ValueError`` for other names."""
    name = Path(path).name.lower()
    for suf in (".nii.gz", ".nii"):
        if name.endswith(suf):
            return suf
    raise ValueError(f"{path}: a NIfTI file name must end with .nii or .nii.gz")


def _load(path: str | Path):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such NIfTI file")
    try:
        return nib.load(str(path))
    except Exception as e:  # noqa: BLE001 - nibabel raises many types for bad files
        raise DataFileError(f"{path}: not a readable NIfTI file ({e})") from e


class NiftiVolume:
    """One 3-D volume of a NIfTI file, sliced along an array axis.

    Args:
        path: ``.nii`` / ``.nii.gz`` file with 3-D ``(X, Y, Z)`` or 4-D ``(X, Y, Z, T)`` data.
        axis: array axis (0, 1 or 2) to slice along (2 = the usual axial stack).
        volume_index: which volume of a 4-D file (ignored for 3-D files).

    Attributes:
        image: the nibabel image; ``affine`` ``(4, 4)``; ``header``; ``shape`` (the file's
        full shape); ``volume`` the selected 3-D data, float32 (complex64 when the file stores
        complex values, ``is_complex``).

    Raises:
        FileNotFoundError: missing file.  DataFileError: unreadable file; 2-D data ("a 3-D
        or 4-D volume is needed"); more than 4 dimensions; ``volume_index`` out of range.
        ValueError: ``axis`` not in 0..2.
    """

    def __init__(self, path: str | Path, axis: int = 2, volume_index: int = 0):
        self.path = Path(path)
        if axis not in (0, 1, 2):
            raise ValueError(f"axis must be 0, 1 or 2 (an array axis of the 3-D volume), got "
                             f"{axis!r}")
        self.axis = axis
        self.image = _load(self.path)
        shape = tuple(self.image.shape)
        if len(shape) < 3:
            raise DataFileError(f"{self.path}: NIfTI data are {len(shape)}-D (shape {shape}); a "
                                "3-D or 4-D volume is needed")
        if len(shape) > 4:
            raise DataFileError(f"{self.path}: NIfTI data are {len(shape)}-D (shape {shape}); "
                                "only 3-D and 4-D volumes are supported")
        if len(shape) == 4 and not 0 <= volume_index < shape[3]:
            raise DataFileError(f"{self.path}: volume_index {volume_index} out of range for "
                                f"{shape[3]} volumes")
        self.volume_index = volume_index if len(shape) == 4 else None
        _check_header(self.path, self.image)
        self.is_complex = bool(np.issubdtype(self.image.get_data_dtype(), np.complexfloating))
        require_memory(2 * 8 * int(np.prod(shape[:3], dtype=np.float64)),
                       f"{self.path}: a volume of shape {shape[:3]}")
        try:
            raw = self.image.dataobj if len(shape) == 3 else \
                self.image.dataobj[..., volume_index]
            data = np.asarray(raw, dtype=np.complex64 if self.is_complex else np.float32)
        except (EOFError, OSError, ValueError, OverflowError, zlib.error) as e:
            raise DataFileError(f"{self.path}: the volume data cannot be read (truncated or "
                                f"corrupt?): {type(e).__name__}: {e}") from e
        if not np.isfinite(data).all():
            raise DataFileError(f"{self.path}: volume contains NaN/Inf values")
        self.volume = data

    @property
    def affine(self) -> np.ndarray:
        return self.image.affine

    @property
    def header(self):
        return self.image.header

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.image.shape)

    @property
    def num_volumes(self) -> int:
        return self.shape[3] if len(self.shape) == 4 else 1

    def __len__(self) -> int:
        return self.volume.shape[self.axis]

    def __getitem__(self, i: int) -> np.ndarray:
        """Slice ``i`` ``(H, W)`` float32 or complex64 (the two remaining array axes, in order)."""
        return np.take(self.volume, i, axis=self.axis)

    def slices(self) -> np.ndarray:
        """All slices ``(S, H, W)`` float32 or complex64 (``S`` = size along ``axis``), contiguous."""
        return np.ascontiguousarray(np.moveaxis(self.volume, self.axis, 0))

    def volume_from_slices(self, stack) -> np.ndarray:
        """Inverse of :meth:`slices`: ``(S, H, W)`` -> the 3-D volume layout ``(X, Y, Z)``."""
        stack = np.asarray(stack)
        want = self.slices().shape
        if stack.shape != want:
            raise ValueError(f"slice stack has shape {stack.shape}, expected {want} "
                             f"(slices of {self.path.name} along axis {self.axis})")
        return np.moveaxis(stack, 0, self.axis)


def _check_header(path: Path, image) -> None:
    """Sizes, data type and affine a volume can be read and written back with.

    Raises:
        DataFileError: a dimension below 1, a non-numeric data type (RGB colour voxels), or
            an affine (qform/sform) with NaN/Inf entries.
    """
    shape = tuple(image.shape)
    if any(int(n) < 1 for n in shape):
        raise DataFileError(f"{path}: the NIfTI header declares dimensions {shape}; every "
                            "dimension must be >= 1 (corrupt header?)")
    dtype = np.dtype(image.get_data_dtype())
    if dtype.fields is not None or not (np.issubdtype(dtype, np.number) or dtype == bool):
        raise DataFileError(f"{path}: NIfTI voxels of type {dtype} (e.g. RGB colour) are not "
                            "supported; a grey-level volume (integer or float) is needed")
    try:
        affine = np.asarray(image.affine, dtype=np.float64)
    except Exception as e:  # noqa: BLE001 - nibabel's errors for an undecodable affine
        raise DataFileError(f"{path}: the NIfTI affine cannot be read ({e})") from e
    if not np.isfinite(affine).all():
        raise DataFileError(f"{path}: the NIfTI affine (qform/sform) has NaN/Inf entries "
                            "(corrupt header?)")


def _has_scaling(image) -> bool:
    """Whether the on-disk data are scaled (nibabel moves scl_slope/inter of loaded images
    from the header to ``dataobj``)."""
    slope = getattr(image.dataobj, "slope", None)
    inter = getattr(image.dataobj, "inter", None)
    if slope is None:
        slope, inter = image.header.get_slope_inter()
    return slope is not None and (float(slope) != 1 or float(inter or 0) != 0)


def save_like(volume_array, reference, out_path: str | Path, dtype=None) -> Path:
    """Write ``volume_array`` as NIfTI with ``reference``'s geometry, header and dtype family.

    Args:
        volume_array: array with exactly the reference image's shape (3-D or 4-D).
        reference: a path, a nibabel image or a :class:`NiftiVolume`.
        out_path: ``.nii`` or ``.nii.gz``; written to a temporary file in the same folder,
            then renamed (no partial output on failure).
        dtype: the on-disk data type (e.g. ``np.float32``); ``None`` keeps the reference's.

    By default the on-disk dtype is the reference's: integer references get the data rounded and
    clipped to the dtype's range (or rescaled by nibabel when the reference itself used
    ``scl_slope``/``scl_inter``); float references keep float.

    Returns:
        the output path.

    Raises:
        ValueError: shape mismatch, NaN/Inf data, bad file name.
        DataFileError: the output folder is missing or not writable (names the path).
    """
    if isinstance(reference, NiftiVolume):
        reference = reference.image
    elif not isinstance(reference, nib.spatialimages.SpatialImage):
        reference = _load(reference)
    out_path = Path(out_path)
    suffix = nifti_suffix(out_path)
    data = np.asarray(volume_array)
    if data.shape != tuple(reference.shape):
        raise ValueError(f"save_like: array shape {data.shape} does not match the reference "
                         f"shape {tuple(reference.shape)}")
    if not np.isfinite(data).all():
        raise ValueError(f"save_like: array for {out_path} contains NaN/Inf values")
    header = reference.header.copy()
    dtype = np.dtype(reference.get_data_dtype() if dtype is None else dtype)
    if dtype != np.dtype(reference.get_data_dtype()):
        header.set_slope_inter(1.0, 0.0)
    if np.issubdtype(dtype, np.integer) and not _has_scaling(reference):
        info = np.iinfo(dtype)
        data = np.clip(np.rint(data), info.min, info.max).astype(dtype)
        header.set_slope_inter(1.0, 0.0)
    elif np.issubdtype(dtype, np.floating):
        data = data.astype(dtype)
    img = type(reference)(data, reference.affine, header)
    img.set_data_dtype(dtype)
    for kind in ("qform", "sform"):  # keep the reference's codes (the constructor may reset them)
        getter = getattr(reference.header, f"get_{kind}")
        _, code = getter(coded=True)
        getattr(img, f"set_{kind}")(getter(), code=int(code))
    with atomic_output(out_path, suffix) as tmp:
        nib.save(img, str(tmp))
    return out_path
