"""The cells of a study — one mask × one method — and how shards share them.

A **mask** of a study (:class:`StudyMask`) is a generated mask (``make_mask`` kind,
acceleration, centre fraction, seed), a mask file, or a learned mask (dims, acceleration);
its ``label`` names the line it belongs to in the plots (``"poisson"``, ``"learned-2d"``, a
file's stem) and its ``id`` adds the acceleration (``"poisson_6x"``).

A **cell** (:class:`Cell`) is one mask with one method: a classical method (``"zero-filled"``,
``"l1-wavelet-fista"``, ...), a pretrained checkpoint (``"ckpt-<stem>"``) or the study's
network trained on that mask (its model name).  Cells are the unit of work, of resuming and
of the summary statistics.

**Shards** (``K/N``, 1-based): the cells are grouped — the cells of one learned mask form one
group, since its classical and checkpoint cells need the mask its network cell learns;
every other cell is a group of its own — groups with a trained network first, then the
others, and shard ``K`` runs groups ``K−1, K−1+N, ...``.  Every cell belongs to exactly one
shard.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidValue

__all__ = ["StudyMask", "Cell", "plan_masks", "plan_cells", "parse_shard", "shard_cells",
           "NETWORK", "CLASSICAL", "CHECKPOINT"]

CLASSICAL, CHECKPOINT, NETWORK = "classical", "checkpoint", "network"


@dataclass(frozen=True)
class StudyMask:
    """One mask of a study.

    Attributes:
        label: the mask's line in plots and tables (kind, file stem, ``learned-<dims>d``).
        kind: a ``make_mask`` kind, ``"file"`` or ``"learned"``.
        acceleration: requested acceleration (a file's: its achieved one).
        center_fraction: 0 = the kind's default.
        seed: the mask seed (learned masks: initialisation and sampling).
        file: the mask file (``kind == "file"``).
        dims: 1 or 2 (``kind == "learned"``).
    """

    label: str
    kind: str
    acceleration: float
    center_fraction: float = 0.0
    seed: int = 0
    file: str = ""
    dims: int = 0

    @property
    def id(self) -> str:
        """``<label>_<acceleration>x``, safe as a file name."""
        return f"{self.label}_{self.acceleration:g}x"

    @property
    def learned(self) -> bool:
        return self.kind == "learned"


@dataclass(frozen=True)
class Cell:
    """One mask × one method; ``family`` is :data:`CLASSICAL`, :data:`CHECKPOINT` or
    :data:`NETWORK`; ``source`` is the checkpoint file of a checkpoint cell."""

    mask: StudyMask
    method: str
    family: str
    source: str = ""

    @property
    def id(self) -> str:
        """``<mask id>__<method>``, the cell's folder name."""
        return f"{self.mask.id}__{self.method}"


def _label(kind: str, cf: float, seed: int, several_seeds: bool) -> str:
    return kind + (f"-cf{cf:g}" if cf else "") + (f"-s{seed}" if several_seeds else "")


def plan_masks(masks_cfg: dict, file_accelerations: dict[str, float]) -> list[StudyMask]:
    """The study's masks in order: generated (kinds × accelerations × centre fractions ×
    seeds), files (``file_accelerations``: file -> its achieved acceleration), learned
    (dims × accelerations)."""
    out = []
    several = len(masks_cfg["seeds"]) > 1
    for kind in masks_cfg["kinds"]:
        for acc in masks_cfg["accelerations"]:
            for cf in masks_cfg["center_fractions"]:
                for seed in masks_cfg["seeds"]:
                    out.append(StudyMask(_label(kind, cf, seed, several), kind, float(acc),
                                         float(cf), int(seed)))
    stems = [Path(f).stem for f in masks_cfg["files"]]
    if len(set(stems)) != len(stems):
        raise InvalidValue(f"masks.files: two files have the same name {sorted(stems)}; "
                           "rename one (the name labels its results)")
    for f, stem in zip(masks_cfg["files"], stems):
        out.append(StudyMask(re.sub(r"[^\w.-]", "_", stem), "file", file_accelerations[f],
                             file=f))
    for dims in masks_cfg["learned_dims"]:
        for acc in masks_cfg["accelerations"]:
            out.append(StudyMask(f"learned-{dims}d", "learned", float(acc),
                                 masks_cfg["learned_center_fraction"], 0, dims=int(dims)))
    return out


def plan_cells(masks: list[StudyMask], cfg: dict) -> list[Cell]:
    """Every cell of the study, in order: per mask, the network cell of a learned mask
    first, then the classical methods, the checkpoints and (hand-designed masks) the
    network.

    Raises:
        InvalidValue: two checkpoints with the same file name.
    """
    meth, model = cfg["methods"], cfg["network"]["model"]
    stems = [Path(c).stem for c in meth["checkpoints"]]
    if len(set(stems)) != len(stems):
        raise InvalidValue(f"methods.checkpoints: two files have the same name {sorted(stems)}")
    cells = []
    for m in masks:
        net = [Cell(m, model, NETWORK)] if model else []
        rest = [Cell(m, c, CLASSICAL) for c in meth["classical"]]
        rest += [Cell(m, f"ckpt-{s}", CHECKPOINT, c) for s, c in zip(stems, meth["checkpoints"])]
        cells += net + rest if m.learned else rest + net
    return cells


def parse_shard(spec: str) -> tuple[int, int]:
    """``"K/N"`` -> ``(K, N)`` with ``1 <= K <= N``.

    Raises:
        InvalidValue: anything else, naming the spec.
    """
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(spec))
    if not m:
        raise InvalidValue(f"shard {spec!r}: expected K/N, e.g. 1/4")
    k, n = int(m.group(1)), int(m.group(2))
    if not 1 <= k <= n:
        raise InvalidValue(f"shard {spec!r}: K must be between 1 and N (got K={k}, N={n})")
    return k, n


def _groups(cells: list[Cell]) -> list[list[Cell]]:
    groups: dict[str, list[Cell]] = {}
    for c in cells:
        key = c.mask.id if c.mask.learned else c.id
        groups.setdefault(key, []).append(c)
    ordered = list(groups.values())
    return ([g for g in ordered if any(c.family == NETWORK for c in g)]
            + [g for g in ordered if not any(c.family == NETWORK for c in g)])


def shard_cells(cells: list[Cell], k: int, n: int) -> list[Cell]:
    """The cells of shard ``k`` of ``n`` (module doc), in running order."""
    return [c for i, g in enumerate(_groups(cells)) if i % n == k - 1 for c in g]
