"""Training data of a protocol: the registered data source of ``data.kind`` and the
resumable per-epoch batch order.

:func:`build_dataset` opens ``data.train`` with the source (:mod:`mri_unfold.data.sources`);
every epoch's order comes from a seeded :class:`~torch.utils.data.DistributedSampler`
(``seed`` + epoch, also for one process) wrapped in :class:`ResumableBatchSampler`,
which can skip the batches already done in an interrupted epoch.
"""
from __future__ import annotations

from torch.utils.data import Dataset, DistributedSampler, Sampler

from ..data.sources import get_source

__all__ = ["build_dataset", "source_options", "stage_patch_size", "full_dataset", "item_shape",
           "ResumableBatchSampler", "epoch_batches", "training_stages"]


def source_options(data_cfg: dict) -> dict:
    """The options of ``data.kind``'s source taken from a protocol's ``data`` table."""
    src = get_source(data_cfg["kind"])
    return {k: data_cfg[k] for k in src.options if k in data_cfg}


def stage_patch_size(data_cfg: dict) -> int | None:
    """``data.patch_size`` for sources that cut patches, else None."""
    return data_cfg.get("patch_size")


def build_dataset(data_cfg: dict, seed: int, patch_size: int | None = None, *,
                  with_references: bool = True, path: str | None = None) -> Dataset:
    """Training data set for the protocol's ``data`` table (``patch_size`` overrides
    ``data.patch_size``, e.g. for a fine-tuning stage).  ``with_references=False`` opens
    k-space sources without their training images (self-supervised training: undersampled
    files are fine, nothing fully sampled is needed); ``path`` opens another folder of the
    same source (e.g. ``data.val``)."""
    src = get_source(data_cfg["kind"])
    return src.open(path or data_cfg["train"], source_options(data_cfg), seed=seed,
                    patch_size=patch_size or stage_patch_size(data_cfg),
                    max_items=data_cfg["max_images"] if path is None else 0,
                    for_training=with_references)


def full_dataset(ds: Dataset) -> Dataset:
    """The whole data set behind a head-limited one (``max_images``), e.g. for a Qinit fit."""
    return getattr(ds, "ds", ds)


def item_shape(ds: Dataset) -> tuple[int, int]:
    """Spatial size ``(H, W)`` of the data set's items (k-space samples: the k-space size)."""
    x = ds[0]
    x = x[0] if isinstance(x, (list, tuple)) else x
    x = getattr(x, "kspace", x)
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


def training_stages(cfg: dict) -> list[dict]:
    """The stages of a protocol: ``main`` (``training.epochs`` at ``data.patch_size``) and the
    optional ``finetune`` stage, each ``{"name", "epochs", "patch_size", "lr", "batch_size"}``."""
    t, ft = cfg["training"], cfg["training"]["finetune"]
    patch = stage_patch_size(cfg["data"])
    out = [{"name": "main", "epochs": t["epochs"], "patch_size": patch,
            "lr": t["lr"], "batch_size": t["batch_size"]}]
    if ft["epochs"] > 0:
        out.append({"name": "finetune", "epochs": ft["epochs"],
                    "patch_size": ft["patch_size"] or patch,
                    "lr": ft["lr"] or t["lr"], "batch_size": ft["batch_size"] or t["batch_size"]})
    return out
