"""Decode a folder of training images once into a cached ``uint8`` luminance stack.

The CS papers train on the luminance (Y) channel: for colour files the 8-bit BT.601 Y of
OpenCV's ``cv2.COLOR_BGR2YCrCb`` (full range, fixed-point rounding), for grayscale files the
gray value itself — read with :func:`mri_unfold.data.luma.read_luminance`.  Decoding 400 PNG
files on every epoch would dominate training time, so a folder is decoded once per process
(kept in memory, keyed by the folder's contents) and, optionally, stored as an uncompressed
``.npz`` file in a cache directory.

Example:
    >>> from natural_cs.image_cache import load_image_stack
    >>> stack = load_image_stack("../shared/data/natural/Train400")   # doctest: +SKIP
    >>> len(stack), stack.shape(0), stack.image(0).dtype              # doctest: +SKIP
    (400, (180, 180), dtype('uint8'))
"""
from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mri_unfold.atomic import atomic_output
from mri_unfold.data.luma import IMAGE_EXTENSIONS, list_images, read_luminance

__all__ = ["IMAGE_EXTENSIONS", "ImageStack", "list_images", "load_image_stack"]

_CACHE_VERSION = "1"
_MEMORY: dict[str, "ImageStack"] = {}


@dataclass(frozen=True)
class ImageStack:
    """Variable-size 8-bit luminance images stored in one flat buffer.

    Attributes:
        pixels: ``(sum H_i * W_i,)`` uint8, the images' pixels back to back (row-major).
        shapes: ``(N, 2)`` int64, ``(H_i, W_i)`` of every image.
        names: file names (no directory), in sorted order.
    """

    pixels: np.ndarray
    shapes: np.ndarray
    names: tuple[str, ...]

    def __post_init__(self):
        sizes = self.shapes[:, 0] * self.shapes[:, 1]
        object.__setattr__(self, "_offsets", np.concatenate([[0], np.cumsum(sizes)]))
        if int(self._offsets[-1]) != self.pixels.size:
            raise ValueError("ImageStack: pixel buffer does not match the image shapes")

    def __len__(self) -> int:
        return len(self.names)

    def shape(self, i: int) -> tuple[int, int]:
        """``(H, W)`` of image ``i``."""
        return int(self.shapes[i, 0]), int(self.shapes[i, 1])

    def image(self, i: int) -> np.ndarray:
        """Image ``i`` as a read-only ``(H, W)`` uint8 view (no copy)."""
        a, b = int(self._offsets[i]), int(self._offsets[i + 1])
        return self.pixels[a:b].reshape(self.shape(i))


def _folder_key(files: list[Path]) -> str:
    """Hash of the folder's image list: names, sizes and modification times."""
    h = hashlib.sha256(f"v{_CACHE_VERSION}".encode())
    for p in files:
        st = p.stat()
        h.update(f"\0{p.resolve()}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return h.hexdigest()[:20]


def _decode(files: list[Path]) -> ImageStack:
    imgs = [read_luminance(p) for p in files]
    pixels = np.concatenate([im.reshape(-1) for im in imgs])
    shapes = np.array([im.shape for im in imgs], dtype=np.int64).reshape(-1, 2)
    return ImageStack(pixels, shapes, tuple(p.name for p in files))


def _read_cache(path: Path) -> ImageStack | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            return ImageStack(z["pixels"].astype(np.uint8, copy=False),
                              z["shapes"].astype(np.int64, copy=False),
                              tuple(str(s) for s in z["names"]))
    except Exception as e:  # noqa: BLE001 - a broken cache is rebuilt, never fatal
        warnings.warn(f"{path}: unreadable image cache ({e}); rebuilding it", stacklevel=3)
        return None


def _write_cache(stack: ImageStack, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, pixels=stack.pixels, shapes=stack.shapes,
                 names=np.array(stack.names, dtype=str))


def load_image_stack(folder: str | Path, cache_dir: str | Path | None = None) -> ImageStack:
    """Decode every image of ``folder`` to 8-bit luminance, once.

    Args:
        folder: directory of image files (see :data:`IMAGE_EXTENSIONS`; not recursive).
        cache_dir: if given, the stack is stored there as ``images_<key>.npz`` (``key`` =
            hash of the files' paths, sizes and modification times, so any change in the
            folder makes a new cache file) and re-used by later processes.

    Returns:
        :class:`ImageStack` (also kept in memory for this process, under the same key).

    Raises:
        FileNotFoundError / ValueError: missing folder, no images, undecodable file.
    """
    files = list_images(folder)
    key = _folder_key(files)
    cache_file = Path(cache_dir) / f"images_{key}.npz" if cache_dir is not None else None
    stack = _MEMORY.get(key)
    if stack is None and cache_file is not None and cache_file.is_file():
        stack = _read_cache(cache_file)
    elif stack is not None and cache_file is not None and not cache_file.is_file():
        _write_cache(stack, cache_file)  # decoded earlier in this process without a cache
    if stack is None:
        stack = _decode(files)
        if cache_file is not None:
            _write_cache(stack, cache_file)
    stack.pixels.setflags(write=False)
    _MEMORY[key] = stack
    return stack
