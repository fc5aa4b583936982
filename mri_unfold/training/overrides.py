"""Command-line overrides of a protocol: ``--override dotted.key=value``.

Values are TOML-typed (``training.lr=1e-3``, ``operator.phi="gaussian"``,
``evaluation.sets=["a", "b"]``; a bare word is a string).  Switching ``data.kind`` drops the
previous kind's own keys from the ``data`` table first (each data source owns its keys), so a
protocol written for one kind can be run with another.
"""
from __future__ import annotations

import copy
import tomllib
from typing import Any

from ..data.sources import get_source, source_kinds
from ..errors import UserError

__all__ = ["parse_override", "apply_overrides", "COMMON_DATA_KEYS"]

#: ``data`` keys common to every kind (the rest belong to the kind's source).
COMMON_DATA_KEYS = ("kind", "train", "val", "max_images", "num_workers")


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"a.b=value"`` -> (``["a", "b"]``, TOML-typed value; a bare word is a string)."""
    if "=" not in text:
        raise UserError(f"--override {text!r}: expected KEY=VALUE with a dotted key, e.g. "
                        "training.lr=1e-3")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise UserError(f"--override {text!r}: empty key")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key.split("."), value


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Set dotted keys in a raw (not yet validated) protocol dict; returns a copy.

    Switching ``data.kind`` drops the keys of the previous kind's source from the ``data``
    table first (e.g. ``patches_per_image`` when switching to ``block_mat``), so a protocol
    written for one kind can be run with another; later overrides may set the new kind's
    keys.
    """
    raw = copy.deepcopy(raw)
    for text in overrides or []:
        keys, value = parse_override(text)
        data = raw.get("data")
        if keys == ["data", "kind"] and isinstance(data, dict) and data.get("kind") != value:
            _drop_source_keys(data, data.get("kind", "patches"))
        node = raw
        for k in keys[:-1]:
            nxt = node.setdefault(k, {})
            if not isinstance(nxt, dict):
                raise UserError(f"--override {text!r}: {k!r} is not a table")
            node = nxt
        node[keys[-1]] = value
    return raw



def _drop_source_keys(data: dict, kind) -> None:
    """Remove the own options of source ``kind`` (if registered) from a raw ``data`` table."""
    if isinstance(kind, str) and kind in source_kinds():
        for key in get_source(kind).options:
            if key not in COMMON_DATA_KEYS:
                data.pop(key, None)


