"""The study's report: ``summary.md`` (Markdown tables) and ``report.html`` (one page with the
settings, the tables and every figure).

Tables are made with :func:`mri_unfold.tables.format_table` (Markdown: ``" | "`` separated
columns under a dashed rule) or as plain HTML tables of the same rows.
"""
from __future__ import annotations

import html
import math
from pathlib import Path

from ..atomic import atomic_write_text
from ..tables import Column, format_table
from ..training.config import to_toml

__all__ = ["markdown_summary", "write_report", "summary_rows", "winner_rows", "pair_rows",
           "timing_rows"]


def _f(v, fmt: str) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def _ci(s: dict, m: str, fmt: str) -> str:
    return f"{_f(s[f'{m}_mean'], fmt)} [{_f(s[f'{m}_ci_low'], fmt)}, {_f(s[f'{m}_ci_high'], fmt)}]"


SUMMARY_COLS = (Column("mask", align="<"), Column("acc", "accel."), Column("method", align="<"),
                Column("n"), Column("psnr", "PSNR dB [95% CI]"), Column("ssim", "SSIM [95% CI]"),
                Column("psnr255", "PSNR-255 dB"), Column("ssim255", "SSIM-255"),
                Column("nmse", "NMSE"), Column("lam", "λ"))
WINNER_COLS = (Column("method", align="<"), Column("acc", "accel."), Column("best", align="<"),
               Column("best_v", "best [95% CI]"), Column("runner", "runner-up", align="<"),
               Column("runner_v", "runner-up mean"), Column("diff", "paired diff [95% CI]"),
               Column("p", "p (t / Wilcoxon)"))
PAIR_COLS = (Column("acc", "accel."), Column("pair", "b − a", align="<"), Column("n"),
             Column("diff", "mean diff [95% CI]"), Column("p", "p (t / Wilcoxon)"))
TIMING_COLS = (Column("what", align="<"), Column("seconds", fmt=".1f"),
               Column("minutes", fmt=".2f"))


def summary_rows(summary: list[dict]) -> list[dict]:
    return [{"mask": s["mask"], "acc": f"{s['acceleration']:g}x", "method": s["method"],
             "n": f"{int(s['n'])}", "psnr": _ci(s, "psnr", ".2f"), "ssim": _ci(s, "ssim", ".4f"),
             "psnr255": _f(s["psnr255_mean"], ".2f"), "ssim255": _f(s["ssim255_mean"], ".4f"),
             "nmse": _f(s["nmse_mean"], ".4g"), "lam": _f(s["lambda"], "g")} for s in summary]


def winner_rows(wins: list[dict]) -> list[dict]:
    return [{"method": w["method"], "acc": f"{w['acceleration']:g}x", "best": w["best"],
             "best_v": f"{w['best_mean']:.2f} [{w['best_ci_low']:.2f}, {w['best_ci_high']:.2f}]",
             "runner": w["runner_up"], "runner_v": f"{w['runner_up_mean']:.2f}",
             "diff": f"{w['diff']:+.3f} [{_f(w['diff_ci_low'], '+.3f')}, "
                     f"{_f(w['diff_ci_high'], '+.3f')}]",
             "p": f"{_f(w['p_ttest'], '.2g')} / {_f(w['p_wilcoxon'], '.2g')}"} for w in wins]


def pair_rows(pairs: list[tuple[float, dict]]) -> list[dict]:
    return [{"acc": f"{acc:g}x", "pair": f"{p['label_b']} − {p['label_a']} ({p['metric']})",
             "n": str(p["n"]), "diff": f"{p['mean']:+.3f} [{_f(p['ci_low'], '+.3f')}, "
                                       f"{_f(p['ci_high'], '+.3f')}]",
             "p": f"{_f(p['p_ttest'], '.2g')} / {_f(p['p_wilcoxon'], '.2g')}"}
            for acc, p in pairs]


def timing_rows(timings: dict) -> list[dict]:
    rows = [{"what": f"phase: {k}", "seconds": v, "minutes": v / 60}
            for k, v in timings["phases"].items()]
    rows += [{"what": f"cells: {k} (wall)", "seconds": v, "minutes": v / 60}
             for k, v in timings["families"].items()]
    return rows


def _md(rows, cols) -> str:
    return format_table(rows, cols, sep=" | ", rule=True) if rows else "(none)"


def markdown_summary(record: dict, summary, wins, pairs, timings, warnings=()) -> str:
    """``summary.md``: the warnings (e.g. unconverged learned masks), the per-cell
    statistics, the winners, the paired comparisons and where the time went, as Markdown
    tables."""
    metric = record["protocol"]["report"]["metric"]
    notes = ["## Warnings\n\n" + "\n".join(f"* **{w}**" for w in warnings)] if warnings else []
    return "\n\n".join([
        f"# Study {record['name']} (fingerprint {record['fingerprint']})", *notes,
        "## Per cell: mean [95 % CI] over the test images", _md(summary_rows(summary),
                                                              SUMMARY_COLS),
        f"## Best mask per method and acceleration ({metric})", _md(winner_rows(wins),
                                                                   WINNER_COLS),
        "## Paired comparisons", _md(pair_rows(pairs), PAIR_COLS),
        "## Time", _md(timing_rows(timings), TIMING_COLS)]) + "\n"


def _html_table(rows: list[dict], cols) -> str:
    if not rows:
        return "<p>(none)</p>"
    head = "".join(f"<th>{html.escape(c.heading)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c.cell(r))}</td>" for c in cols)
                   + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_report(path, record: dict, summary, wins, pairs, timings,
                 figures: dict[str, Path], warnings=()) -> Path:
    """``report.html``: warnings, settings, tables and figures (linked relative to
    ``path``)."""
    path = Path(path)
    notes = "".join(f'<p style="color:#b00"><b>Warning:</b> {html.escape(w)}</p>'
                    for w in warnings)
    cfg = record["protocol"]
    imgs = "".join(f'<figure><img src="{html.escape(str(p.relative_to(path.parent)))}" '
                   f'alt="{html.escape(k)}"><figcaption>{html.escape(k)}</figcaption></figure>'
                   for k, p in figures.items())
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Study {html.escape(record['name'])}</title>
<style>body{{font-family:sans-serif;max-width:1400px;margin:auto}}table{{border-collapse:
collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}
img{{max-width:100%}}pre{{background:#f6f6f6;padding:8px;font-size:12px}}</style></head><body>
<h1>Study {html.escape(record['name'])}</h1>
<p>{html.escape(cfg.get('description', ''))}</p>
<p>Fingerprint {record['fingerprint']}; images {record['shape'][0]}x{record['shape'][1]};
{len(record.get('test_images', []))} test images; {len(record['cells'])} cells.  Files:
<a href="results.csv">results.csv</a> (one row per image and cell),
<a href="summary.csv">summary.csv</a> (mean, std, 95 % CI per cell).</p>{notes}
<h2>Per cell: mean [95 % CI]</h2>{_html_table(summary_rows(summary), SUMMARY_COLS)}
<h2>Best mask per method and acceleration ({html.escape(cfg['report']['metric'])})</h2>
{_html_table(winner_rows(wins), WINNER_COLS)}
<h2>Paired comparisons</h2>{_html_table(pair_rows(pairs), PAIR_COLS)}
<h2>Figures</h2>{imgs}
<h2>Time</h2>{_html_table(timing_rows(timings), TIMING_COLS)}
<h2>Settings</h2><pre>{html.escape(to_toml(cfg))}</pre>
</body></html>
"""
    return atomic_write_text(path, page)
