"""Training data for block compressive sensing of natural images.

* :class:`PatchDataset` — random ``P x P`` luminance patches cut from a folder of images
  (MADUN's pipeline: Train400, ``P = 33`` for the main phase, ``P = 99`` for the last
  fine-tuning epochs), with random dihedral augmentation (flips / 90° rotations);
* :class:`BlockMatDataset` — the authors' ``Training_Data.mat`` (ISTA-Net): variable
  ``labels``, ``N x 1089`` vectorised 33x33 blocks.

Items are ``(1, P, P)`` float32 tensors with values in ``[0, 1]``.

Example:
    >>> from torch.utils.data import DataLoader
    >>> ds = PatchDataset("../shared/data/natural/Train400", patch_size=33,
    ...                   patches_per_image=200, seed=0)              # doctest: +SKIP
    >>> for epoch in range(2):                                          # doctest: +SKIP
    ...     ds.set_epoch(epoch)
    ...     for x in DataLoader(ds, batch_size=64, shuffle=True):
    ...         pass                                                    # x: (64, 1, 33, 33)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from mri_unfold.operators import load_mat_variable

from .image_cache import load_image_stack

__all__ = ["DIHEDRAL_MODES", "BlockMatDataset", "PatchDataset", "dihedral"]

#: Number of dihedral augmentation modes (4 rotations x optional mirror).
DIHEDRAL_MODES = 8


def dihedral(a: np.ndarray, mode: int) -> np.ndarray:
    """Apply one of the 8 symmetries of the square to the last two axes of ``a``.

    ``mode = 4 * f + k``: rotate counter-clockwise by ``k * 90°`` (``np.rot90``), then, if
    ``f == 1``, mirror left-right.  Mode 0 is the identity.  MADUN's augmentation (random
    horizontal flip, vertical flip and transpose, each with probability 1/2) draws each of
    these 8 elements with probability 1/8, exactly as a uniform ``mode`` does.
    """
    if not 0 <= int(mode) < DIHEDRAL_MODES:
        raise ValueError(f"dihedral mode must be in 0..7, got {mode}")
    out = np.rot90(a, int(mode) % 4, axes=(-2, -1))
    return out[..., ::-1] if mode >= 4 else out


class PatchDataset(Dataset):
    """Random luminance patches from a folder of images, reproducible per (seed, epoch).

    Item ``i`` comes from image ``i // patches_per_image`` (sorted file order); its
    position (uniform over all positions inside the image) and dihedral mode (uniform over
    :data:`DIHEDRAL_MODES`, or the identity when ``augment=False``) are drawn for the whole
    epoch by a private ``numpy`` generator seeded with ``(seed, epoch)``.  Global RNG state
    (``random``, ``numpy.random``, ``torch``) is never used.  Call :meth:`set_epoch` before
    each epoch to get new (but reproducible) patches; with DataLoader workers, do not use
    ``persistent_workers=True`` (workers would keep the old epoch).

    Args:
        folder: directory of images (.png, .jpg, .tif, .bmp ...), e.g. ``Train400``.
        patch_size: P (33 for the main training phase, 99 for MADUN's fine-tuning).
        patches_per_image: patches per image and epoch (MADUN: 200).
        seed: seed of the patch/augmentation draws.
        augment: random flips / 90° rotations.
        cache_dir: optional directory for the decoded-image ``.npz`` cache
            (see :func:`natural_cs.image_cache.load_image_stack`).

    Item shape/dtype: ``(1, P, P)`` float32 in ``[0, 1]`` (8-bit value / 255).

    Raises:
        FileNotFoundError / ValueError: missing folder, no images in it, an image smaller
            than ``patch_size`` (the file is named), bad arguments.
    """

    def __init__(self, folder: str | Path, patch_size: int = 33, patches_per_image: int = 200,
                 seed: int = 0, augment: bool = True, cache_dir: str | Path | None = None):
        if int(patch_size) < 1:
            raise ValueError(f"patch_size must be a positive integer, got {patch_size}")
        if int(patches_per_image) < 1:
            raise ValueError(f"patches_per_image must be a positive integer, got "
                             f"{patches_per_image}")
        self.folder = Path(folder)
        self.patch_size = int(patch_size)
        self.patches_per_image = int(patches_per_image)
        self.seed = int(seed)
        self.augment = bool(augment)
        self.stack = load_image_stack(self.folder, cache_dir)
        small = [(n, self.stack.shape(i)) for i, n in enumerate(self.stack.names)
                 if min(self.stack.shape(i)) < self.patch_size]
        if small:
            name, (h, w) = small[0]
            raise ValueError(
                f"{self.folder / name}: image is {h}x{w}, smaller than patch_size "
                f"{self.patch_size}" + (f" ({len(small)} such images)" if len(small) > 1 else ""))
        self.epoch = -1
        self.set_epoch(0)

    def __len__(self) -> int:
        return len(self.stack) * self.patches_per_image

    def set_epoch(self, epoch: int) -> None:
        """Draw the positions and augmentation modes of epoch ``epoch`` (reproducible)."""
        epoch = int(epoch)
        if epoch == self.epoch:
            return
        rng = np.random.default_rng([self.seed, epoch])
        n = len(self)
        img = np.arange(n) // self.patches_per_image
        p = self.patch_size
        rows_free = self.stack.shapes[img, 0] - p + 1
        cols_free = self.stack.shapes[img, 1] - p + 1
        self._rows = rng.integers(0, rows_free)  # top-left corner, uniform per image
        self._cols = rng.integers(0, cols_free)
        self._modes = (rng.integers(0, DIHEDRAL_MODES, n) if self.augment
                       else np.zeros(n, dtype=np.int64))
        self.epoch = epoch

    def patch_spec(self, index: int) -> tuple[int, int, int, int]:
        """``(image index, top row, left column, dihedral mode)`` of item ``index``."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} patches")
        index %= len(self)
        return (index // self.patches_per_image, int(self._rows[index]),
                int(self._cols[index]), int(self._modes[index]))

    def __getitem__(self, index: int) -> torch.Tensor:
        i, r, c, mode = self.patch_spec(index)
        p = self.patch_size
        patch = dihedral(self.stack.image(i)[r:r + p, c:c + p], mode)
        return torch.from_numpy(np.ascontiguousarray(patch, dtype=np.float32)).div_(255.0)[None]

    def __repr__(self) -> str:
        return (f"PatchDataset(folder='{self.folder}', images={len(self.stack)}, "
                f"patch_size={self.patch_size}, patches_per_image={self.patches_per_image}, "
                f"seed={self.seed}, augment={self.augment}, epoch={self.epoch})")


class BlockMatDataset(Dataset):
    """The authors' ``Training_Data.mat``: vectorised training blocks.

    Args:
        path: MATLAB file, v5 (scipy) or v7.3/HDF5 (h5py), read with
            :func:`mri_unfold.operators.load_mat_variable`.
        variable: name of the ``N x B²`` array (``"labels"`` in the authors' file).
        block_size: B (33); rows are row-major vectorised ``B x B`` blocks.

    Item shape/dtype: ``(1, B, B)`` float32 in ``[0, 1]``.  The whole array is held in
    memory as float32 (``N * B² * 4`` bytes; 388 MB for the authors' 88 912 blocks).

    Raises:
        FileNotFoundError / KeyError / ValueError naming the file: missing file or variable,
            wrong shape, values outside ``[0, 1]``.
    """

    def __init__(self, path: str | Path, variable: str = "labels", block_size: int = 33):
        self.path = Path(path)
        self.block_size = int(block_size)
        a = load_mat_variable(self.path, variable)
        n = self.block_size ** 2
        if a.ndim != 2 or a.shape[1] != n or a.shape[0] < 1:
            raise ValueError(f"{self.path}: variable {variable!r} must be an N x {n} array of "
                             f"vectorised {self.block_size}x{self.block_size} blocks, got shape "
                             f"{a.shape}")
        if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
            raise ValueError(f"{self.path}: variable {variable!r} must be real numbers, got "
                             f"dtype {a.dtype}")
        self.blocks = np.ascontiguousarray(a, dtype=np.float32)
        lo, hi = float(self.blocks.min()), float(self.blocks.max())
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo < 0.0 or hi > 1.0:
            raise ValueError(f"{self.path}: variable {variable!r} must hold values in [0, 1], "
                             f"found range [{lo:g}, {hi:g}] (8-bit data must be divided by 255)")

    def __len__(self) -> int:
        return self.blocks.shape[0]

    def __getitem__(self, index: int) -> torch.Tensor:
        b = self.block_size
        return torch.tensor(self.blocks[index].reshape(1, b, b))

    def __repr__(self) -> str:
        return f"BlockMatDataset(path='{self.path}', blocks={len(self)}, block_size={self.block_size})"
