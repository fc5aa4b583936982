"""Reading test images the way the CS papers' test scripts do (8-bit luminance Y).

Used by the natural-image protocol (``natural_cs``) and the brain CS-MRI protocol
(:mod:`mri_unfold.evaluation.brain_cs`) alike.

The authors read every image with ``cv2.imread(path, 1)`` (BGR, 8 bit) and reconstruct
the Y channel of ``cv2.cvtColor(img, cv2.COLOR_BGR2YCrCb)``; the reconstructed Y is put
back with the original Cr/Cb and converted with ``COLOR_YCrCb2BGR``.  This module
implements OpenCV's 8-bit fixed-point formulas (14-bit coefficients, round-half-up
``(v + 2^13) >> 14``, saturation to [0, 255]) in numpy — OpenCV is not a dependency:

* ``Y  = (4899 R + 9617 G + 1868 B + 2^13) >> 14`` (for gray R = G = B = v: ``Y = v``);
* ``Cr = sat(((R − Y)·11682 + 128·2^14 + 2^13) >> 14)``,
  ``Cb = sat(((B − Y)·9241 + 128·2^14 + 2^13) >> 14)``;
* inverse: ``R = sat(Y + ((Cr−128)·22987 + 2^13) >> 14)``,
  ``G = sat(Y + ((Cb−128)·(−5636) + (Cr−128)·(−11698) + 2^13) >> 14)``,
  ``B = sat(Y + ((Cb−128)·29049 + 2^13) >> 14)``.

Arrays: RGB ``(H, W, 3)`` uint8 (R, G, B order), YCrCb ``(H, W, 3)`` uint8 (Y, Cr, Cb
order, as OpenCV), luminance ``(H, W)`` uint8.

Example:
    >>> import numpy as np
    >>> from mri_unfold.data.luma import rgb_to_ycrcb, ycrcb_to_rgb
    >>> px = np.array([[[255, 0, 0]]], dtype=np.uint8)        # pure red
    >>> rgb_to_ycrcb(px)[0, 0].tolist(), ycrcb_to_rgb(rgb_to_ycrcb(px))[0, 0].tolist()
    ([76, 255, 85], [254, 0, 0])
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..atomic import atomic_output
from ..errors import DataFileError

#: File endings (case-insensitive) treated as images.
IMAGE_EXTENSIONS = (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff")

_SHIFT = 14
_HALF = 1 << (_SHIFT - 1)
_DELTA = 128


def _descale(v: np.ndarray) -> np.ndarray:
    return (v + _HALF) >> _SHIFT


def _check_rgb(rgb: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(rgb)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"{name} must be a (H, W, 3) uint8 array, got {a.dtype} {a.shape}")
    return a.astype(np.int64)


def rgb_to_ycrcb(rgb: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB -> ``(H, W, 3)`` uint8 (Y, Cr, Cb), OpenCV's 8-bit formula."""
    a = _check_rgb(rgb, "rgb")
    r, g, b = a[..., 0], a[..., 1], a[..., 2]
    y = _descale(r * 4899 + g * 9617 + b * 1868)
    cr = _descale((r - y) * 11682 + (_DELTA << _SHIFT))
    cb = _descale((b - y) * 9241 + (_DELTA << _SHIFT))
    return np.clip(np.stack([y, cr, cb], axis=-1), 0, 255).astype(np.uint8)


def ycrcb_to_rgb(ycrcb: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 (Y, Cr, Cb) -> ``(H, W, 3)`` uint8 RGB (OpenCV's ``YCrCb2BGR``,
    channels returned in RGB order)."""
    a = _check_rgb(ycrcb, "ycrcb")
    y, cr, cb = a[..., 0], a[..., 1] - _DELTA, a[..., 2] - _DELTA
    r = y + _descale(cr * 22987)
    g = y + _descale(cb * -5636 + cr * -11698)
    b = y + _descale(cb * 29049)
    return np.clip(np.stack([r, g, b], axis=-1), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class TestImage:
    """One test image.

    Attributes:
        luma: ``(H, W)`` uint8 — the Y channel (the gray value for gray files).
        ycrcb: ``(H, W, 3)`` uint8 (Y, Cr, Cb) for colour files, ``None`` for gray ones.
    """

    luma: np.ndarray
    ycrcb: np.ndarray | None

    @property
    def is_color(self) -> bool:
        return self.ycrcb is not None


def read_image(path: str | Path) -> TestImage:
    """Read an 8-bit gray/colour image as the test scripts see it.

    Gray (``L``/``1``/``LA``) files give their gray value; colour or palette files are
    expanded to RGB (alpha dropped, as ``cv2.imread(path, 1)``) and converted to YCrCb.
    A palette/RGB image whose three channels are equal everywhere is treated as gray.

    Raises:
        FileNotFoundError: missing file.  DataFileError (a ValueError): undecodable file or
        an unsupported (e.g. 16-bit) mode, naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file")
    try:
        with Image.open(path) as im:
            if im.mode in ("L", "1", "LA"):
                return TestImage(np.asarray(im.convert("L"), dtype=np.uint8).copy(), None)
            if im.mode not in ("P", "PA", "RGB", "RGBA", "CMYK", "YCbCr"):
                raise DataFileError(f"{path}: unsupported image mode {im.mode!r}; expected an "
                                    "8-bit gray or colour image")
            rgb = np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError) as e:
        raise DataFileError(f"{path}: cannot decode image ({e})") from e
    if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
        return TestImage(rgb[..., 0].copy(), None)
    ycc = rgb_to_ycrcb(rgb)
    return TestImage(ycc[..., 0].copy(), ycc)


def read_luminance(path: str | Path) -> np.ndarray:
    """``(H, W)`` uint8 Y channel of an image file (see :func:`read_image`)."""
    return read_image(path).luma


def recombine(image: TestImage, luma_rec: np.ndarray) -> np.ndarray:
    """Reconstructed image for saving, as the authors build it.

    Args:
        image: the original (gives Cr/Cb for colour files).
        luma_rec: ``(H, W)`` float reconstruction of Y on the 0..255 scale.  It is stored
            into uint8 the way ``numpy`` assigns floats to a uint8 array (truncation),
            exactly like the authors' ``Img_rec_yuv[:, :, 0] = X_rec * 255``.
    Returns:
        ``(H, W)`` uint8 for gray images, ``(H, W, 3)`` uint8 RGB for colour ones.
    """
    y = np.clip(np.asarray(luma_rec, dtype=np.float64), 0, 255).astype(np.uint8)
    if not image.is_color:
        return y
    ycc = image.ycrcb.copy()
    ycc[..., 0] = y
    return ycrcb_to_rgb(ycc)


def save_png_atomic(array: np.ndarray, path: str | Path) -> Path:
    """Write ``(H, W)`` or ``(H, W, 3)`` uint8 as PNG atomically
    (:func:`mri_unfold.atomic.atomic_output`)."""
    path = Path(path)
    with atomic_output(path, suffix=".png") as tmp:
        Image.fromarray(np.asarray(array, dtype=np.uint8)).save(tmp, format="PNG")
    return path


__all__ = ["TestImage", "read_image", "read_luminance", "recombine", "rgb_to_ycrcb",
           "ycrcb_to_rgb", "save_png_atomic", "list_images", "IMAGE_EXTENSIONS"]


def list_images(folder: str | Path) -> list[Path]:
    """Sorted image files (by :data:`IMAGE_EXTENSIONS`) directly inside ``folder``.

    Raises:
        FileNotFoundError: ``folder`` is not a directory.
        DataFileError: it holds no image files (message names the folder and the extensions).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: image folder not found")
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise DataFileError(f"{folder}: no images found (looked for files ending in "
                            f"{', '.join(IMAGE_EXTENSIONS)}, any case)")
    return files
