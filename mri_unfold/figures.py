"""Comparison figures: ground truth, reconstructions with PSNR/SSIM, error maps and the mask.

Layout of :func:`comparison_grid` (``1 + len(recons)`` columns, 2 rows)::

    ground truth | recon 1 (PSNR/SSIM) | recon 2 (PSNR/SSIM) | ...
    mask         | |error 1|           | |error 2|           | ...

Images share one grey scale ``[0, target.max()]``; error maps share one ``[0, e_max]``
scale (``e_max`` = largest error over all methods, so maps are comparable).  Metrics follow
:mod:`mri_unfold.metrics` with ``data_range = target.max()`` (fastMRI convention).
The PNG is rendered with matplotlib's Agg backend (no display needed) and written
atomically (temporary file in the same folder, then ``os.replace``).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy.ndimage import map_coordinates

from . import metrics
from .atomic import atomic_output
from .masks import psf

__all__ = ["comparison_grid", "image_metrics", "line_plot", "new_figure", "save_png",
           "three_plane_figure", "three_plane_grid"]


def _as_image(a, name: str) -> np.ndarray:
    """2-D float64 numpy image from a numpy array / tensor with singleton leading dims."""
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    a = np.asarray(a)
    if np.iscomplexobj(a):
        a = np.abs(a)
    a = np.squeeze(a)
    if a.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D image (H, W), got shape {a.shape}")
    return a.astype(np.float64)


def _figure_class():
    """``matplotlib.figure.Figure`` (no pyplot state) with the Agg backend; matplotlib is a
    heavy import, so it is imported when a figure is drawn."""
    import matplotlib  # noqa: PLC0415  (heavy; imported when used)

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure  # noqa: PLC0415

    return Figure


def new_figure(**kwargs):
    """A ``matplotlib.figure.Figure(**kwargs)`` on the Agg backend, without pyplot state."""
    return _figure_class()(**kwargs)


def save_png(fig, out: str | os.PathLike) -> Path:
    """Write ``fig`` as a PNG at ``out`` all-or-nothing (its folder created); returns the path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(out) as tmp:
        fig.savefig(tmp, format="png")
    return out


def image_metrics(target, prediction, data_range: float | None = None) -> dict[str, float]:
    """``{"psnr", "ssim", "nmse"}`` of one 2-D image against the target
    (:func:`mri_unfold.metrics.quality`; ``data_range`` None -> the target's maximum)."""
    return metrics.quality(_as_image(target, "target"), _as_image(prediction, "prediction"),
                           data_range)


def comparison_grid(target, recons: dict, mask, out_png: str | os.PathLike, *,
                    title: str | None = None, dpi: int = 100,
                    target_title: str = "ground truth") -> Path:
    """Write the comparison PNG described in the module docstring.

    Args:
        target: ground-truth image ``(H, W)`` (numpy or tensor, singleton dims allowed;
            complex -> magnitude).
        recons: ``{method name: image (H, W)}`` in display order (put ``"zero-filled"``
            first by convention).
        mask: sampling mask ``(H, W)`` or column mask ``(1, W)`` (any k-space layout; shown as
            given).
        out_png: output path (parent folder must exist).
        title: optional figure title.
        dpi: resolution; each panel is 3 x 3 inches.
        target_title: the title of the target's panel (e.g. "fully sampled SENSE").
    Returns:
        The written path.
    Raises:
        ValueError: no reconstructions, or an image whose shape differs from the target's.
    """
    Figure = _figure_class()
    if not recons:
        raise ValueError("comparison_grid: recons is empty (give at least one reconstruction)")
    t = _as_image(target, "target")
    imgs = {name: _as_image(r, f"reconstruction {name!r}") for name, r in recons.items()}
    for name, r in imgs.items():
        if r.shape != t.shape:
            raise ValueError(f"reconstruction {name!r} has shape {r.shape}, target {t.shape}")
    mk = mask.detach().cpu().numpy() if hasattr(mask, "detach") else np.asarray(mask)
    m = np.atleast_2d(np.squeeze(mk).astype(np.float64))
    if m.ndim != 2:
        raise ValueError(f"mask: expected (H, W) or (1, W), got shape {mk.shape}")
    vmax = float(t.max()) or 1.0
    errs = {name: np.abs(r - t) for name, r in imgs.items()}
    emax = max(float(e.max()) for e in errs.values()) or 1.0

    cols = 1 + len(imgs)
    fig = Figure(figsize=(3 * cols, 6.4), dpi=dpi, layout="constrained")
    axes = fig.subplots(2, cols, squeeze=False)
    axes[0, 0].imshow(t, cmap="gray", vmin=0, vmax=vmax)
    axes[0, 0].set_title(target_title, fontsize=10)
    axes[1, 0].imshow(m, cmap="gray", vmin=0, vmax=1, aspect="auto" if m.shape[0] == 1 else None)
    axes[1, 0].set_title(f"mask ({m.mean():.1%} sampled)", fontsize=10)
    for j, (name, r) in enumerate(imgs.items(), start=1):
        met = image_metrics(t, r)
        axes[0, j].imshow(r, cmap="gray", vmin=0, vmax=vmax)
        axes[0, j].set_title(f"{name}\n{met['psnr']:.2f} dB / SSIM {met['ssim']:.4f}",
                             fontsize=10)
        axes[1, j].imshow(errs[name], cmap="inferno", vmin=0, vmax=emax)
        axes[1, j].set_title(f"|error| (max {emax:.3g})", fontsize=10)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)

    out = Path(out_png)
    with atomic_output(out) as tmp:
        fig.savefig(tmp, format="png")
    return Path(out)


def mask_psf_figure(results, out: str | os.PathLike, dpi: int = 100) -> Path:
    """Draw each mask (top) and its PSF in dB (bottom, -40..0 dB); write ``out`` atomically.

    Args:
        results: ``[(MaskResult, mask_stats dict), ...]`` (:func:`mri_unfold.masks.make_mask`,
            :func:`mri_unfold.masks.mask_stats`).
        out: the PNG path.
    """
    Figure = _figure_class()
    n = len(results)
    fig = Figure(figsize=(3.2 * n, 6.6), dpi=dpi, layout="constrained")
    axes = fig.subplots(2, n, squeeze=False)
    for j, (res, stats) in enumerate(results):
        axes[0, j].imshow(res.mask, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axes[0, j].set_title(f"{res.kind}: {stats['ratio']:.1%} (x{stats['acceleration']:.2f})",
                             fontsize=10)
        db = 20 * np.log10(np.maximum(psf(res.mask), 1e-6))
        im = axes[1, j].imshow(db, cmap="magma", vmin=-40, vmax=0, interpolation="nearest")
        psr = stats["psr_db"]
        axes[1, j].set_title(f"PSF, peak/side lobe {psr:.1f} dB", fontsize=10)
    fig.colorbar(im, ax=axes[1, :].tolist(), shrink=0.8, label="PSF (dB)")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    with atomic_output(out) as tmp:
        fig.savefig(tmp, format="png")
    return Path(out)


def line_plot(series, out: str | os.PathLike, *, xlabel: str, ylabel: str, title: str,
              figsize: tuple[float, float] = (7.0, 4.2), dpi: int = 110) -> Path:
    """One axes with a line of markers per series; write the PNG ``out`` atomically.

    Args:
        series: ``[(label, xs, ys), ...]``.
        figsize / dpi: the image is ``figsize * dpi`` pixels (770 × 462 by default).
    """
    Figure = _figure_class()
    fig = Figure(figsize=figsize, dpi=dpi, layout="tight")
    ax = fig.subplots()
    for label, xs, ys in series:
        ax.plot(list(xs), list(ys), "o-", label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return save_png(fig, out)


def _resample_ras(volume: np.ndarray, affine: np.ndarray, max_size: int):
    """``volume`` ``(S, H, W)`` on its ``(H, W, S)`` affine, resampled (linear) onto a RAS-aligned
    grid covering it with the smallest voxel size (coarser if an axis would exceed
    ``max_size``); returns ``(grid (X, Y, Z), origin (3,), step mm)``; outside is NaN."""
    vol = np.moveaxis(np.asarray(volume, np.float64), 0, -1)
    shape = np.array(vol.shape)
    corners = np.array([[i, j, k] for i in (-0.5, shape[0] - 0.5) for j in (-0.5, shape[1] - 0.5)
                        for k in (-0.5, shape[2] - 0.5)])
    world = corners @ affine[:3, :3].T + affine[:3, 3]
    lo, hi = world.min(0), world.max(0)
    step = float(np.linalg.norm(affine[:3, :3], axis=0).min())
    step = max(step, float((hi - lo).max()) / max_size)
    n = np.maximum(np.ceil((hi - lo) / step).astype(int), 1)
    axes = [lo[d] + step * (np.arange(n[d]) + 0.5) for d in range(3)]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    ijk = (pts - affine[:3, 3]) @ np.linalg.inv(affine[:3, :3]).T
    grid = map_coordinates(vol, ijk.T, order=1, mode="constant", cval=np.nan)
    inside = ((ijk >= -0.5) & (ijk <= shape - 0.5)).all(1)
    grid[~inside] = np.nan
    return grid.reshape(*n), lo, step


def _planes(grid: np.ndarray, lo: np.ndarray, step: float, centre=None) -> list:
    """(name, image with rows upward, extent in mm, side labels left/right/bottom/top) of the
    axial, coronal and sagittal planes through ``centre`` (grid voxel; default the middle);
    the horizontal axis is inverted by the caller: larger x (the patient's right) or y
    (anterior) on the left."""
    cx, cy, cz = np.array(grid.shape) // 2 if centre is None else centre
    ends = lo + step * np.array(grid.shape)
    return [("axial", grid[:, :, cz].T, (lo[0], ends[0], lo[1], ends[1]), "RLPA"),
            ("coronal", grid[:, cy, :].T, (lo[0], ends[0], lo[2], ends[2]), "RLIS"),
            ("sagittal", grid[cx, :, :].T, (lo[1], ends[1], lo[2], ends[2]), "APIS")]


def _draw_plane(ax, plane, vmin: float, vmax: float, title: str) -> None:
    _, img, extent, (left, right, bottom, top) = plane
    ax.set_facecolor("black")
    ax.imshow(np.ma.masked_invalid(img), cmap="gray", vmin=vmin, vmax=vmax, origin="lower",
              extent=extent, interpolation="nearest")
    ax.set_xlim(extent[1], extent[0])
    ax.set_title(title, color="white", fontsize=10)
    for text, (x, y, ha, va) in ((left, (0.01, 0.5, "left", "center")),
                                 (right, (0.99, 0.5, "right", "center")),
                                 (bottom, (0.5, 0.01, "center", "bottom")),
                                 (top, (0.5, 0.99, "center", "top"))):
        ax.text(x, y, text, color="yellow", ha=ha, va=va, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _window(vol: np.ndarray, window) -> tuple[float, float]:
    if window is None:
        p0, p1 = np.percentile(vol, [0.5, 99.5])
        window = ((p0 + p1) / 2, max(p1 - p0, 1e-12))
    return window[0] - window[1] / 2, window[0] + window[1] / 2


def three_plane_figure(volume, affine, out: str | os.PathLike, *, title: str = "",
                       window: tuple[float, float] | None = None, max_size: int = 320,
                       dpi: int = 110) -> Path:
    """Axial, coronal and sagittal planes through the centre of a volume, as a viewer shows
    them: resampled onto a RAS-aligned grid (oblique stacks appear tilted), radiological
    convention (the patient's right on the left), superior and anterior up, the sides
    labelled, outside the volume dark; write the PNG ``out`` atomically.

    Args:
        volume: ``(S, H, W)`` real values; ``affine``: ``(4, 4)`` RAS affine of ``(H, W, S)``.
        window: ``(center, width)`` grey window (default: 0.5th to 99.5th percentile).
        max_size: the largest grid size (voxels per axis) of the resampling.
    Returns:
        ``Path(out)``.
    """
    vol = np.asarray(volume, np.float64)
    if vol.ndim != 3 or np.iscomplexobj(vol):
        raise ValueError(f"three_plane_figure: expected real (S, H, W) values, got {vol.shape}")
    grid, lo, step = _resample_ras(vol, np.asarray(affine, np.float64), max_size)
    vmin, vmax = _window(vol, window)
    Figure = _figure_class()
    fig = Figure(figsize=(11, 4.2), dpi=dpi, facecolor="black", layout="constrained")
    axes = fig.subplots(1, 3)
    for ax, plane in zip(axes, _planes(grid, lo, step)):
        _draw_plane(ax, plane, vmin, vmax, plane[0])
    fig.suptitle(title, color="white", fontsize=11)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(out) as tmp:
        fig.savefig(tmp, format="png", facecolor="black")
    return Path(out)


def three_plane_grid(volumes: dict, affine, out: str | os.PathLike, *, centre_mm=None,
                     title: str = "", max_size: int = 256, dpi: int = 90) -> Path:
    """One row per volume of ``volumes`` (``{row label: (S, H, W) real}``, all on the same
    ``(H, W, S)`` RAS ``affine``, e.g. a reference and its reconstructions): the axial,
    coronal and sagittal planes through ``centre_mm`` (RAS, default the grid's centre), as
    :func:`three_plane_figure` draws them, one grey window (the first volume's); write the
    PNG ``out`` atomically.

    Raises:
        ValueError: volumes of different shapes or not 3-D real.
    """
    vols = {k: np.asarray(v, np.float64) for k, v in volumes.items()}
    shapes = {v.shape for v in vols.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 3 or \
            any(np.iscomplexobj(v) for v in vols.values()):
        raise ValueError(f"three_plane_grid: expected real 3-D volumes of one shape, got "
                         f"{sorted(shapes)}")
    a = np.asarray(affine, np.float64)
    first = next(iter(vols.values()))
    vmin, vmax = _window(first, None)
    Figure = _figure_class()
    fig = Figure(figsize=(9.5, 2.9 * len(vols)), dpi=dpi, facecolor="black",
                 layout="constrained")
    axes = fig.subplots(len(vols), 3, squeeze=False)
    for row, (label, vol) in zip(axes, vols.items()):
        grid, lo, step = _resample_ras(vol, a, max_size)
        centre = None if centre_mm is None else np.clip(
            ((np.asarray(centre_mm) - lo) / step).astype(int), 0, np.array(grid.shape) - 1)
        for ax, plane in zip(row, _planes(grid, lo, step, centre)):
            _draw_plane(ax, plane, vmin, vmax, f"{label}: {plane[0]}")
    fig.suptitle(title, color="white", fontsize=11)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(out) as tmp:
        fig.savefig(tmp, format="png", facecolor="black")
    return Path(out)
