"""NUFFT suite: our non-Cartesian operator against SigPy's and torchkbnufft's NUFFTs, and the
networks' inference time per slice on radial next to Cartesian, in one process.

Operator rows (256 x 256, 402 golden-angle spokes x 512 samples = 2x readout oversampling,
K = 205,824; 1 and 15 coils; complex64; ``--quick``: 32 x 32, 50 spokes x 64):

* ``ours forward+adjoint`` — :class:`~mri_unfold.operators.NonCartesianFourier` (finufft,
  eps 1e-6), ``adjoint(forward(x))``;
* ``ours normal (Toeplitz)`` — ``op.normal(x)``, the PSF kernel precomputed (its one-off cost
  is its own row);
* ``sigpy forward+adjoint`` — ``sigpy.nufft`` / ``sigpy.nufft_adjoint`` (defaults:
  oversampling 1.25, Kaiser-Bessel width 4);
* ``torchkbnufft forward+adjoint`` — ``KbNufft`` / ``KbNufftAdjoint`` (defaults), when the
  package is installed (``pip install '.[bench]'``).

``peer_over_ours_normal``: the peer's forward+adjoint time over our Toeplitz normal (goal:
>= 3 for the fastest peer).  ``adjoint_rel_diff``: ``‖A^H y − A_peer^H y‖ / ‖A^H y‖`` for the
same ``y`` (our scaling: SigPy's is the same, torchkbnufft's is divided by ``sqrt(H W)``).

Network rows: ISTA-Net+ (9 phases) and MADUN (25 stages), 32 channels, complex images,
per slice (batch 1) under ``torch.inference_mode``: Cartesian single-coil (a seeded 2-D
random mask, 12.5 %) and 8x golden-angle radial (51 spokes x 512, ramp DCF); ``op_share``
is the time of the operator calls the network makes (counted: one adjoint, one normal per
phase) over the network's time.
"""
from __future__ import annotations

import importlib.util
import math

import numpy as np
import torch

from mri_unfold.models import build
from mri_unfold.operators import NonCartesianFourier, SingleCoilFourier
from mri_unfold.trajectories import make_trajectory, radial_trajectory

from ..measure import median_time

COLUMNS = ["case", "coils", "seconds", "peer_over_ours_normal", "adjoint_rel_diff", "op_share"]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(a))


def _operator_rows(args, device, n, spokes, readout, coils) -> list[dict]:
    reps, warm = args.reps, args.warmup
    traj = radial_trajectory(n, num_spokes=spokes, readout=readout, ordering="golden")
    g = torch.Generator().manual_seed(coils)
    maps = None
    if coils > 1:
        maps = torch.randn(coils, n, n, dtype=torch.complex64, generator=g)
        maps = maps / maps.abs().pow(2).sum(0).sqrt()
    op = NonCartesianFourier(traj, (n, n), coil_maps=maps)
    x = torch.randn(1, 1, n, n, dtype=torch.complex64, generator=g)
    y = torch.randn(1, coils, len(traj), dtype=torch.complex64, generator=g)
    coil_x = x if maps is None else x * maps
    rows = []

    def row(case, seconds, **extra):
        rows.append({"case": case, "coils": coils, "seconds": seconds,
                     "peer_over_ours_normal": float("nan"), "adjoint_rel_diff": float("nan"),
                     "op_share": float("nan"), **extra})

    with torch.inference_mode():
        t_fa = median_time(lambda: op.adjoint(op(x)), device, warm, reps)
        t_kernel = median_time(lambda: NonCartesianFourier(traj, (n, n)).kernel(x), device, 0,
                               1)
        op.kernel(x)
        t_normal = median_time(lambda: op.normal(x), device, warm, reps)
        ours_adj = op.coil_images(y)
    row("ours forward+adjoint (finufft)", t_fa)
    row("ours normal (Toeplitz)", t_normal, peer_over_ours_normal=1.0)
    row("ours Toeplitz kernel (once per trajectory)", t_kernel)
    import sigpy  # noqa: PLC0415  (slow import; only for this suite)

    coord = traj * n / (2 * math.pi)
    cx, cy = coil_x[0].numpy(), y[0].numpy()
    t = median_time(lambda: sigpy.nufft_adjoint(sigpy.nufft(cx, coord), coord, cx.shape),
                    device, warm, reps)
    sp_adj = torch.from_numpy(sigpy.nufft_adjoint(cy, coord, cx.shape))[None]
    row("sigpy forward+adjoint", t, peer_over_ours_normal=t / t_normal,
        adjoint_rel_diff=_rel(ours_adj, sp_adj))
    if importlib.util.find_spec("torchkbnufft") is not None:
        import torchkbnufft as tkbn  # noqa: PLC0415  (optional peer)

        fwd, adj = tkbn.KbNufft(im_size=(n, n)), tkbn.KbNufftAdjoint(im_size=(n, n))
        om = torch.from_numpy(traj.T.astype(np.float32))
        with torch.inference_mode():
            t = median_time(lambda: adj(fwd(coil_x, om), om), device, warm, reps)
            kb_adj = adj(y, om) / n
        row("torchkbnufft forward+adjoint", t, peer_over_ours_normal=t / t_normal,
            adjoint_rel_diff=_rel(ours_adj, kb_adj))
    return rows


class _Counting:
    """Counts an operator's ``adjoint`` / ``normal`` calls (for the operator's share)."""

    def __init__(self, op):
        self.op, self.calls = op, {"adjoint": 0, "normal": 0}
        for name in self.calls:
            def wrap(*a, _name=name, **k):
                self.calls[_name] += 1
                return getattr(type(op), _name)(op, *a, **k)
            setattr(op, name, wrap)


def _network_rows(args, device, quick: bool) -> list[dict]:
    reps, warm = max(1, args.reps // 2), args.warmup
    n = 32 if quick else 256
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 1, n, n, generator=g).to(torch.complex64)
    t = make_trajectory("golden-radial", n, acceleration=8)
    ops = {"cartesian (12.5 % 2-D random)": SingleCoilFourier(torch.rand(n, n, generator=g) < 0.125),
           "radial 8x golden (51 spokes)" if not quick else "radial 8x golden":
               NonCartesianFourier(t.traj, (n, n), dcf=t.dcf)}
    sizes = {"ista_net_plus": {"num_phases": 2 if quick else 9},
             "madun": {"num_stages": 2 if quick else 25}}
    rows = []
    for name, cfg in sizes.items():
        model = build(name, **cfg, channels=8 if quick else 32, image_channels=2, seed=0).eval()
        for label, op in ops.items():
            y = op(x)
            with torch.inference_mode():
                t_net = median_time(lambda: model(y, op), device, warm, reps)
                counter = _Counting(op)
                model(y, op)
                # the operator calls are short: more repetitions for a stable median
                t_adj = median_time(lambda: type(op).adjoint(op, y), device, 1, 5 * reps)
                t_nrm = median_time(lambda: type(op).normal(op, x), device, 1, 5 * reps)
            share = (counter.calls["adjoint"] * t_adj + counter.calls["normal"] * t_nrm) / t_net
            rows.append({"case": f"{name} inference per slice, {label}", "coils": 1,
                         "seconds": t_net, "peer_over_ours_normal": float("nan"),
                         "adjoint_rel_diff": float("nan"), "op_share": share})
    return rows


def run(args, device: torch.device, ceilings: dict) -> list[dict]:
    if device.type != "cpu":
        raise SystemExit("the nufft suite measures the CPU backends (finufft, sigpy); run it "
                         "with --device cpu")
    n, spokes, readout = (32, 50, 64) if args.quick else (256, 402, 512)
    rows = []
    for coils in (1, 15):
        rows += _operator_rows(args, device, n, spokes, readout, coils)
    return rows + _network_rows(args, device, args.quick)
