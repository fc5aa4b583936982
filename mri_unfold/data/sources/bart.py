"""The ``bart`` data source: k-space in BART's ``.cfl``/``.hdr`` files.

Dimension order and layout: :mod:`mri_unfold.data.bart` (READ -> ``H``, PHS1 -> ``W``, COIL
-> ``C``, SLICE and any other dimension -> slices; BART k-space is centred like ours).
Recognised by content: a ``.cfl`` or ``.hdr`` path whose ``.hdr`` starts with
``# Dimensions`` and whose ``.cfl`` has the size the header says.  BART files carry no field
of view or orientation: slices have no FOV and no affine.  Write BART files with
:func:`mri_unfold.data.bart.write_cfl` (``kspace_to_bart`` for our slices).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import UserError
from ..bart import bart_stem, bart_to_kspace, read_cfl, read_header
from ..raw_samples import RawSlices, stack_slices
from .raw_open import RAW_OPTIONS, check_raw_options, open_raw
from .registry import DataSource, register_source

__all__ = ["BartSource", "read_bart"]


def read_bart(path: str | Path) -> RawSlices:
    """The slices of a BART k-space array: ``kspace`` ``(C, H, W)`` complex64 per slice,
    ``mask`` measured from the data.

    Raises:
        DataFileError naming the file: invalid header, wrong ``.cfl`` size, NaN/Inf.
    """
    stem = bart_stem(path)
    array = read_cfl(stem)
    k = bart_to_kspace(array)
    return stack_slices(k, stem.with_suffix(".cfl"), {
        "format": "BART .cfl/.hdr", "bart_dims": list(array.shape), "trajectory": "cartesian"})


@register_source
class BartSource(DataSource):
    """BART ``.cfl``/``.hdr`` k-space (module doc)."""

    kind = "bart"
    yields = "kspace"
    description = "BART .cfl/.hdr k-space (READ, PHS1, PHS2, COIL, ..., SLICE)"
    options = dict(RAW_OPTIONS)

    @classmethod
    def check_options(cls, options: dict, where: str) -> None:
        check_raw_options(options, where)

    @classmethod
    def detect(cls, path: Path) -> bool:
        p = Path(path)
        if p.suffix.lower() not in (".cfl", ".hdr") or not p.is_file():
            return False
        stem = bart_stem(p)
        dims = read_header(stem)
        cfl = stem.with_suffix(".cfl")
        return dims is not None and cfl.is_file() and cfl.stat().st_size == 8 * int(np.prod(dims))

    @classmethod
    def files(cls, path, max_items: int = 0) -> list[Path]:
        p = Path(path)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() == ".cfl" and cls.detect(f))
            if not found:
                raise UserError(f"{p}: folder holds no BART .cfl/.hdr files")
            return found[:max_items] if max_items else found
        return super().files(path, max_items)

    @classmethod
    def read(cls, path, options: dict | None = None) -> RawSlices:
        return read_bart(path)

    @classmethod
    def open(cls, path, options: dict, *, seed: int = 0, patch_size=None, max_items: int = 0,
             for_training: bool = True):
        return open_raw(cls, path, options, max_items=max_items, for_training=for_training)
