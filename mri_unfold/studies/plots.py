"""The figures of a study (PNG, matplotlib's Agg backend, written atomically).

* :func:`metric_vs_acceleration` — one panel per method, the metric's mean against the
  acceleration, one line per mask label, 95 % CI error bars;
* :func:`mask_gallery` — every mask (top row of each acceleration) and its PSF in dB;
* :func:`recon_grid` — one test image at one acceleration: every method (rows) × mask
  (columns), each reconstruction above its error map, with shared colour bars for images and
  errors;
* :func:`paired_figure` — two masks' per-image differences at each acceleration, with the
  mean, its 95 % CI and the paired tests' p-values.

Figure sizes are fixed by the number of panels (inches × ``dpi``), so callers know the
pixel size of what they get.
"""
from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
from skimage.measure import block_reduce

from ..atomic import atomic_output
from ..figures import _figure_class
from ..masks import psf

__all__ = ["metric_vs_acceleration", "mask_gallery", "recon_grid", "paired_figure",
           "METRIC_LABELS"]

METRIC_LABELS = {"psnr": "PSNR (dB, volume max)", "ssim": "SSIM (volume max)",
                 "nmse": "NMSE", "psnr255": "PSNR (dB, 255 scale)",
                 "ssim255": "SSIM (255 scale)", "nmse255": "NMSE (255 scale)"}


#: Characters per line of a paired panel's y label (a 3.6-inch panel holds about 45 at 7 pt).
PAIRED_LABEL_WIDTH = 44


def _save(fig, out) -> Path:
    with atomic_output(out) as tmp:
        fig.savefig(tmp, format="png")
    return Path(out)


def _unique(values) -> list:
    return list(dict.fromkeys(values))


def metric_vs_acceleration(summary: list[dict], metric: str, out, *, dpi: int = 100) -> Path:
    """Panels per method of ``<metric>_mean`` against acceleration (module doc); figure
    ``4.2·n_methods × 3.6`` inches."""
    Figure = _figure_class()
    methods = _unique(s["method"] for s in summary)
    labels = _unique(s["mask"] for s in summary)
    fig = Figure(figsize=(4.2 * len(methods), 3.6), dpi=dpi, layout="constrained")
    axes = fig.subplots(1, len(methods), squeeze=False)[0]
    for ax, method in zip(axes, methods):
        for label in labels:
            pts = sorted((s["acceleration"], s[f"{metric}_mean"], s[f"{metric}_ci_low"],
                          s[f"{metric}_ci_high"]) for s in summary
                         if s["method"] == method and s["mask"] == label)
            if not pts:
                continue
            x, m, lo, hi = (np.array(v, dtype=float) for v in zip(*pts))
            err = np.nan_to_num(np.vstack([m - lo, hi - m]))
            ax.errorbar(x, m, yerr=err, marker="o", ms=4, capsize=3, label=label)
        ax.set_title(method, fontsize=10)
        ax.set_xlabel("acceleration (x)")
        ax.set_ylabel(METRIC_LABELS.get(metric, metric))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    return _save(fig, out)


def pool_for_display(image: np.ndarray, reduce: str, max_side: int = 128) -> np.ndarray:
    """``image (H, W)`` reduced by whole blocks of ``f = ceil(max(H, W) / max_side)`` pixels
    (scikit-image's ``block_reduce``) with ``reduce`` = ``"max"`` (a PSF: a one-pixel line
    of sidelobes stays visible) or ``"mean"`` (a mask: grey = the block's sampled fraction).
    A thumbnail drawn with nearest-neighbour sampling would drop whole rows or columns."""
    f = -(-max(image.shape) // max_side)
    if f <= 1:
        return image
    func, cval = {"max": (np.max, image.min()), "mean": (np.mean, 0.0)}[reduce]
    return block_reduce(image, (f, f), func, cval=cval)


def mask_gallery(entries: list[tuple[str, float, np.ndarray]], out, *, dpi: int = 80) -> Path:
    """``entries``: ``(label, acceleration, mask (H, W))``; rows: per acceleration the
    masks and their PSFs (−40..0 dB, shown as the maximum over blocks so that the
    one-row PSF of a 1-D mask stays visible); columns: labels.  Figure ``2.2·n_labels ×
    4.4·n_accelerations`` inches."""
    Figure = _figure_class()
    labels = _unique(e[0] for e in entries)
    accs = sorted(_unique(e[1] for e in entries))
    fig = Figure(figsize=(2.2 * len(labels), 4.4 * len(accs)), dpi=dpi, layout="constrained")
    axes = fig.subplots(2 * len(accs), len(labels), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    im = None
    for label, acc, mask in entries:
        r, c = 2 * accs.index(acc), labels.index(label)
        axes[r, c].imshow(pool_for_display(mask.astype(np.float64), "mean"), cmap="gray",
                          vmin=0, vmax=1, interpolation="nearest")
        axes[r, c].set_title(f"{label} {acc:g}x\n{mask.mean():.1%} sampled", fontsize=9)
        db = 20 * np.log10(np.maximum(psf(mask), 1e-6))
        im = axes[r + 1, c].imshow(pool_for_display(db, "max"), cmap="magma", vmin=-40,
                                   vmax=0, interpolation="nearest")
        axes[r + 1, c].set_title("PSF (dB)", fontsize=8)
    if im is not None:
        fig.colorbar(im, ax=axes[1::2, :].ravel().tolist(), shrink=0.6, label="PSF (dB)")
    return _save(fig, out)


def recon_grid(target: np.ndarray, recons: dict, labels: list[str], methods: list[str], out,
               *, title: str = "", dpi: int = 80) -> Path:
    """``recons``: ``{(label, method): image (H, W)}``; a column per label plus the target,
    two rows per method (reconstruction with PSNR, ``|error|``).  Figure
    ``2.2·(1 + n_labels) × 4.4·n_methods`` inches."""
    Figure = _figure_class()
    t = np.asarray(target, dtype=np.float64)
    vmax = float(t.max()) or 1.0
    errs = {k: np.abs(np.asarray(v, dtype=np.float64) - t) for k, v in recons.items()}
    emax = max((float(e.max()) for e in errs.values()), default=1.0) or 1.0
    fig = Figure(figsize=(2.2 * (1 + len(labels)), 4.4 * len(methods)), dpi=dpi,
                 layout="constrained")
    axes = fig.subplots(2 * len(methods), 1 + len(labels), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    gray = axes[0, 0].imshow(t, cmap="gray", vmin=0, vmax=vmax)
    axes[0, 0].set_title("ground truth", fontsize=9)
    hot = None
    for i, method in enumerate(methods):
        axes[2 * i, 0].set_title(f"ground truth\n({method})", fontsize=9)
        if i:
            axes[2 * i, 0].imshow(t, cmap="gray", vmin=0, vmax=vmax)
        for j, label in enumerate(labels, start=1):
            if (label, method) not in recons:
                continue
            r = np.asarray(recons[(label, method)], dtype=np.float64)
            mse = float(np.mean((r - t) ** 2))
            p = 20 * math.log10(vmax / math.sqrt(mse)) if mse > 0 else math.inf
            axes[2 * i, j].imshow(r, cmap="gray", vmin=0, vmax=vmax)
            axes[2 * i, j].set_title(f"{label}\n{method}: {p:.2f} dB", fontsize=8)
            hot = axes[2 * i + 1, j].imshow(errs[(label, method)], cmap="inferno", vmin=0,
                                            vmax=emax)
    fig.colorbar(gray, ax=axes.ravel().tolist(), location="bottom", shrink=0.4,
                 label="intensity (images)")
    if hot is not None:
        fig.colorbar(hot, ax=axes.ravel().tolist(), location="right", shrink=0.5,
                     label="|error| (error maps, one scale)")
    if title:
        fig.suptitle(title)
    return _save(fig, out)


def paired_label(p: dict, width: int = PAIRED_LABEL_WIDTH) -> str:
    """The y label of a paired panel, ``"<metric> difference: <b> − <a>"`` with the masks'
    labels (``label_b``/``label_a`` when given, else the cell ids), wrapped to lines of at
    most ``width`` characters so that it fits the panel's height."""
    b, a = p.get("label_b", p["b"]), p.get("label_a", p["a"])
    return "\n".join(textwrap.wrap(f"{p['metric']} difference: {b} − {a}", width,
                                    break_on_hyphens=False))


def paired_figure(pairs: list[tuple[float, dict]], out, *, dpi: int = 90) -> Path:
    """``pairs``: ``(acceleration, mri_unfold.studies.results.paired(...))``; a panel per
    acceleration with the per-image differences ``b − a``.  Figure ``3.6·n × 3.6`` inches."""
    Figure = _figure_class()
    fig = Figure(figsize=(3.6 * max(1, len(pairs)), 3.6), dpi=dpi, layout="constrained")
    axes = fig.subplots(1, max(1, len(pairs)), squeeze=False)[0]
    rng = np.random.default_rng(0)                       # jitter only; no global RNG
    for ax, (acc, p) in zip(axes, pairs):
        d = np.asarray(p["diffs"], dtype=float)
        ax.scatter(rng.uniform(-0.15, 0.15, len(d)), d, s=10, alpha=0.6)
        ax.axhline(0, color="k", lw=0.8)
        lo, hi = p["ci_low"], p["ci_high"]
        ax.errorbar([0.4], [p["mean"]], yerr=[[p["mean"] - lo], [hi - p["mean"]]] if
                    np.isfinite(lo) else None, fmt="o", color="C3", capsize=4)
        ax.set_xlim(-0.5, 0.7)
        ax.set_xticks([])
        ax.set_ylabel(paired_label(p), fontsize=7)
        ax.set_title(f"{acc:g}x: mean {p['mean']:+.3f} [{lo:+.3f}, {hi:+.3f}]\n"
                     f"p = {p['p_ttest']:.2g} (t), {p['p_wilcoxon']:.2g} (Wilcoxon)",
                     fontsize=8)
    return _save(fig, out)
