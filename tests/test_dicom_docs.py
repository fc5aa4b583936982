"""docs/dicom.md: the Python example runs as written and prints what the page says; the
page's figure is a real three-plane picture; the README links the page."""
from __future__ import annotations

import re
import runpy
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
TEXT = (ROOT / "docs" / "dicom.md").read_text()


def test_python_example_prints_what_the_page_says(tmp_path, monkeypatch, capsys):
    code = re.search(r"```python\n(.*?)```", TEXT, re.S).group(1)
    printed = re.search(r"```python\n.*?```\n\nprints\n\n```\n(.*?)```", TEXT, re.S).group(1)
    script = tmp_path / "dicom_example_api.py"
    script.write_text(code)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(ROOT))
    runpy.run_path(str(script), run_name="__main__")
    assert capsys.readouterr().out.splitlines() == printed.splitlines()
    assert len(list((tmp_path / "dicom_api_example" / "in").iterdir())) == 6


def test_the_figure_and_the_links():
    assert "![mri-unfold view of the reconstructed DICOM series](dicom_view.png)" in TEXT
    img = np.asarray(Image.open(ROOT / "docs" / "dicom_view.png").convert("L"))
    assert img.shape == (462, 1210) and (img > 100).mean() > 0.05
    assert "(docs/dicom.md)" in (ROOT / "README.md").read_text()
