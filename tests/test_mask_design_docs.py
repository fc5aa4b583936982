"""docs/mask_design.md quotes the committed results of the shipped study
(docs/mask_design/summary.csv): the table of ISTA-Net+ per acceleration must say what the
summary holds, and the summary must be the whole study (54 cells of 50 images)."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.fixture(scope="module")
def summary():
    with open(DOCS / "mask_design" / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {(r["mask"], float(r["acceleration"]), r["method"]): r for r in rows}


def test_summary_is_the_whole_shipped_study(summary):
    assert len(summary) == 6 * 3 * 3
    assert {r["n"] for r in summary.values()} == {"50"}
    assert {m for m, _, _ in summary} == {"radial", "poisson", "gaussian2d", "random",
                                          "equispaced", "learned-2d"}


@pytest.mark.parametrize("acc", [4, 6, 10])
def test_docs_table_quotes_the_summary(summary, acc):
    text = (DOCS / "mask_design.md").read_text()
    row = next(ln for ln in text.splitlines() if ln.startswith(f"| {acc}× | **"))
    learned = summary[("learned-2d", float(acc), "ista_net_plus")]
    hand = {m: float(summary[(m, float(acc), "ista_net_plus")]["psnr_mean"])
            for m in ("radial", "poisson", "gaussian2d", "random", "equispaced")}
    best = max(hand, key=hand.get)
    assert best == "poisson"
    quoted = [float(x) for x in re.findall(r"\d+\.\d\d", row)]
    assert quoted[0] == round(float(learned["psnr_mean"]), 2)
    assert quoted[1:3] == [round(float(learned["psnr_ci_low"]), 2),
                           round(float(learned["psnr_ci_high"]), 2)]
    assert round(hand[best], 2) in quoted
    # the learned mask beats the best hand-designed one by the quoted margin
    diff = float(learned["psnr_mean"]) - hand[best]
    assert diff > 0.5 and f"**+{diff:.2f}**" in row
