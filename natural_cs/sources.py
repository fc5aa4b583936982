"""The natural-image data sources of the ``natural_cs`` plug-in (``data.kind``):

* ``patches`` — random ``P x P`` luminance patches of an image folder
  (:class:`natural_cs.datasets.PatchDataset`; ``P`` = the training stage's patch size);
* ``block_mat`` — the authors' ``Training_Data.mat`` blocks
  (:class:`natural_cs.datasets.BlockMatDataset`).

Items are ``(1, P, P)`` float32 tensors in [0, 1], measured by the protocol's block-CS
operator.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

from mri_unfold.data.luma import list_images
from mri_unfold.data.sources import DataSource, register_source
from mri_unfold.errors import UserError

from .datasets import BlockMatDataset, PatchDataset

__all__ = ["PatchesSource", "BlockMatSource", "HeadDataset"]


class HeadDataset(Dataset):
    """The first ``n`` items of a data set (forwards ``set_epoch``).

    Attributes:
        ds: the whole data set (e.g. every training image for a least-squares ``Qinit``).
    """

    def __init__(self, ds: Dataset, n: int):
        self.ds, self.n = ds, min(int(n), len(ds))

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.ds, "set_epoch"):
            self.ds.set_epoch(epoch)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> torch.Tensor:
        if not -self.n <= i < self.n:
            raise IndexError(i)
        return self.ds[i % self.n]


@register_source
class PatchesSource(DataSource):
    """Random luminance patches of a folder of natural images (Train400), with dihedral
    augmentation, reproducible per (seed, epoch)."""

    kind = "patches"
    yields = "image"
    description = "random P x P luminance patches of an image folder (Train400), augmented"
    options = {"patch_size": (int, 33), "patches_per_image": (int, 1), "augment": (bool, True)}

    @classmethod
    def check_options(cls, options: dict, where: str) -> None:
        for key in ("patch_size", "patches_per_image"):
            if options[key] < 1:
                raise UserError(f"{where}: data.{key} must be >= 1, got {options[key]}")

    @classmethod
    def files(cls, path, max_items: int = 0) -> list[Path]:
        found = list_images(path)
        return found[:max_items] if max_items else found

    @classmethod
    def open(cls, path, options: dict, *, seed: int = 0, patch_size=None, max_items: int = 0,
             for_training: bool = True) -> Dataset:
        ppi = options["patches_per_image"]
        ds = PatchDataset(path, patch_size=patch_size or options["patch_size"],
                          patches_per_image=ppi, seed=seed, augment=options["augment"])
        return HeadDataset(ds, max_items * ppi) if max_items else ds


@register_source
class BlockMatSource(DataSource):
    """The authors' ``Training_Data.mat`` (ISTA-Net): ``labels``, ``N x 1089`` blocks."""

    kind = "block_mat"
    yields = "image"
    description = "the authors' Training_Data.mat: N x 1089 vectorised 33x33 blocks"

    @classmethod
    def open(cls, path, options: dict, *, seed: int = 0, patch_size=None, max_items: int = 0,
             for_training: bool = True) -> Dataset:
        ds = BlockMatDataset(path)
        return HeadDataset(ds, max_items) if max_items else ds
