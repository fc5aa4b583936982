"""Models and operators the benchmark suites run (full and ``--quick`` sizes)."""
from __future__ import annotations

import torch

from mri_unfold.models import build
from mri_unfold.operators import GaussianBlockCS, MultiCoilFourier, SingleCoilFourier

#: name -> (registered architecture, full config, quick config)
MODELS = {
    "ista_net_plus": ("ista_net_plus", dict(num_phases=9, channels=32), dict(num_phases=2, channels=8)),
    "fista_net": ("fista_net", dict(num_phases=9, channels=32), dict(num_phases=2, channels=8)),
    "madun_25x32": ("madun", dict(num_stages=25, channels=32), dict(num_stages=2, channels=8)),
    "madun_small": ("madun", dict(num_stages=5, channels=16), dict(num_stages=1, channels=4)),
}

#: name -> (kind, full image side, quick image side, coils)
OPERATORS = {
    "block_cs_264": ("block_cs", 264, 66, 0),
    "single_256": ("single_real", 256, 32, 0),
    "single_320": ("single_complex", 320, 32, 0),
    "multi15_320": ("multi", 320, 32, 15),
}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def make_operator(name: str, quick: bool, device: torch.device):
    """``(operator, clean image (1, 1, H, W))`` for an entry of :data:`OPERATORS`; masks,
    coil maps and images come from private seeded generators."""
    kind, full, small, coils = OPERATORS[name]
    side = small if quick else full
    if kind == "block_cs":
        op = GaussianBlockCS(0.25, block_size=33, seed=0)
        x = torch.rand(1, 1, side, side, generator=_gen(1))
        return op.to(device), x.to(device)
    mask = torch.rand(side, side, generator=_gen(2)) < 0.25
    c = side // 2
    mask[c - side // 16: c + side // 16] = True  # fully sampled centre rows
    if kind == "single_real":
        op = SingleCoilFourier(mask, real_input=True)
        x = torch.rand(1, 1, side, side, generator=_gen(3))
    else:
        x = torch.randn(1, 1, side, side, dtype=torch.complex64, generator=_gen(3))
        if kind == "single_complex":
            op = SingleCoilFourier(mask)
        else:
            n = coils if not quick else 4
            maps = torch.randn(n, side, side, dtype=torch.complex64, generator=_gen(4))
            maps = maps / maps.abs().square().sum(0, keepdim=True).sqrt()
            op = MultiCoilFourier(mask, maps)
    return op.to(device), x.to(device)


def make_model(name: str, op, quick: bool, device: torch.device):
    """A seeded package model for ``op`` (ISTA family runs blockwise on block CS)."""
    arch, full, small = MODELS[name]
    cfg = dict(small if quick else full, seed=0)
    if arch != "madun":
        cfg["blockwise"] = op.block_size is not None
    cfg["image_channels"] = 2 if op.complex_domain else 1
    return build(arch, **cfg).to(device)


def select(names: str | None, table: dict) -> list[str]:
    """Comma-separated subset of ``table``'s keys (all when ``names`` is empty).

    Raises:
        ValueError: an unknown name (the message lists the valid ones).
    """
    if not names:
        return list(table)
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    bad = [n for n in chosen if n not in table]
    if bad:
        raise ValueError(f"unknown name(s) {bad}; valid: {', '.join(table)}")
    return chosen
