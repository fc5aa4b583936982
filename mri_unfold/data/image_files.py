"""Image-domain MRI slices: folders of PNG/TIFF files and MATLAB ``.mat`` files.

* :class:`ImageFolderSlices` — every ``.png`` / ``.tif`` / ``.tiff`` in a folder (sorted by
  name), e.g. the brain CS-MRI test set; integer images are scaled to ``[0, 1]`` by their
  type's maximum (8-bit: ``/255``, 16-bit: ``/65535``), float images are kept.
* :func:`load_mat_image` / :class:`MatFileSlices` — a 2-D variable of MATLAB v5 (scipy) or
  v7.3 (HDF5, h5py) files, e.g. ``im_ori`` of the chest training set.  v7.3 stores arrays
  column-major; :func:`mri_unfold.operators.load_mat_variable` transposes them back, so the
  image has MATLAB's orientation.

Items are ``(1, H, W)`` float32 tensors (a channel dimension, ready for ``(N, 1, H, W)``
batches); ``.names`` lists the file names in item order.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import skimage.io
import torch

from ..operators import load_mat_variable
from .errors import DataFileError

__all__ = ["IMAGE_SUFFIXES", "read_image", "load_mat_image", "ImageFolderSlices", "MatFileSlices"]

IMAGE_SUFFIXES = (".png", ".tif", ".tiff")


def _to_unit_float(a: np.ndarray, path: Path) -> np.ndarray:
    if a.dtype == np.bool_:
        return a.astype(np.float32)
    if np.issubdtype(a.dtype, np.integer):
        return (a.astype(np.float64) / np.iinfo(a.dtype).max).astype(np.float32)
    if np.issubdtype(a.dtype, np.floating):
        return a.astype(np.float32)
    raise DataFileError(f"{path}: unsupported image data type {a.dtype}")


def read_image(path: str | Path) -> np.ndarray:
    """Read a grayscale PNG/TIFF slice as ``(H, W)`` float32 (integers scaled to ``[0, 1]``).

    RGB(A) files whose colour channels are identical are accepted (gray stored as RGB).

    Raises:
        FileNotFoundError: no such file.
        DataFileError: unreadable file, or a colour / multi-page image (names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file")
    try:
        a = np.asarray(skimage.io.imread(path))
    except Exception as e:  # noqa: BLE001 - any decoder error becomes a clear message
        raise DataFileError(f"{path}: cannot read image ({e})") from e
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        rgb = a[..., :3]
        if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])):
            raise DataFileError(f"{path}: expected a grayscale slice, got a colour image of "
                                f"shape {a.shape}")
        a = rgb[..., 0]
    if a.ndim != 2:
        raise DataFileError(f"{path}: expected a 2-D grayscale slice, got shape {a.shape}")
    return _to_unit_float(a, path)


def load_mat_image(path: str | Path, variable: str = "im_ori") -> np.ndarray:
    """Read a 2-D image variable from a MATLAB v5 or v7.3 file as ``(H, W)`` float32.

    The orientation is MATLAB's (v7.3 data are transposed back from HDF5's column-major
    storage); values are not rescaled.

    Raises:
        FileNotFoundError / KeyError: missing file or variable (named).
        DataFileError: the variable is not a real 2-D array.
    """
    a = load_mat_variable(path, variable)
    if a.ndim != 2 or np.iscomplexobj(a):
        raise DataFileError(f"{path}: variable {variable!r} must be a real 2-D image, got "
                            f"{a.dtype} of shape {a.shape}")
    return np.ascontiguousarray(a, dtype=np.float32)


class _FileSlices(torch.utils.data.Dataset):
    suffixes: tuple[str, ...] = ()
    kind = ""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"{self.folder}: no such folder of {self.kind} files")
        self.files = sorted(p for p in self.folder.iterdir()
                            if p.is_file() and p.suffix.lower() in self.suffixes)
        if not self.files:
            raise DataFileError(f"{self.folder}: no {self.kind} files "
                                f"({', '.join(self.suffixes)}) found")

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.files]

    def __len__(self) -> int:
        return len(self.files)

    def _read(self, path: Path) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __getitem__(self, i: int) -> torch.Tensor:
        """Slice ``i`` as a ``(1, H, W)`` float32 tensor."""
        return torch.from_numpy(self._read(self.files[i]))[None]

    def stack(self) -> torch.Tensor:
        """All slices as ``(N, 1, H, W)`` float32 (they must share one size)."""
        items = [self[i] for i in range(len(self))]
        shapes = {tuple(t.shape) for t in items}
        if len(shapes) > 1:
            raise DataFileError(f"{self.folder}: slices have different sizes {sorted(shapes)}")
        return torch.stack(items)


class ImageFolderSlices(_FileSlices):
    """PNG/TIFF slices of a folder, sorted by file name; items ``(1, H, W)`` float32 in [0, 1].

    Raises:
        FileNotFoundError: ``folder`` missing.  DataFileError: no image files in it.
    """

    suffixes = IMAGE_SUFFIXES
    kind = "PNG/TIFF image"

    def _read(self, path: Path) -> np.ndarray:
        return read_image(path)


class MatFileSlices(_FileSlices):
    """``.mat`` files of a folder (v5 or v7.3), one 2-D variable each; items ``(1, H, W)`` float32.

    Args:
        folder: folder of ``.mat`` files.
        variable: the image variable (default ``"im_ori"``).
    """

    suffixes = (".mat",)
    kind = "MATLAB"

    def __init__(self, folder: str | Path, variable: str = "im_ori"):
        super().__init__(folder)
        self.variable = variable

    def _read(self, path: Path) -> np.ndarray:
        return load_mat_image(path, self.variable)
