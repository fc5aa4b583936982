"""A data set of stored slices with a k-space preparation applied on access."""
from __future__ import annotations

from typing import Callable, Sequence

from torch.utils.data import Dataset

from ..samples import KSpaceSample, collate_samples

__all__ = ["PreparedSlices"]


class PreparedSlices(Dataset):
    """``transform(base[i])`` for the slices of ``base`` (a list or data set of
    :class:`~mri_unfold.data.KSpaceSample`).

    Items: :class:`~mri_unfold.data.KSpaceSample` (``kspace`` ``(C, H, W)`` complex64, mask,
    coil maps, ``image`` ``(1, H, W)`` when prepared for training), stacked by
    :func:`~mri_unfold.data.collate_samples`.
    """

    def __init__(self, base: Sequence[KSpaceSample] | Dataset,
                 transform: Callable[[KSpaceSample], KSpaceSample]):
        self.base, self.transform = base, transform

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> KSpaceSample:
        return self.transform(self.base[i])

    @property
    def collate_fn(self):
        """:func:`~mri_unfold.data.collate_samples` (the one collate)."""
        return collate_samples
