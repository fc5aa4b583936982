"""Training from a fresh clone: no ``runs/`` folder yet.  ``mri-unfold train
protocols/tiny.toml`` and the first example of docs/cli.md create the default run folder
(and its parents) instead of refusing; refusals stay for what is not ours."""
from __future__ import annotations

import re
from pathlib import Path

from mri_unfold.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _clone_root(tmp_path: Path) -> Path:
    """A scratch folder laid out like a fresh clone's root (no runs/)."""
    root = tmp_path / "clone"
    root.mkdir()
    (root / "protocols").symlink_to(ROOT / "protocols", target_is_directory=True)
    return root


def test_train_tiny_creates_the_default_run_folder(tmp_path, monkeypatch, capsys):
    root = _clone_root(tmp_path)
    monkeypatch.chdir(root)
    assert not (root / "runs").exists()
    assert main(["train", "protocols/tiny.toml", "--override", "training.epochs=1",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"trained tiny: step 12, epoch 1, .*; run folder runs/tiny$", out.strip())
    for name in ("last.safetensors", "best.safetensors", "log.jsonl", "protocol.toml"):
        assert (root / "runs" / "tiny" / name).is_file(), name


def test_the_first_example_of_cli_md_runs_in_a_fresh_clone(tmp_path, monkeypatch, capsys):
    text = (ROOT / "docs" / "cli.md").read_text()
    first = next(ln for ln in text.splitlines() if ln.startswith("mri-unfold train "))
    assert first == "mri-unfold train protocols/tiny.toml --run-dir runs/tiny"
    root = _clone_root(tmp_path)
    monkeypatch.chdir(root)
    args = first.split()[1:] + ["--override", "training.epochs=1", "--no-progress"]
    assert main(args) == 0
    assert (root / "runs" / "tiny" / "last.safetensors").is_file()
    capsys.readouterr()
    nested = root / "deeper" / "still" / "run"             # parents are created too
    assert main(["train", "protocols/tiny.toml", "--run-dir", str(nested), "--override",
                 "training.epochs=1", "--no-progress"]) == 0
    assert (nested / "last.safetensors").is_file()
    capsys.readouterr()
    foreign = root / "notes"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("not a run")
    assert main(["train", "protocols/tiny.toml", "--run-dir", str(foreign), "--no-progress"]) == 2
    assert "run folder" in capsys.readouterr().err
    assert sorted(p.name for p in foreign.iterdir()) == ["mine.txt"]
