"""Training/validation curves of a run folder (``log.jsonl``) as a PNG (matplotlib Agg)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..atomic import atomic_output
from ..errors import UserError
from .logs import read_jsonl


def plot_run(run_dir: str | Path, output: str | Path | None = None) -> Path:
    """Plot train loss vs step (raw + running mean) and validation metrics vs epoch.

    Returns:
        The PNG path (default ``run_dir/curves.png``), written atomically.
    Raises:
        FileNotFoundError / UserError: no run folder, no log, no records.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: run folder not found")
    log = run_dir / "log.jsonl"
    if not log.is_file():
        raise FileNotFoundError(f"{log}: no training log in this run folder")
    recs = read_jsonl(log)
    train = [r for r in recs if r.get("split") == "train" and "loss" in r]
    val = [r for r in recs if r.get("split") == "val"]
    if not train and not val:
        raise UserError(f"{log}: no records to plot")
    metrics = [m for m in ("psnr", "ssim") if any(m in r for r in val)]
    fig, axes = plt.subplots(1, 1 + len(metrics), figsize=(5 * (1 + len(metrics)), 3.6),
                             squeeze=False)
    ax = axes[0, 0]
    if train:
        steps = np.array([r["step"] for r in train])
        loss = np.array([r["loss"] for r in train])
        ax.plot(steps, loss, lw=0.7, alpha=0.5, label="loss")
        k = max(1, len(loss) // 20)
        ax.plot(steps[k - 1:], np.convolve(loss, np.ones(k) / k, mode="valid"), lw=1.6,
                label=f"running mean ({k})")
        ax.set_yscale("log" if np.all(loss > 0) else "linear")
        ax.legend()
    ax.set(xlabel="step", ylabel="training loss", title=run_dir.name)
    for ax, m in zip(axes[0, 1:], metrics):
        pts = [(r["epoch"], r[m]) for r in val if m in r]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-")
        ax.set(xlabel="epoch", ylabel=f"validation {m.upper()}", title=f"validation {m.upper()}")
    fig.tight_layout()
    out = Path(output) if output else run_dir / "curves.png"
    try:
        with atomic_output(out, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=100, format="png")
    finally:
        plt.close(fig)
    return out
