"""The images of a study: training, validation and test sets from the data-source registry.

Every set is opened with ``get_source(data.kind).open(...)`` (the study's data table holds
the source's own keys).  Validation images — where λ is swept and never the test images —
come from ``data.val`` or, by default, are the **last** ``val_images`` items of
``data.train``; training then uses the items before them (the engine's ``data.max_images``,
which takes the first items in the same order).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..data.sources import get_source
from ..errors import UserError

__all__ = ["StudyData", "open_study_data", "source_options"]


@dataclass
class StudyData:
    """The opened sets.

    Attributes:
        shape: ``(H, W)`` of every image.
        complex: whether the images are complex (operators then take complex images).
        train_n: training items (the first ``train_n`` of ``data.train``); 0 = none.
        val: ``(V, 1, H, W)`` validation images (float32, or complex64).
        test: ``(T, 1, H, W)`` test images.
        test_names: a name per test image (file name, ``file:slice`` for volumes).
        test_volumes: the volume of each test image (its metrics' data range is the
            volume's maximum).
    """

    shape: tuple[int, int]
    complex: bool
    train_n: int
    val: torch.Tensor
    test: torch.Tensor
    test_names: list[str] = field(default_factory=list)
    test_volumes: list[str] = field(default_factory=list)


def source_options(data_cfg: dict) -> dict:
    """The own options of ``data.kind``'s source from the study's data table."""
    return {k: data_cfg[k] for k in get_source(data_cfg["kind"]).options if k in data_cfg}


def _open(data_cfg: dict, which: str, max_items: int, seed: int):
    path = data_cfg[which]
    ds = get_source(data_cfg["kind"]).open(path, source_options(data_cfg), seed=seed,
                                           max_items=max_items, for_training=False)
    if len(ds) == 0:
        raise UserError(f"{path}: data.{which} is an empty data set (no images)")
    return ds


def _names(ds, n: int) -> tuple[list[str], list[str]]:
    index = getattr(ds, "index", None)
    if index is not None and len(index) >= n:             # volumes: (file, slice) per item
        return ([f"{f.name}:{s}" for f, s in index[:n]], [f.name for f, _ in index[:n]])
    files = getattr(ds, "files", None)
    if files is not None and len(files) >= n:
        names = [f.name for f in files[:n]]
        return names, names
    names = [f"{i:04d}" for i in range(n)]
    return names, names


def _stack(ds, idx, which: str) -> torch.Tensor:
    items = [ds[i] for i in idx]
    items = [x[0] if isinstance(x, (list, tuple)) else x for x in items]
    items = [x.unsqueeze(0) if x.ndim == 2 else x for x in items]
    shapes = {tuple(x.shape) for x in items}
    if len(shapes) != 1 or next(iter(shapes))[0] != 1:
        raise UserError(f"data.{which}: expected single-channel images of one size (1, H, W), "
                        f"got shapes {sorted(shapes)}")
    return torch.stack(items)


def open_study_data(data_cfg: dict, *, need_train: bool, need_val: bool,
                    seed: int = 0) -> StudyData:
    """Open the test set and, as needed, the validation and training sets (module doc).

    Raises:
        UserError / FileNotFoundError: a missing or empty set, no validation images left
            after the training images (or the reverse), images of different sizes.
    """
    d = data_cfg
    test_ds = _open(d, "test", d["test_images"], seed)
    test = _stack(test_ds, range(len(test_ds)), "test")
    names, volumes = _names(test_ds, len(test_ds))
    train_n, val = 0, test[:0]
    if d["val"] and need_val:
        val_ds = _open(d, "val", d["val_images"], seed)
        val = _stack(val_ds, range(len(val_ds)), "val")
    if d["train"] and (need_train or (need_val and not d["val"])):
        train_ds = _open(d, "train", 0, seed)
        n = len(train_ds)
        held = 0 if d["val"] else d["val_images"]
        if need_val and not d["val"]:
            if held < 1 or held >= n:
                raise UserError(f"{d['train']}: data.train has {n} images; data.val_images = "
                                f"{held} must leave at least one for training and hold out at "
                                "least one for validation (or give data.val)")
            val = _stack(train_ds, range(n - held, n), "train")
        train_n = d["train_images"] or n - held
        if need_train and train_n > n - held:
            raise UserError(f"{d['train']}: data.train_images = {train_n} but only {n - held} "
                            f"of its {n} images are not held out for validation")
        if need_train:
            first = _stack(train_ds, [0], "train")
            if tuple(first.shape[-2:]) != tuple(test.shape[-2:]):
                raise UserError(f"data.train images are {tuple(first.shape[-2:])}, data.test "
                                f"images {tuple(test.shape[-2:])}: a study needs one size")
    if need_val and len(val) == 0:
        raise UserError("the λ sweep needs validation images: give data.val or data.train")
    if len(val) and tuple(val.shape[-2:]) != tuple(test.shape[-2:]):
        raise UserError(f"validation images are {tuple(val.shape[-2:])}, test images "
                        f"{tuple(test.shape[-2:])}: a study needs one size")
    return StudyData(tuple(test.shape[-2:]), bool(test.is_complex()), train_n, val, test,
                     names, volumes)
