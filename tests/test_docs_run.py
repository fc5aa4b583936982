"""Every ```python block of docs/*.md runs as written.

Conventions a page follows (visible to its readers, checked here):

* a block runs on its own, in a fresh namespace, from the root of a fresh clone (a scratch
  folder holding links to the project's ``protocols/``, ``tests/``, ``docs/`` and
  ``benchmarks/``, so relative paths such as ``protocols/tiny.toml`` work and what the block
  writes, e.g. ``runs/``, stays out of the project; ``../shared`` is found through
  ``MRI_UNFOLD_SHARED``);
* a block whose first line is ``# (continues the example above)`` runs in the namespace and
  folder of the page's previous block;
* a block whose first line starts with ``# fragment`` is not a whole program (placeholders
  the reader fills in); it must still be valid Python;
* a block whose first line starts with ``# slow`` (with how long it takes) runs only
  outside the quick subset (marker ``slow``).

Each block is one test, named ``<page>:<line of its opening fence>``.
"""
from __future__ import annotations

import os
import re
import runpy
from pathlib import Path

import pytest

from mri_unfold.data.sources import registry as source_registry
from mri_unfold.models import registry as model_registry
from mri_unfold.operators import registry as operator_registry
from mri_unfold.shared_data import shared_root

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CONTINUES = "# (continues the example above)"
#: The project's folders a block may read by relative path.
CLONE_LINKS = ("protocols", "tests", "docs", "benchmarks")
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)


def doc_blocks() -> list[tuple[str, int, str]]:
    """``(page, line of the opening fence, code)`` of every python block, in page order."""
    out = []
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text()
        for m in FENCE.finditer(text):
            out.append((page.name, text.count("\n", 0, m.start()) + 1, m.group(1)))
    return out


BLOCKS = doc_blocks()


def _kind(code: str) -> str:
    first = code.lstrip().splitlines()[0] if code.strip() else ""
    if first.startswith("# fragment"):
        return "fragment"
    if first.startswith("# slow"):
        return "slow"
    return "continues" if first.startswith(CONTINUES) else "run"


def _params():
    for page, line, code in BLOCKS:
        marks = [pytest.mark.slow] if _kind(code) == "slow" else []
        yield pytest.param(page, line, code, id=f"{page}:{line}", marks=marks)


def test_the_pages_have_python_blocks():
    pages = {p for p, _, _ in BLOCKS}
    assert len(BLOCKS) >= 50 and {"models.md", "training.md", "masks.md", "data.md",
                                  "raw_data.md", "noncartesian.md"} <= pages


@pytest.fixture(autouse=True, scope="module")
def _registries_restored():
    """The pages register example operators, models and data sources (a page's later blocks
    may use them); after this module the registries are as before, so that other tests
    registering the same examples do not collide with them."""
    saved = [(reg, dict(reg)) for reg in (source_registry._SOURCES, model_registry._REGISTRY,
                                           operator_registry._REGISTRY)]
    entries = {name: (e.examples, e.from_config, e.cls)
               for name, e in operator_registry._REGISTRY.items()}
    yield
    for reg, before in saved:
        reg.clear()
        reg.update(before)
    for name, (examples, from_config, cls) in entries.items():
        e = operator_registry._REGISTRY[name]
        e.examples, e.from_config, e.cls = examples, from_config, cls


#: The namespace and folder each page's last block left (for "continues" blocks).
_STATE: dict[str, tuple[dict, Path]] = {}


@pytest.mark.parametrize("page,line,code", list(_params()))
def test_doc_block_runs(page, line, code, tmp_path, monkeypatch, capsys):
    kind = _kind(code)
    if kind == "fragment":
        compile(code, f"{page}:{line}", "exec")   # a fragment is still valid Python
        return
    if kind == "continues":
        assert page in _STATE, f"{page}:{line} continues a block, but no block ran before it"
        namespace, folder = _STATE[page]
    else:
        namespace, folder = {"__name__": "__main__"}, tmp_path
        for name in CLONE_LINKS:
            (folder / name).symlink_to(ROOT / name, target_is_directory=True)
    monkeypatch.chdir(folder)
    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.setenv("MRI_UNFOLD_SHARED", str(shared_root()))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    try:
        exec(compile(code, f"{page}:{line}", "exec"), namespace)
    finally:
        _STATE[page] = (namespace, folder)
    capsys.readouterr()


def test_fragments_and_continuations_say_so_in_words():
    """The markers are comments the reader sees; every marked block is named here so that a
    new one is a decision, not an accident."""
    marked = {f"{p}:{n}": _kind(c) for p, n, c in BLOCKS if _kind(c) != "run"}
    for where, kind in marked.items():
        assert kind in ("fragment", "slow", "continues"), where
    assert all(os.sep not in w for w in marked)
