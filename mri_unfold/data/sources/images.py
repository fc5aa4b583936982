"""The ``images`` data source: whole 2-D image slices of a folder (PNG/TIFF, or MATLAB ``.mat``).

PNG/TIFF slices (integers scaled to [0, 1]) are read with
:class:`mri_unfold.data.ImageFolderSlices`; when the folder holds ``.mat`` files, MATLAB
v5/v7.3 slices with :class:`mri_unfold.data.MatFileSlices` (variable ``image_variable``,
e.g. ``im_ori`` of the chest training set).  Items are ``(1, H, W)`` float32 tensors, decoded
once; the protocol's operator measures them (simulated k-space or block CS).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

from ..image_files import ImageFolderSlices, MatFileSlices
from .registry import DataSource, register_source

__all__ = ["ImageFolderDataset", "ImagesSource", "IMAGE_EXTS"]

#: File suffixes an image folder may hold (evaluation folders use the same list).
IMAGE_EXTS = (".png", ".tif", ".tiff", ".bmp", ".jpg", ".jpeg", ".mat")


class ImageFolderDataset(Dataset):
    """Whole 2-D images of a folder, ``(1, H, W)`` float32, decoded once.

    Args:
        folder: image folder (sorted file names).
        max_images: keep only the first ``max_images`` files (0 = all).
        variable: image variable of ``.mat`` files.
    Raises:
        FileNotFoundError / UserError: missing folder, no images, mixed image sizes.
    """

    def __init__(self, folder: str | Path, max_images: int = 0, variable: str = "im_ori"):
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: image folder not found")
        has_mat = any(p.suffix.lower() == ".mat" for p in folder.iterdir())
        src = MatFileSlices(folder, variable) if has_mat else ImageFolderSlices(folder)
        if max_images:
            src.files = src.files[:max_images]
        self.files = src.files
        self.images = src.stack()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]


@register_source
class ImagesSource(DataSource):
    """A folder of whole 2-D slices (PNG/TIFF in [0, 1], or ``.mat`` variables)."""

    kind = "images"
    yields = "image"
    description = "folder of 2-D slices (PNG/TIFF, or MATLAB .mat with image_variable)"
    options = {"image_variable": (str, "im_ori")}

    @classmethod
    def open(cls, path, options: dict, *, seed: int = 0, patch_size=None,
             max_items: int = 0, for_training: bool = True) -> ImageFolderDataset:
        return ImageFolderDataset(path, max_images=max_items, variable=options["image_variable"])
