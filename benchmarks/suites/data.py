"""Data suite: the fastMRI multi-coil pipeline (read slice -> crop -> mask -> normalise,
``FastMRISliceDataset`` + ``fastmri_transform``) against MADUN's training consumption rate
on the same slices (one L1/Adam step per slice, 15 coils, 320x320).

The files are synthetic fastMRI files written to a temporary folder by
``tests/fake_fastmri.py`` (no real fastMRI data is needed); coil maps are treated as
precomputed (the ESPIRiT cache of :mod:`mri_unfold.data.espirit`), so ESPIRiT itself is
not part of the measured pipeline.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from mri_unfold.data.fastmri_slices import FastMRISliceDataset
from mri_unfold.data.transforms import fastmri_transform

from ..measure import median_time
from .cases import make_model, make_operator

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from fake_fastmri import write_fake_fastmri  # noqa: E402


def _pipeline_rate(root: Path, workers: int, seconds_cap: float) -> tuple[float, int]:
    ds = FastMRISliceDataset(root, "multicoil", transform=fastmri_transform("random",
                                                                            acceleration=4.0))
    loader = DataLoader(ds, batch_size=None, shuffle=False, num_workers=workers)
    n, t0 = 0, time.perf_counter()
    for sample in loader:
        assert sample.kspace.is_complex()
        n += 1
        if time.perf_counter() - t0 > seconds_cap:
            break
    return n / (time.perf_counter() - t0), n


def run(args, device: torch.device, ceilings: dict) -> list[dict]:
    side, coils = (32, 4) if args.quick else (320, 15)
    files, slices = (1, 4) if args.quick else (2, 8)
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(files):
            write_fake_fastmri(Path(tmp) / f"file{i}.h5", challenge="multicoil",
                               num_slices=slices, shape=(side, side), recon_size=(side, side),
                               num_coils=coils)
        rate, n = _pipeline_rate(Path(tmp), args.workers, seconds_cap=60.0)
    op, x = make_operator("multi15_320", args.quick, device)
    y = op(x)
    model = make_model("madun_25x32", op, args.quick, device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step():
        opt.zero_grad(set_to_none=True)
        F.l1_loss(torch.view_as_real(model(y, op)), torch.view_as_real(x)).backward()
        opt.step()

    t = median_time(step, device, warmup=args.warmup, reps=max(1, args.reps // 2))
    return [{"suite": "data", "model": "madun_25x32", "operator": f"multi{coils}_{side}",
             "variant": f"workers={args.workers}", "slices_read": n,
             "pipeline_slices_per_s": rate, "model_slices_per_s": 1.0 / t,
             "pipeline_over_model": rate * t}]


COLUMNS = ["model", "operator", "variant", "slices_read", "pipeline_slices_per_s",
           "model_slices_per_s", "pipeline_over_model"]
