"""The allowed range of every number of a protocol, and the rule for its ``name``.

The schema of :mod:`.config` checks types; this module checks values, so that a setting out of
range (``seed = -1``, ``operator.ratio = 1.5``, ``training.max_steps = -1``) is one error
naming the key, before anything is built, instead of a failure deep inside a library or a
run that silently does nothing.  Also used by the study protocols (:mod:`mri_unfold.studies`).
"""
from __future__ import annotations

import math
from typing import Callable

from ..errors import UserError

__all__ = ["RANGES", "check_ranges", "check_name"]

_Rule = tuple[Callable[[float], bool], str]
AT_LEAST_0: _Rule = (lambda v: v >= 0, ">= 0")
AT_LEAST_1: _Rule = (lambda v: v >= 1, ">= 1")
POSITIVE: _Rule = (lambda v: v > 0, "> 0")
RATIO: _Rule = (lambda v: 0 < v <= 1, "in (0, 1]")
FRACTION: _Rule = (lambda v: 0 <= v < 1, "in [0, 1)")
SEED: _Rule = (lambda v: 0 <= v < 2 ** 63, "in [0, 2^63)")

#: Dotted key -> (predicate, what is allowed).  Every value must also be finite.
RANGES: dict[str, _Rule] = {
    "seed": SEED,
    "data.max_images": AT_LEAST_0,
    "data.num_workers": AT_LEAST_0,
    "operator.ratio": RATIO,
    "operator.block_size": AT_LEAST_1,
    "operator.seed": SEED,
    "operator.center_fraction": FRACTION,
    "operator.acceleration": POSITIVE,
    "operator.readout": AT_LEAST_0,
    "operator.coils": AT_LEAST_1,
    "operator.mask_dims": (lambda v: v in (1, 2), "1 or 2"),
    "operator.mask_prob_slope": POSITIVE,
    "operator.mask_slope_start": POSITIVE,
    "operator.mask_slope_end": POSITIVE,
    "operator.mask_anneal_steps": AT_LEAST_0,
    "model.seed": SEED,
    "training.epochs": AT_LEAST_1,
    "training.batch_size": AT_LEAST_1,
    "training.lr": POSITIVE,
    "training.min_lr": AT_LEAST_0,
    "training.gamma": POSITIVE,
    "training.step_size": AT_LEAST_1,
    "training.weight_decay": AT_LEAST_0,
    "training.grad_clip": AT_LEAST_0,
    "training.checkpoint_every": AT_LEAST_0,
    "training.max_steps": AT_LEAST_0,
    "training.max_seconds": AT_LEAST_0,
    "training.log_every": AT_LEAST_1,
    "training.finetune.epochs": AT_LEAST_0,
    "training.finetune.patch_size": AT_LEAST_0,
    "training.finetune.lr": AT_LEAST_0,
    "training.finetune.batch_size": AT_LEAST_0,
    "evaluation.every": AT_LEAST_0,
    "evaluation.max_images": AT_LEAST_0,
}


def _get(cfg: dict, key: str):
    node = cfg
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def check_ranges(cfg: dict, source: str, ranges: dict[str, _Rule] = RANGES) -> None:
    """Check every number of ``cfg`` named in ``ranges`` (keys absent from ``cfg`` are skipped;
    so are the data options of other sources).

    Raises:
        UserError: ``"<source>: <key> must be [a finite number] <rule>, got <value>"``.
    """
    for key, (ok, want) in ranges.items():
        value = _get(cfg, key)
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if not (math.isfinite(value) and ok(value)):
            kind = "" if isinstance(value, int) else "a finite number "
            raise UserError(f"{source}: {key} must be {kind}{want}, got {value}")
    milestones = _get(cfg, "training.milestones") or []
    if not all(isinstance(m, int) and not isinstance(m, bool) and m >= 1 for m in milestones):
        raise UserError(f"{source}: training.milestones must be epochs (integers >= 1), got "
                        f"{milestones}")


def check_name(name: str, source: str, what: str = "name") -> str:
    """A protocol's or study's ``name`` names its default folder (``runs/<name>``,
    ``studies/<name>``), so it must be one plain folder name: not empty, not ``.`` or ``..``,
    no path separator (so neither a relative escape like ``../../x`` nor an absolute path).

    Raises:
        UserError naming the key and the value.
    """
    if (not isinstance(name, str) or name.strip() in ("", ".", "..")
            or any(c in name for c in "/\\\0") or len(name) > 200):
        raise UserError(f"{source}: {what} = {name!r} must be a plain folder name (no '/', not "
                        "'..'); it names the default output folder")
    return name
