"""The automatic λ of L1-wavelet and TV against zero-filling on the shipped examples.

For every example the classical methods run through the reconstruction pipeline with
``lamda = "auto"`` (:mod:`mri_unfold.auto_lambda`: the weight chosen per scan by the k-space
loss on held-out measured samples; zero-filled when no weight predicts them better than
zero-filling) and, for comparison, with the fixed brain-tuned defaults (L1-wavelet 1e-3,
TV 1e-2):

* ``brain``: ``brain_test`` slices (real images, the authors' ``radial_20.mat``, PSNR on the
  255 scale against the 8-bit slice);
* ``radial``: the same slices measured non-Cartesian (golden-angle radial, 8x below Nyquist,
  ramp DCF; gridding is the zero-filled method);
* ``twix``: the real 2-coil scan, 4x 1-D equispaced (24 calibration lines) and 2-D
  Poisson-disc, against its fully sampled SENSE image.

::

    python benchmarks/auto_lambda_examples.py --json benchmarks/results/2026-12-07/auto_lambda.json
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.measure import write_json  # noqa: E402
from mri_unfold import metrics  # noqa: E402
from mri_unfold.cpu_allocator import retain_freed_memory  # noqa: E402
from mri_unfold.data import simulate_kspace, simulate_noncartesian  # noqa: E402
from mri_unfold.data.luma import list_images, read_luminance  # noqa: E402
from mri_unfold.data.sources import detect_source, get_source  # noqa: E402
from mri_unfold.evaluation.raw_scan import MASKS, _prepare  # noqa: E402
from mri_unfold.evaluation.reproduce import mri_paths  # noqa: E402
from mri_unfold.masks import make_mask  # noqa: E402
from mri_unfold.operators import load_mat_variable  # noqa: E402
from mri_unfold.reconstruct import reconstruct_samples  # noqa: E402
from mri_unfold.shared_data import shared_root  # noqa: E402
from mri_unfold.tables import Column, format_table  # noqa: E402
from mri_unfold.trajectories import make_trajectory  # noqa: E402

FIXED = {"l1-wavelet": 1e-3, "tv": 1e-2}
COLUMNS = (Column("example", min_width=34, align="<"), Column("method", min_width=24, align="<"),
           Column("psnr", "PSNR", ".2f", 7), Column("ssim", "SSIM", ".4f", 7),
           Column("vs_zero_filled", "vs zero-filled", "+.2f", 14),
           Column("lambdas", "λ used", min_width=10, align="<"))


def _runs(samples, real: bool) -> dict:
    """``{method: (ReconResult, what λ was used)}``: zero-filled, and each method with the
    automatic and the fixed λ."""
    out = {"zero-filled": (reconstruct_samples(samples, method="zero-filled",
                                               real_input=real, progress=False), "")}
    for method, fixed in FIXED.items():
        auto = reconstruct_samples(samples, method=method, real_input=real, progress=False)
        used = ("zero-filled fallback" if auto.info.get("fallback")
                else f"{auto.info['lambda']:.3g}")
        out[f"{method}, auto λ"] = (auto, used)
        out[f"{method}, fixed λ {fixed:g}"] = (reconstruct_samples(
            samples, method=method, real_input=real, progress=False,
            method_options={"lamda": fixed}), f"{fixed:g}")
    return out


def brain(slices: int, radial: bool) -> list[dict]:
    """The brain slices (module doc), each a scan of its own (λ chosen per slice)."""
    paths = mri_paths(20)
    files = list_images(paths["images"])[:slices]
    mask = np.fft.fftshift(np.asarray(load_mat_variable(paths["mask"], "mask_matrix"),
                                      np.float32))
    traj = make_trajectory("golden-radial", 256, acceleration=8) if radial else None
    scores: dict[str, list] = {}
    for f in files:
        ref = read_luminance(f).astype(np.float64)
        img = (ref / 255.0).astype(np.float32)
        s = simulate_noncartesian(img, traj) if radial else simulate_kspace(img, mask)
        for name, (res, used) in _runs([s], real=True).items():
            rec = np.clip(res.reconstruction[0], 0, 1) * 255
            scores.setdefault(name, []).append(
                (metrics.psnr_255(ref, rec), metrics.ssim_255(ref, rec), used))
    label = ("brain_test, golden-angle radial 8x (non-Cartesian)" if radial
             else "brain_test, radial_20.mat (Cartesian)")
    return [{"example": f"{label}, {len(files)} slices", "method": name,
             "psnr": float(np.mean([v[0] for v in vals])),
             "ssim": float(np.mean([v[1] for v in vals])),
             "lambda": [v[2] for v in vals]} for name, vals in scores.items()]


def twix() -> list[dict]:
    path = shared_root() / "data" / "raw" / "siemens_gre_2coil.dat"
    raw = get_source(detect_source(path)).read(path)[0]
    ref = reconstruct_samples([_prepare(raw, None)], method="sense",
                              progress=False).reconstruction[0]
    rows = []
    for label, (kind, kw) in MASKS.items():
        m = np.asarray(make_mask(kind, raw.kspace.shape[-2:], seed=0, **kw).mask, np.float32)
        for name, (res, used) in _runs([_prepare(raw, m)], real=False).items():
            q = metrics.quality(ref, res.reconstruction[0])
            rows.append({"example": f"real 2-coil scan, {label}", "method": name,
                         "psnr": q["psnr"], "ssim": q["ssim"], "lambda": [used]})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--brain-slices", type=int, default=10)
    p.add_argument("--radial-slices", type=int, default=3)
    p.add_argument("--json", required=True)
    args = p.parse_args(argv)
    retain_freed_memory(warn=False)
    rows = brain(args.brain_slices, radial=False) + brain(args.radial_slices, radial=True) + \
        twix()
    for r in rows:
        zf = next(x["psnr"] for x in rows if x["example"] == r["example"]
                  and x["method"] == "zero-filled")
        r["vs_zero_filled"] = r["psnr"] - zf
        r["lambdas"] = ", ".join(dict.fromkeys(r["lambda"])) if r["lambda"][0] else ""
    print(format_table(rows, COLUMNS))
    print(f"wrote {write_json({'rows': rows}, args.json)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
