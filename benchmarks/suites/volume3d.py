"""Volume3d suite: whole 3-D scans — a 256 x 256 x 176, 8-coil scan through ISTA-Net+ by
readout decoupling (a plain slice-by-slice loop against the streamed pipeline and its fast
paths, with peak memory), and the 3-D NUFFT normal of a stack of stars against finufft and
torchkbnufft forward+adjoint, in one process run.

Volume rows (the simulated scan of a smooth phantom, ky-kz Poisson 8x with a 24 x 24 ACS,
the simulation's coil maps; ISTA-Net+ 9 phases x 32 channels, complex images, seeded
weights; ``--quick``: 16 x 32 x 24, 4 coils, 2 phases x 8 channels):

* ``slice_loop`` (the peer) — for every readout position: its ky-kz sample, normalised, one
  ``MultiCoilFourier`` and ``model(y, op)`` with batch 1, fp32;
* ``streamed_fp32`` — :func:`mri_unfold.reconstruct.reconstruct_positions` (32 positions in
  memory, batches of ``--batch``, default 8);
* ``streamed_bf16`` / ``streamed_bf16_compiled`` — the same with the fast paths
  (:func:`mri_unfold.fastpath.accelerate`: bf16 autocast, ``torch.compile``);
* ``espirit_per_position`` — ESPIRiT maps of 16 positions, ``projected_volume_s`` for all.

Each volume row is timed once (a whole scan is minutes; ``--reps`` applies to the NUFFT
rows) after a warm-up on the 8 central positions, and its peak memory is measured in a fresh
process;
``time_vs_first`` is the row's time over the first row of its case (the peer slice loop;
for the NUFFT rows our stack-of-stars Toeplitz normal), ``max_rel_diff`` is
``max |x − x_first| / max |x_first|``.  ``kspace_mb`` is what the whole
3-D k-space and maps would take (complex64), against which the streamed peak is read.

NUFFT rows (stack of stars: 256 x 256 in-plane, 32 partitions, 8 coils, 101 golden-angle
spokes x 512 samples per partition = 4x below Nyquist; ``--quick``: 32 x 32 x 8, 2 coils,
12 x 64): ``StackOfStarsFourier.normal`` (2-D Toeplitz per partition), the same operator's
forward+adjoint (finufft 2-D), the 3-D ``NonCartesianFourier`` of the same samples (kz as a
third coordinate) by its 3-D Toeplitz normal and by finufft 3-D forward+adjoint, and
torchkbnufft 3-D forward+adjoint.
"""
from __future__ import annotations

import copy
import importlib.util
import math
import time

import numpy as np
import torch

from mri_unfold.data.simulate3d import SimulatedVolume
from mri_unfold.data.volume3d import PositionSubset
from mri_unfold.data.transforms import Normalize
from mri_unfold.data.espirit import EstimateCoilMaps
from mri_unfold.fastpath import FastPath, accelerate
from mri_unfold.masks.kykz import make_kykz_mask
from mri_unfold.models import build
from mri_unfold.operators import MultiCoilFourier, NonCartesianFourier, StackOfStarsFourier
from mri_unfold.reconstruct import reconstruct_positions
from mri_unfold.trajectories import stack_of_stars_trajectory

from ..measure import median_time
from ..memory_probe import probe_memory

COLUMNS = ["case", "variant", "seconds", "per_position_ms", "time_vs_first", "max_rel_diff",
           "peak_mem_mb", "kspace_mb"]

VOLUME_VARIANTS = ("slice_loop", "streamed_fp32", "streamed_bf16", "streamed_bf16_compiled")


def _sizes(quick: bool) -> dict:
    if quick:
        return {"shape": (16, 32, 24), "coils": 4, "acs": (8, 8), "phases": 2, "channels": 8}
    return {"shape": (256, 256, 176), "coils": 8, "acs": (24, 24), "phases": 9, "channels": 32}


def _phantom(shape) -> np.ndarray:
    g = [np.linspace(-1, 1, n, dtype=np.float32) for n in shape]
    x, y, z = np.meshgrid(*g, indexing="ij")
    r = x * x / 0.7 + y * y / 0.8 + z * z / 0.6
    return ((r < 1) * (0.6 + 0.4 * np.cos(6 * x) * np.sin(5 * y + z))).astype(np.float32)


def build_volume_case(quick: bool):
    """``(scan, model)``: the simulated 3-D scan and the seeded ISTA-Net+ (module doc)."""
    s = _sizes(quick)
    mask = make_kykz_mask("poisson", s["shape"][1:], acceleration=8, acs=s["acs"], seed=0).mask
    scan = SimulatedVolume(_phantom(s["shape"]), mask, coils=s["coils"], seed=0)
    model = build("ista_net_plus", num_phases=s["phases"], channels=s["channels"],
                  image_channels=2, seed=0).eval()
    return scan, model


def slice_loop(scan, model, positions=None) -> np.ndarray:
    """The peer: one readout position at a time, batch 1, fp32 -> ``(P, Y, Z)`` magnitude."""
    out = []
    norm = Normalize("zero_filled_max")
    with torch.inference_mode():
        for x in range(len(scan)) if positions is None else positions:
            s = norm(scan.samples([x])[0])
            op = MultiCoilFourier(s.mask, s.coil_maps[None])
            out.append(model(s.kspace[None], op)[0, 0].abs().numpy() * s.metadata.scale)
    return np.stack(out)


def warmup_positions(x: int) -> range:
    """The 8 central readout positions of an ``x``-position scan: the warm-up chunk (the
    phantom's edge positions are empty, and metrics of an all-zero target are refused)."""
    return range(max(0, x // 2 - 4), min(x, x // 2 + 4))


def volume_call(variant: str, scan, model, batch: int, positions=None):
    """A zero-argument call reconstructing the scan (``positions``: a sub-scan for warm-up)."""
    if variant == "slice_loop":
        return lambda: slice_loop(scan, model, positions)
    path = {"streamed_fp32": None, "streamed_bf16": FastPath(autocast="bf16"),
            "streamed_bf16_compiled": FastPath(autocast="bf16", compile=True)}[variant]
    net = model if path is None else accelerate(copy.deepcopy(model), path)
    sub = scan if positions is None else PositionSubset(scan, positions)
    return lambda: reconstruct_positions(sub, net, maps="given", batch_size=batch, chunk=32,
                                         progress=False,
                                         pad_last_batch=variant.endswith("compiled")
                                         ).reconstruction


def _volume_rows(args, device) -> list[dict]:
    scan, model = build_volume_case(args.quick)
    batch = args.batch or (2 if args.quick else 8)
    c, (x, y, z) = scan.num_coils, scan.shape
    kspace_mb = 2 * 8 * c * x * y * z / 2 ** 20
    variants = [v for v in VOLUME_VARIANTS if args.compile or "compiled" not in v]
    rows, ref, t_ref = [], None, None
    for v in variants:
        volume_call(v, scan, model, batch, warmup_positions(x))()       # warm-up
        t0 = time.perf_counter()
        out = volume_call(v, scan, model, batch)()
        t = time.perf_counter() - t0
        ref = out if ref is None else ref
        t_ref = t if t_ref is None else t_ref
        row = {"case": f"ISTA-Net+ {x}x{y}x{z} {c}-coil", "variant": v, "seconds": t,
               "per_position_ms": 1e3 * t / x, "time_vs_first": t / t_ref,
               "max_rel_diff": float(np.abs(out - ref).max() / np.abs(ref).max()),
               "kspace_mb": kspace_mb, "peak_mem_mb": float("nan")}
        if args.memory == "subprocess":
            mem = probe_memory({"suite": "volume3d", "variant": v, "batch": batch}, args,
                               device, timeout=3600)
            row["peak_mem_mb"] = mem.get("peak_mem_mb", float("nan"))
        rows.append(row)
    estimate = EstimateCoilMaps(None)
    n = min(16, x)
    t0 = time.perf_counter()
    for s in scan.samples(range(x // 2 - n // 2, x // 2 - n // 2 + n)):
        estimate(s)
    t = time.perf_counter() - t0
    rows.append({"case": f"ESPIRiT per position ({n} positions; x{x} projected)",
                 "variant": "espirit_per_position", "seconds": t * x / n,
                 "per_position_ms": 1e3 * t / n, "time_vs_first": float("nan"),
                 "max_rel_diff": float("nan"), "peak_mem_mb": float("nan"),
                 "kspace_mb": kspace_mb})
    return rows


def _nufft_rows(args, device) -> list[dict]:
    n, nz, coils, spokes, readout = (32, 8, 2, 12, 64) if args.quick else (256, 32, 8, 101, 512)
    traj = stack_of_stars_trajectory(n, nz, num_spokes=spokes, readout=readout)
    g = torch.Generator().manual_seed(1)
    maps = torch.randn(coils, n, n, nz, dtype=torch.complex64, generator=g)
    maps = maps / maps.abs().pow(2).sum(0, keepdim=True).sqrt()
    x = torch.randn(1, 1, n, n, nz, dtype=torch.complex64, generator=g)
    sos = StackOfStarsFourier(traj, (n, n, nz), maps)
    kz = 2 * math.pi * (np.arange(nz) - nz // 2) / nz                    # Cartesian kz lines
    t3 = np.concatenate([np.concatenate([traj, np.full((len(traj), 1), k)], 1) for k in kz])
    three = NonCartesianFourier(t3, (n, n, nz), maps)
    plain3 = NonCartesianFourier(t3, (n, n, nz), maps, toeplitz=False)
    calls = {"stack-of-stars normal (2-D Toeplitz per partition)": lambda: sos.normal(x),
             "stack-of-stars forward+adjoint (finufft 2-D)": lambda: sos.adjoint(sos(x)),
             "3-D NUFFT normal (3-D Toeplitz)": lambda: three.normal(x),
             "3-D NUFFT forward+adjoint (finufft 3-D)": lambda: plain3.adjoint(plain3(x))}
    if importlib.util.find_spec("torchkbnufft") is not None:
        kb = NonCartesianFourier(t3, (n, n, nz), maps, toeplitz=False, backend="torchkbnufft")
        calls["3-D NUFFT forward+adjoint (torchkbnufft)"] = lambda: kb.adjoint(kb(x))
    rows, ref, t_ref = [], None, None
    case = f"stack of stars {n}x{n}x{nz}, {coils} coils, {spokes} spokes x {readout}"
    with torch.inference_mode():
        sos.kernel(x)
        three.kernel(x)
        for name, fn in calls.items():
            t = median_time(fn, device, args.warmup, args.reps)
            out = fn()
            ref = out if ref is None else ref
            t_ref = t if t_ref is None else t_ref
            rows.append({"case": case, "variant": name, "seconds": t,
                         "per_position_ms": float("nan"), "time_vs_first": t / t_ref,
                         "max_rel_diff": float((out - ref).abs().max() / ref.abs().max()),
                         "peak_mem_mb": float("nan"), "kspace_mb": float("nan")})
    return rows


def memory_calls(spec: dict, quick: bool):
    """``(call, warm_up)``: the call :mod:`benchmarks.memory_child` measures for a volume row
    and its warm-up on the central positions (the same scan and model; a whole-scan warm-up
    would double the minutes of a full-size row)."""
    scan, model = build_volume_case(quick)
    variant, batch = spec["variant"], int(spec["batch"])
    return (volume_call(variant, scan, model, batch),
            volume_call(variant, scan, model, batch, warmup_positions(scan.shape[0])))


def run(args, device: torch.device, ceilings: dict) -> list[dict]:
    if device.type != "cpu":
        raise SystemExit("the volume3d suite measures the CPU paths; run it with --device cpu")
    return _volume_rows(args, device) + _nufft_rows(args, device)
