"""The examples of docs/data.md run as written (one script, in order)."""
from __future__ import annotations

import re
import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_data_doc_examples_run(shared, tmp_path, monkeypatch, capsys):
    text = (ROOT / "docs" / "data.md").read_text()
    code = "\n".join(re.findall(r"```python\n(.*?)```", text, re.S))
    assert code.count("import") >= 5
    script = tmp_path / "data_examples.py"
    script.write_text(code)
    monkeypatch.chdir(ROOT)  # the examples import tests/fake_fastmri.py via "tests"
    monkeypatch.syspath_prepend(str(ROOT))
    runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out.splitlines()
    assert out[2] == "torch.Size([4, 24, 24]) 1 1"  # ESPIRiT: one miss, then one cache hit
    assert out[3] == "50 torch.Size([1, 256, 256]) 100 1.0"
    assert out[4] == "int16 ('L', 'P', 'S')"
    assert out[5].startswith("torch.Size([8, 256, 256]) ") and out[5].endswith(" True")
