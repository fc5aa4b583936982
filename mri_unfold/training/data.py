"""Training data for the engine: data sets from the protocol's ``data`` table and a
resumable, DDP-aware batch order.

Data kinds (``data.kind``):

* ``patches`` — :class:`natural_cs.datasets.PatchDataset` (random patches of a folder of
  images, luminance, dihedral augmentation; epoch-dependent via ``set_epoch``);
* ``block_mat`` — :class:`natural_cs.datasets.BlockMatDataset` (the authors'
  ``Training_Data.mat``, ``labels`` N×1089);
* ``images`` — whole images of a folder (PNG/TIFF/BMP/JPEG, or MATLAB ``.mat`` with a
  single image variable such as ``im_ori``), float32 ``(1, H, W)`` in [0, 1] — e.g. MRI
  slices for simulated single-coil training;
* ``fastmri`` — fastMRI k-space slices, masked, with ESPIRiT maps and complex targets
  (:mod:`.fastmri_data`; items are ``FastMRIItem``, batched by the data set's
  ``collate_fn``).

Items are ``(1, H, W)`` float32 tensors.  The order of a run is a seeded permutation per
epoch (:class:`torch.utils.data.DistributedSampler` with ``seed`` and ``set_epoch``; one
replica when not distributed), cut into per-rank batches by :class:`ResumableBatchSampler`,
which can skip the batches already done in an interrupted epoch.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler


IMAGE_EXTS = (".png", ".tif", ".tiff", ".bmp", ".jpg", ".jpeg", ".mat")


class ImageFolderDataset(Dataset):
    """Whole 2-D images of a folder, ``(1, H, W)`` float32, decoded once.

    PNG/TIFF slices (integers scaled to [0, 1]) via :class:`mri_unfold.data.ImageFolderSlices`,
    or — when the folder holds ``.mat`` files — MATLAB v5/v7.3 slices via
    :class:`mri_unfold.data.MatFileSlices` (variable ``variable``, e.g. ``im_ori``).

    Args:
        folder: image folder (sorted file names).
        max_images: keep only the first ``max_images`` files (0 = all).
        variable: image variable of ``.mat`` files.
    Raises:
        FileNotFoundError / UserError: missing folder, no images, mixed image sizes.
    """

    def __init__(self, folder: str | Path, max_images: int = 0, variable: str = "im_ori"):
        from ..data.image_files import ImageFolderSlices, MatFileSlices

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


def build_dataset(data_cfg: dict, seed: int, patch_size: int | None = None) -> Dataset:
    """Training data set for the protocol's ``data`` table (``patch_size`` overrides
    ``data.patch_size``, e.g. for a fine-tuning stage)."""
    kind = data_cfg["kind"]
    p = patch_size or data_cfg["patch_size"]
    if kind == "fastmri":
        from .fastmri_data import build_fastmri_dataset

        return build_fastmri_dataset(data_cfg)
    if kind == "images":
        return ImageFolderDataset(data_cfg["train"], max_images=data_cfg["max_images"],
                                  variable=data_cfg["image_variable"])
    from natural_cs import datasets as nd

    if kind == "block_mat":
        return nd.BlockMatDataset(data_cfg["train"])
    ppi = data_cfg["patches_per_image"]
    ds = nd.PatchDataset(data_cfg["train"], patch_size=p, patches_per_image=ppi, seed=seed,
                         augment=data_cfg["augment"])
    if data_cfg["max_images"]:
        ds = HeadDataset(ds, data_cfg["max_images"] * ppi)
    return ds


class HeadDataset(Dataset):
    """The first ``n`` items of a data set (forwards ``set_epoch``)."""

    def __init__(self, ds: Dataset, n: int):
        self.ds, self.n = ds, min(int(n), len(ds))

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.ds, "set_epoch"):
            self.ds.set_epoch(epoch)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        if not -self.n <= i < self.n:
            raise IndexError(i)
        return self.ds[i % self.n]


def item_shape(ds: Dataset) -> tuple[int, int]:
    """Spatial size ``(H, W)`` of the data set's items."""
    x = ds[0]
    x = x[0] if isinstance(x, (list, tuple)) else x
    x = getattr(x, "kspace", x)  # k-space items (fastMRI): the k-space size
    return tuple(x.shape[-2:])


class ResumableBatchSampler(Sampler):
    """Batches of a (distributed) sampler's indices, optionally skipping the first ``skip``.

    Args:
        sampler: yields this rank's indices for the epoch (its order is fixed by seed + epoch).
        batch_size: per-rank batch size.
        skip: batches already consumed in this epoch (resume mid-epoch).
    """

    def __init__(self, sampler: Sampler, batch_size: int, skip: int = 0):
        self.sampler, self.batch_size, self.skip = sampler, int(batch_size), int(skip)

    def _batches(self):
        idx = list(self.sampler)
        return [idx[i:i + self.batch_size] for i in range(0, len(idx), self.batch_size)]

    def __iter__(self):
        yield from self._batches()[self.skip:]

    def __len__(self) -> int:
        n = len(self.sampler)
        return max(0, -(-n // self.batch_size) - self.skip)


def epoch_batches(ds: Dataset, epoch: int, seed: int, batch_size: int, rank: int = 0,
                  world: int = 1, skip: int = 0) -> ResumableBatchSampler:
    """The batch order of one epoch for one rank (global batch = ``batch_size * world``)."""
    if hasattr(ds, "set_epoch"):
        ds.set_epoch(epoch)
    s = DistributedSampler(ds, num_replicas=world, rank=rank, shuffle=True, seed=seed,
                           drop_last=False)
    s.set_epoch(epoch)
    return ResumableBatchSampler(s, batch_size, skip)
