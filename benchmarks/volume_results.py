"""The results of docs/volumes.md: two real volumes simulated as 8-coil 3-D scans, ky-kz
Poisson at 4x, 8x and 12x (24 x 24 ACS), reconstructed by zero-filling, 3-D CG-SENSE, 3-D
L1-wavelet, ISTA-Net+ trained on ky-kz slices, and the same network with a learned ky-kz mask.

Volumes (``python benchmarks/volume_data.py RUNS/data`` writes them):

* ``mni152`` — the MNI152 T1 template (1 mm, 197 x 233 x 189), readout along the array axis 1
  (A-P), ky-kz 197 x 189; the networks were trained on readout positions 0..115 only, so
  every metric is over the held-out positions 116..232;
* ``epi`` — nibabel's example EPI volume (128 x 96 x 24, a real acquisition), readout along
  the array axis 2 (24 positions), ky-kz 128 x 96; never trained on (a different subject,
  contrast and resolution than the training data).

Every scan: 8 birdcage coils, a smooth random phase (the simulation seed of the
``volume_kspace`` training source), ESPIRiT maps per readout position (24 x 24 ACS, cached
under RUNS/espirit).  Per method and acceleration: PSNR/SSIM/NMSE over the test sub-volume
(data range its maximum) and per-position PSNR/SSIM with the mean and 95 % CI over the test
positions with signal; the time of each reconstruction.  ``--sweep`` first picks the 3-D
L1-wavelet lambda on the MNI template at 2 mm (8x); ``--espirit`` compares 3-D ESPIRiT with
maps per readout position.  Writes OUT/results.json and the figures OUT/*.png.

Usage::

    python benchmarks/volume_results.py --runs runs/volumes --out docs/volumes [--sweep] \\
        [--espirit] [--volumes mni152,epi] [--accelerations 4,8,12] [--networks-only]

Each run merges its accelerations (and, with ``--networks-only``, its rows) into an existing
OUT/results.json, so networks can be evaluated as their trainings finish.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from nilearn.datasets import load_mni152_template  # noqa: E402

from mri_unfold import metrics  # noqa: E402
from mri_unfold.atomic import atomic_write_text  # noqa: E402
from mri_unfold.checkpoints import load_checkpoint  # noqa: E402
from mri_unfold.data import NiftiVolume, stable_seed  # noqa: E402
from mri_unfold.data.espirit import EspiritSettings, EstimateCoilMaps, espirit_3d_bytes  # noqa: E402
from mri_unfold.data.simulate3d import SimulatedVolume  # noqa: E402
from mri_unfold.data.sources.volume_kspace import parse_positions  # noqa: E402
from mri_unfold.data.volume3d import PositionSubset  # noqa: E402
from mri_unfold.figures import three_plane_grid  # noqa: E402
from mri_unfold.masks.kykz import make_kykz_mask  # noqa: E402
from mri_unfold.reconstruct import classical_3d, reconstruct_positions  # noqa: E402
from mri_unfold.reconstruct.volume3d import espirit_3d_maps, position_metrics  # noqa: E402

from benchmarks.volume_data import write_volumes  # noqa: E402

VOLUMES = {"mni152": {"file": "mni152_1mm.nii.gz", "readout_axis": 1, "test": "116:233"},
           "epi": {"file": "epi_example4d.nii.gz", "readout_axis": 2, "test": ""}}
ACS = (24, 24)


def scan_of(vol: np.ndarray, name: str, mask: np.ndarray) -> SimulatedVolume:
    """The simulated 8-coil scan (the training source's simulation seed for ``name``)."""
    return SimulatedVolume(vol, mask, coils=8, seed=stable_seed(name, 0), fname=name)


def _score(target: np.ndarray, recon: np.ndarray, seconds: float, mask) -> dict:
    return {**metrics.quality(target, recon), "positions": position_metrics(target, recon),
            "seconds": seconds, "acceleration": float(mask.size / mask.sum())}


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def evaluate_volume(name: str, spec: dict, runs: Path, accelerations, lamda: float,
                    l1_iter: int, figure_dir: Path | None, classical: bool = True) -> dict:
    path = runs / "data" / spec["file"]
    nv = NiftiVolume(path, axis=spec["readout_axis"])
    vol = nv.slices()
    test = list(parse_positions(spec["test"], len(vol), str(path)))
    cache = runs / "espirit"
    out = {"file": spec["file"], "shape": list(vol.shape), "readout_axis": spec["readout_axis"],
           "test_positions": [test[0], test[-1] + 1], "results": {}}
    for accel in accelerations:
        mask = make_kykz_mask("poisson", vol.shape[1:], acceleration=accel, acs=ACS,
                              seed=0).mask
        scan = scan_of(vol, path.name, mask)
        sub = PositionSubset(scan, test)
        res, recon = {}, {}
        zf, t = _timed(lambda: reconstruct_positions(sub, method="zero-filled",
                                                     progress=False))
        target = zf.target
        res["zero-filled"], recon["zero-filled"] = _score(target, zf.reconstruction, t, mask), \
            zf.reconstruction
        for method, kw in (("sense", {}), ("l1-wavelet", {"lamda": lamda, "max_iter": l1_iter})
                           ) if classical else ():
            r, t = _timed(lambda: classical_3d(scan, method, espirit_cache=cache,
                                               progress=False, **kw))
            res[f"3-D {method}"] = _score(target, r.reconstruction[test], t, mask)
            recon[f"3-D {method}"] = r.reconstruction[test]
        for label, run in (("ISTA-Net+", f"poisson{accel}x"), ("ISTA-Net+ learned mask",
                                                                f"learned{accel}x")):
            ckpt = runs / run / "last.safetensors"
            if not ckpt.is_file():
                print(f"  {name} {accel}x: no {ckpt}, skipped")
                continue
            ck = load_checkpoint(ckpt)
            m = mask
            if label.endswith("mask"):
                m = ck.op.mask.numpy().astype(np.float32)
                if m.shape != vol.shape[1:]:
                    print(f"  {name} {accel}x: the learned mask is {m.shape}, skipped")
                    continue
            s = PositionSubset(scan_of(vol, path.name, m), test)
            r, t = _timed(lambda: reconstruct_positions(s, ck.model, espirit_cache=cache,
                                                        progress=False))
            res[label] = _score(target, r.reconstruction, t, m)
            recon[label] = r.reconstruction
            if label.endswith("mask"):
                zf_l = reconstruct_positions(s, method="zero-filled", progress=False)
                res["zero-filled (learned mask)"] = _score(target, zf_l.reconstruction, 0.0, m)
        out["results"][f"{accel}x"] = res
        print(f"  {name} {accel}x: " + ", ".join(f"{k} {v['psnr']:.2f} dB / {v['ssim']:.4f}"
                                                 for k, v in res.items()))
        if figure_dir is not None and accel == 8 and classical:
            _figure(nv, spec["readout_axis"], test, {"reference": target, **recon},
                    figure_dir / f"{name}_8x.png", f"{name}, ky-kz Poisson 8x, 8 coils")
    return out


def _figure(nv: NiftiVolume, axis: int, test: list[int], volumes: dict, out: Path, title: str):
    """Three planes through the test sub-volume; volumes are readout-first ``(P, Y, Z)``."""
    order = [axis] + [a for a in range(3) if a != axis]
    a = np.array(nv.affine, np.float64)
    aff = a.copy()
    aff[:3, :3] = a[:3, order]
    aff[:3, 3] = a[:3, 3] + a[:3, axis] * test[0]
    vols = {k: np.moveaxis(v, 2, 0) for k, v in volumes.items()}
    three_plane_grid(vols, aff, out, title=title)


def sweep_lambda(runs: Path, l1_iter: int) -> dict:
    """3-D L1-wavelet lambda on the MNI template at 2 mm, 8x (module doc)."""
    vol = np.moveaxis(np.asarray(load_mni152_template(resolution=2).dataobj, np.float32), 1, 0)
    mask = make_kykz_mask("poisson", vol.shape[1:], acceleration=8, acs=ACS, seed=0).mask
    scan = scan_of(vol, "mni152_2mm", mask)
    out = {}
    for lam in (1e-4, 3e-4, 1e-3, 3e-3):
        r = classical_3d(scan, "l1-wavelet", lamda=lam, max_iter=l1_iter,
                         espirit_cache=runs / "espirit", progress=False)
        out[repr(lam)] = r.metrics["l1-wavelet"]
        print(f"  lambda {lam:g}: {r.metrics['l1-wavelet']['psnr']:.2f} dB")
    return out


def espirit_comparison(runs: Path, which=("epi", "mni152 2 mm")) -> dict:
    """Maps per readout position vs 3-D ESPIRiT: time, memory, 3-D CG-SENSE PSNR (4x), for
    the volumes ``which`` of ``epi`` and ``mni152 2 mm``."""
    cases = {"epi": lambda: (np.asarray(NiftiVolume(runs / "data" / VOLUMES["epi"]["file"],
                                                    axis=2).slices()), "epi"),
             "mni152 2 mm": lambda: (np.moveaxis(np.asarray(
                 load_mni152_template(resolution=2).dataobj, np.float32), 1, 0), "mni152_2mm")}
    out = {}
    for label in which:
        vol, name = cases[label]()
        mask = make_kykz_mask("poisson", vol.shape[1:], acceleration=4, acs=ACS, seed=0).mask
        scan = scan_of(vol, name, mask)
        estimate = EstimateCoilMaps(None)
        t0 = time.perf_counter()
        for pos in scan.chunks(32):
            for s in scan.samples(pos):
                if s.kspace.abs().amax() > 0:
                    estimate(s)
        t_pp = time.perf_counter() - t0
        maps3d, t_3d = _timed(lambda: espirit_3d_maps(scan, ACS, EspiritSettings()))
        row = {"shape": list(vol.shape), "per_position_s": t_pp, "three_d_s": t_3d,
               "three_d_bytes": espirit_3d_bytes(8, vol.shape)}
        for maps, kw in (("espirit", {}), ("espirit-3d", {"maps_3d": maps3d}), ("given", {})):
            r = reconstruct_positions(scan, method="sense", maps=maps, progress=False, **kw)
            row[f"sense_psnr_{maps}"] = r.metrics["sense"]["psnr"]
            row[f"sense_ssim_{maps}"] = r.metrics["sense"]["ssim"]
        out[label] = row
        print(f"  {label}: per position {t_pp:.1f} s, 3-D {t_3d:.1f} s; CG-SENSE "
              f"{row['sense_psnr_espirit']:.2f} / {row['sense_psnr_espirit-3d']:.2f} dB")
    return out


def markdown(result: dict) -> str:
    """The docs/volumes.md tables of ``results.json``: per volume, one row per method and
    acceleration with the test sub-volume's PSNR/SSIM and the per-position mean [95 % CI]."""
    lines = []
    for name, vol in result.get("volumes", {}).items():
        lo, hi = vol["test_positions"]
        lines += [f"**{name}** ({' x '.join(map(str, vol['shape']))}, readout axis "
                  f"{vol['readout_axis']}, test positions {lo}..{hi - 1})", "",
                  "| accel. | method | achieved | PSNR (dB) | SSIM | per position PSNR, mean "
                  "[95 % CI] | per position SSIM | time (s) |", "|---|---|---|---|---|---|---|---|"]
        for accel, res in sorted(vol["results"].items(), key=lambda kv: int(kv[0][:-1])):
            for method, r in res.items():
                p, q = r["positions"]["psnr_stats"], r["positions"]["ssim_stats"]
                lines.append(f"| {accel} | {method} | {r['acceleration']:.2f} | {r['psnr']:.2f} | "
                             f"{r['ssim']:.4f} | {p['mean']:.2f} [{p['ci_low']:.2f}, "
                             f"{p['ci_high']:.2f}] | {q['mean']:.4f} [{q['ci_low']:.4f}, "
                             f"{q['ci_high']:.4f}] | {r['seconds']:.0f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=Path, default=ROOT / "runs" / "volumes")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "volumes")
    p.add_argument("--volumes", default="mni152,epi")
    p.add_argument("--accelerations", default="4,8,12")
    p.add_argument("--lamda", type=float, default=None,
                   help="3-D L1-wavelet lambda (default: the sweep's best, else 1e-3)")
    p.add_argument("--l1-iter", type=int, default=50)
    p.add_argument("--sweep", action="store_true")
    p.add_argument("--espirit", action="store_true")
    p.add_argument("--espirit-volumes", default="epi,mni152 2 mm",
                   help="the volumes of --espirit (comma-separated: epi, mni152 2 mm)")
    p.add_argument("--networks-only", action="store_true",
                   help="only zero-filling and the networks (the 3-D classical rows of an "
                        "earlier results.json stay)")
    p.add_argument("--markdown", action="store_true",
                   help="print the tables of OUT/results.json and exit")
    args = p.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads((args.out / "results.json").read_text())))
        return 0
    torch.manual_seed(0)
    write_volumes(args.runs / "data")
    args.out.mkdir(parents=True, exist_ok=True)
    result_file = args.out / "results.json"
    result = json.loads(result_file.read_text()) if result_file.is_file() else {}
    result["environment"] = {"torch_threads": torch.get_num_threads(),
                             "load_average": list(os.getloadavg())}
    run_log = {"volumes": args.volumes, "accelerations": args.accelerations,
               "espirit": args.espirit, "load_average_start": list(os.getloadavg())}
    result.setdefault("runs", []).append(run_log)
    if args.sweep:
        result["lambda_sweep"] = sweep_lambda(args.runs, args.l1_iter)
    elif (args.runs / "sweep.json").is_file() and "lambda_sweep" not in result:
        result["lambda_sweep"] = json.loads((args.runs / "sweep.json").read_text())["sweep"]
    lamda = args.lamda
    if lamda is None:
        sweep = result.get("lambda_sweep")
        lamda = float(max(sweep, key=lambda k: sweep[k]["psnr"])) if sweep else 1e-3
    result["lambda"], result["l1_iterations"] = lamda, args.l1_iter
    if args.espirit:
        which = [w.strip() for w in args.espirit_volumes.split(",")]
        unknown = sorted(set(which) - {"epi", "mni152 2 mm"})
        if unknown:
            p.error(f"--espirit-volumes: unknown {unknown}; expected epi and/or 'mni152 2 mm'")
        result["espirit"] = {**result.get("espirit", {}), **espirit_comparison(args.runs, which)}
    accels = [int(a) for a in args.accelerations.split(",")]
    for name in args.volumes.split(","):
        print(f"{name}:")
        new = evaluate_volume(name, VOLUMES[name], args.runs, accels, lamda, args.l1_iter,
                              args.out, classical=not args.networks_only)
        old = result.setdefault("volumes", {}).get(name)
        if old is not None:          # other accelerations and methods of earlier runs stay
            new["results"] = {**old["results"], **{
                a: {**old["results"].get(a, {}), **res} for a, res in new["results"].items()}}
        result["volumes"][name] = new
        run_log["load_average_end"] = list(os.getloadavg())
        atomic_write_text(result_file, json.dumps(result, indent=1, default=float))
    atomic_write_text(result_file, json.dumps(result, indent=1, default=float))
    print(f"wrote {result_file}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
