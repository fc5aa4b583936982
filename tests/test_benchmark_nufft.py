"""The NUFFT benchmark suite in quick mode: every row is written, peers side by side, and the
adjoints of the peers agree with ours to their libraries' accuracy."""
from __future__ import annotations

import json
import math

from benchmarks import run


def test_quick_nufft_suite_writes_ours_and_the_peers(tmp_path, capsys):
    out = tmp_path / "nufft.json"
    assert run.main(["--suite", "nufft", "--quick", "--reps", "1", "--warmup", "0",
                     "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "== nufft ==" in text and f"wrote {out}" in text
    rows = json.loads(out.read_text())["rows"]
    cases = [(r["case"], r["coils"]) for r in rows]
    for coils in (1, 15):
        for case in ("ours forward+adjoint (finufft)", "ours normal (Toeplitz)",
                     "ours Toeplitz kernel (once per trajectory)", "sigpy forward+adjoint"):
            assert (case, coils) in cases
    assert all(r["seconds"] > 0 for r in rows)
    peers = [r for r in rows if r["case"].startswith(("sigpy", "torchkbnufft"))]
    # SigPy's defaults (oversampling 1.25, width 4) are accurate to ~1e-2, torchkbnufft ~1e-3
    assert peers and all(0 < r["adjoint_rel_diff"] < 2e-2 for r in peers)
    assert all(r["peer_over_ours_normal"] > 0 for r in peers)
    nets = [r for r in rows if "inference per slice" in r["case"]]
    assert len(nets) == 4 and all(0 < r["op_share"] and not math.isnan(r["op_share"])
                                  for r in nets)
