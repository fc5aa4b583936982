"""docs/volumes.md: its Python example runs as written, its command-line flags exist, and
the README links it."""
from __future__ import annotations

import re
import runpy
from pathlib import Path

from mri_unfold.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "volumes.md").read_text()


def test_volumes_doc_example_runs(tmp_path, capsys):
    code = "\n".join(re.findall(r"```python\n(.*?)```", DOC, re.S))
    assert "CartesianFourier3D" in code
    script = tmp_path / "volumes_example.py"
    script.write_text(code)
    runpy.run_path(str(script), run_name="__main__")
    assert capsys.readouterr().out.splitlines() == [
        "True", "['adjoint', 'adjoint_ax', 'linearity', 'normal']"]


def test_volumes_doc_flags_exist_and_readme_links_it():
    recon = build_parser()._subparsers._group_actions[0].choices["recon"]
    flags = {o for a in recon._actions for o in a.option_strings}
    table = re.findall(r"^\| `(--[a-z-]+)", DOC, re.M)
    assert len(table) >= 10 and set(table) <= flags
    assert "(docs/volumes.md)" in (ROOT / "README.md").read_text()
    assert not re.search(r"RESULTS_|PERFORMANCE\n|TRAINING_TIME|LIMITS\n", DOC)
