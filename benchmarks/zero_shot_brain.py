"""Zero-shot, scan-specific adaptation on the brain CS-MRI test set (docs/self_supervised.md).

Every ``brain_test`` slice is a scan of its own: its k-space is measured with the authors'
pseudo-radial mask ``radial_<ratio>.mat`` (``y = Φ(x / 255)``, the ISTA-Net+ test protocol,
in the centred layout), the network is adapted to that slice from ``y`` alone
(:func:`mri_unfold.training.zero_shot.adapt_to_scan`: held-out k-space decides when to
stop), and the slice is reconstructed from all its measurements.  The image is read only to
simulate ``y`` and, afterwards, to score (PSNR on the 255 scale, as the authors).

Starting points (``--source``): ``zoo`` (our ``ista_net_plus_radial<ratio>``, trained on chest
slices) or ``authors`` (the authors' released ISTA-Net+ for that ratio).  Results go to a JSON
file row by row, so a killed run continues where it stopped (``--json`` again); the summary
(per ratio: mean PSNR before and after, the gain with a paired 95 % CI, seconds per slice)
is printed and stored with the rows::

    python benchmarks/zero_shot_brain.py --source zoo --json benchmarks/results/zs_zoo.json
    python benchmarks/zero_shot_brain.py --source authors --json benchmarks/results/zs_authors.json
    python benchmarks/zero_shot_brain.py --summary benchmarks/results/zs_zoo.json \\
        benchmarks/results/zs_authors.json --png docs/self_supervised_zero_shot.png
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:   # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from benchmarks.ssdu_brain_kspace import parse_slices  # noqa: E402
from mri_unfold.atomic import atomic_write_text  # noqa: E402
from mri_unfold.cpu_allocator import retain_freed_memory
from mri_unfold.data import collate_samples, simulate_kspace
from mri_unfold.data.luma import list_images, read_luminance
from mri_unfold.evaluation.reproduce import PUBLISHED_MRI, mri_paths
from mri_unfold.figures import new_figure, save_png
from mri_unfold.masks.split import SplitSettings
from mri_unfold.metrics import psnr_255, ssim_255
from mri_unfold.models.official import load_official
from mri_unfold.models.zoo import pretrained
from mri_unfold.operators import KSpaceOperatorFactory, load_mat_variable
from mri_unfold.tables import Column, format_table
from mri_unfold.training.zero_shot import AdaptSettings, adapt_to_scan

RATIOS = (10, 20, 30, 40, 50)
FACTORY = KSpaceOperatorFactory(real_input=True)
#: The adaptation used for the docs' numbers (small Λ and Γ: the network keeps seeing
#: nearly the sampling density it was trained for; docs/self_supervised.md).
SETTINGS = AdaptSettings(max_steps=80, lr=1e-4, split=SplitSettings(ratio=0.15), holdout=0.1,
                         masks_per_step=1, val_every=10, patience=3, batch_size=1,
                         precision="bf16")


def t_interval(d: np.ndarray) -> tuple[float, float]:
    """Paired 95 % confidence interval of the mean of ``d`` (Student's t)."""
    n = len(d)
    if n < 2:
        return float("nan"), float("nan")
    half = stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / math.sqrt(n)
    return float(d.mean() - half), float(d.mean() + half)


def starting_model(source: str, ratio: int):
    """The network to adapt: our zoo model or the authors' release."""
    if source == "zoo":
        return pretrained(f"ista_net_plus_radial{ratio}").model
    return load_official(mri_paths(ratio)["checkpoint"], arch="ista_net_plus", task="mri")


def authors_mask(paths: dict) -> np.ndarray:
    """The authors' ``radial_<ratio>.mat`` mask, ``(H, W)`` float32, centred layout."""
    return np.fft.fftshift(np.asarray(load_mat_variable(paths["mask"], "mask_matrix"),
                                      np.float32))


def measured_slice(image_u8: np.ndarray, mask_centred: np.ndarray, name: str):
    """The slice's single-coil k-space at the 1/255 scale, no reference attached."""
    s = simulate_kspace(image_u8.astype(np.float32) / np.float32(255.0), mask_centred,
                        fname=name)
    return s.replace(target=None)


def reconstruct(model, sample) -> np.ndarray:
    """``(H, W)`` float64 reconstruction in [0, 255] from all the slice's measurements."""
    b = collate_samples([sample])
    with torch.no_grad():
        x = model(FACTORY.measurements(b), FACTORY.for_batch(b))
    return np.clip(x[0, 0].double().numpy(), 0.0, 1.0) * 255.0


def add_release_scores(data: dict) -> bool:
    """Give every row the authors' released weights' PSNR/SSIM on the same slice and mask
    (``psnr_release``, ``ssim_release``; an inference per slice), the anchor that the
    ``zoo`` rows are compared with.  Returns whether a row changed."""
    changed, models = False, {}
    for row in data["rows"]:
        if "psnr_release" in row:
            continue
        ratio = row["ratio"]
        paths = mri_paths(ratio)
        if ratio not in models:
            models[ratio] = starting_model("authors", ratio)
        mask = authors_mask(paths)
        ref = read_luminance(Path(paths["images"]) / row["image"])
        rec = reconstruct(models[ratio], measured_slice(ref, mask, row["image"]))
        row["psnr_release"], row["ssim_release"] = psnr_255(ref, rec), ssim_255(ref, rec)
        changed = True
    return changed


def run(source: str, ratios, slices, settings: AdaptSettings, out: Path, log=print) -> dict:
    """Adapt and score every (ratio, slice) not yet in ``out``; returns the file's content."""
    data = json.loads(out.read_text()) if out.is_file() else {"rows": []}
    data.update({"source": source, "settings": {
        "max_steps": settings.max_steps, "lr": settings.lr, "split": settings.split.ratio,
        "holdout": settings.holdout, "masks_per_step": settings.masks_per_step,
        "val_every": settings.val_every, "patience": settings.patience,
        "precision": settings.precision, "threads": torch.get_num_threads()}})
    done = {(r["ratio"], r["image"]) for r in data["rows"]}
    for ratio in ratios:
        paths = mri_paths(ratio)
        mask = authors_mask(paths)
        files = list_images(paths["images"])
        model = starting_model(source, ratio)
        for i in slices:
            f = files[i - 1]
            if (ratio, f.name) in done:
                continue
            ref = read_luminance(f)
            sample = measured_slice(ref, mask, f.name)
            before = reconstruct(model, sample)
            t0 = time.perf_counter()
            res = adapt_to_scan(model, [sample], FACTORY, settings, progress=False)
            seconds = time.perf_counter() - t0
            after = reconstruct(res.model, sample)
            row = {"ratio": ratio, "image": f.name, "psnr_before": psnr_255(ref, before),
                   "psnr_after": psnr_255(ref, after), "ssim_before": ssim_255(ref, before),
                   "ssim_after": ssim_255(ref, after), "steps": res.steps,
                   "best_step": res.best_step, "stopped": res.stopped, "seconds": seconds,
                   "val_loss": [h["val_loss"] for h in res.history]}
            data["rows"].append(row)
            atomic_write_text(out, json.dumps(data, indent=1))
            log(f"{source} {ratio}% {f.name}: {row['psnr_before']:.2f} -> "
                f"{row['psnr_after']:.2f} dB ({res.steps} steps, kept {res.best_step}, "
                f"{seconds:.0f} s)")
    return data


def summary(data: dict) -> list[dict]:
    """Per ratio: slices, mean PSNR before/after, mean gain and its paired 95 % CI, mean
    seconds per slice, the authors' published number."""
    out = []
    for ratio in sorted({r["ratio"] for r in data["rows"]}):
        rows = [r for r in data["rows"] if r["ratio"] == ratio]
        gain = np.array([r["psnr_after"] - r["psnr_before"] for r in rows])
        lo, hi = t_interval(gain)
        out.append({"source": data["source"], "ratio": ratio, "slices": len(rows),
                    "before": float(np.mean([r["psnr_before"] for r in rows])),
                    "after": float(np.mean([r["psnr_after"] for r in rows])),
                    "gain": float(gain.mean()), "ci_low": lo, "ci_high": hi,
                    "ssim_before": float(np.mean([r["ssim_before"] for r in rows])),
                    "ssim_after": float(np.mean([r["ssim_after"] for r in rows])),
                    "release": (float(np.mean([r["psnr_release"] for r in rows]))
                                if all("psnr_release" in r for r in rows) else float("nan")),
                    "seconds": float(np.mean([r["seconds"] for r in rows])),
                    "authors": PUBLISHED_MRI["ista_net_plus"].get(ratio)})
    return out


COLUMNS = (Column("source", min_width=8, align="<"), Column("ratio", "ratio %", "d", 7),
           Column("slices", fmt="d", min_width=6), Column("before", "before", ".2f", 7),
           Column("after", "adapted", ".2f", 8), Column("gain", "gain", "+.2f", 6),
           Column("ci_low", "CI low", "+.2f", 7), Column("ci_high", "CI high", "+.2f", 7),
           Column("ssim_before", "SSIM before", ".4f", 11),
           Column("ssim_after", "SSIM adapted", ".4f", 12),
           Column("release", "release, same slices", ".2f", 8),
           Column("authors", "paper (50 slices)", ".2f", 8),
           Column("seconds", "s/slice", ".1f", 8))


def plot(tables: list[list[dict]], path: str | Path) -> Path:
    """PSNR before and after adaptation per ratio (one line pair per source) beside the
    authors' published numbers."""
    fig = new_figure(figsize=(6.4, 4.2), dpi=120)
    ax = fig.subplots()
    for rows in tables:
        r = [x["ratio"] for x in rows]
        src = rows[0]["source"]
        ax.plot(r, [x["before"] for x in rows], "o--", label=f"{src}: as released")
        ax.errorbar(r, [x["after"] for x in rows],
                    yerr=[[x["gain"] - x["ci_low"] for x in rows],
                          [x["ci_high"] - x["gain"] for x in rows]],
                    fmt="s-", capsize=3, label=f"{src}: zero-shot adapted (95 % CI of gain)")
    pub = sorted(RATIOS)
    ax.plot(pub, [PUBLISHED_MRI["ista_net_plus"][k] for k in pub], "k:", label="authors' paper")
    ax.set_xlabel("sampling ratio (%)")
    ax.set_ylabel("PSNR on brain_test (dB)")
    ax.set_title("ISTA-Net+ adapted per slice from its own k-space")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_png(fig, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", choices=("zoo", "authors"), default="zoo")
    p.add_argument("--ratios", default="10,20,30,40,50", help="e.g. 20 or 10,30")
    p.add_argument("--slices", default="1-50", help="brain_test slices, 1-based (e.g. 1-10)")
    p.add_argument("--steps", type=int, default=SETTINGS.max_steps)
    p.add_argument("--seconds", type=float, default=0.0, help="budget per slice (0 = none)")
    p.add_argument("--lr", type=float, default=SETTINGS.lr)
    p.add_argument("--split", type=float, default=SETTINGS.split.ratio, help="ρ = |Λ|/|Ω|")
    p.add_argument("--holdout", type=float, default=SETTINGS.holdout, help="|Γ|/|Ω|")
    p.add_argument("--masks", type=int, default=SETTINGS.masks_per_step, help="splits per step")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    p.add_argument("--json", help="results file (continued when it exists)")
    p.add_argument("--summary", nargs="+", metavar="JSON", help="only summarise result files")
    p.add_argument("--png", help="with --summary: the figure")
    p.add_argument("--add-release", action="store_true",
                   help="with --summary: first score the authors' released weights on every "
                        "row's slice and store it in the file (psnr_release)")
    args = p.parse_args(argv)
    if args.summary:
        datas = [json.loads(Path(f).read_text()) for f in args.summary]
        for f, data in zip(args.summary, datas):
            if args.add_release and add_release_scores(data):
                atomic_write_text(Path(f), json.dumps(data, indent=1))
        tables = [summary(data) for data in datas]
        print(format_table([r for t in tables for r in t], COLUMNS))
        if args.png:
            print(f"wrote {plot(tables, args.png)}")
        return 0
    if not args.json:
        p.error("--json is required to run (results are kept there)")
    if args.threads:
        torch.set_num_threads(args.threads)
    retain_freed_memory(warn=False)
    settings = AdaptSettings(**{**SETTINGS.__dict__, "max_steps": args.steps,
                                "max_seconds": args.seconds, "lr": args.lr,
                                "split": SplitSettings(ratio=args.split),
                                "holdout": args.holdout, "masks_per_step": args.masks})
    data = run(args.source, parse_slices(args.ratios), parse_slices(args.slices), settings, Path(args.json),
               log=lambda m: print(m, flush=True))
    add_release_scores(data)
    rows = summary(data)
    data["summary"] = rows
    atomic_write_text(Path(args.json), json.dumps(data, indent=1))
    print(format_table(rows, COLUMNS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
