"""Project-level checks: README quick start == .ci/run (after installing the DICOM validators),
shared-data helper, CLI entry."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from dicom_fixtures import TOOLS_INSTALL
from mri_unfold.shared_data import ENV_VAR, SharedDataMissing, shared_root

ROOT = Path(__file__).resolve().parents[1]


def _quick_start_commands():
    text = (ROOT / "README.md").read_text()
    qs = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)\n```", qs, flags=re.S)


def test_quick_start_has_exactly_two_commands_and_ci_runs_them():
    cmds = _quick_start_commands()
    assert len(cmds) == 2
    assert "mri-unfold demo" in cmds[0]
    assert "pytest" in cmds[1] and ".[test]" in cmds[1]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    body = [ln for ln in ci if ln.strip() and not ln.startswith("#") and not ln.startswith("set ")
            and not ln.startswith("cd ")]
    # first the Debian packages the DICOM validator tests need (the install command their skip
    # message gives), made mandatory; then exactly README's two commands
    setup = [f"apt-get update && {TOOLS_INSTALL}", "export MRI_UNFOLD_REQUIRE_DICOM_TOOLS=1"]
    assert body == setup + cmds


def test_shared_root_env_var_missing_dir(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nope"))
    with pytest.raises(SharedDataMissing, match="not a directory"):
        shared_root()


def test_shared_root_env_var(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert shared_root() == tmp_path.resolve()


def test_shared_fixture_finds_the_papers(shared):
    assert (shared / "papers" / "ista_net_cvpr2018.txt").is_file()


def test_cli_help_lists_commands():
    r = subprocess.run([sys.executable, "-m", "mri_unfold", "--help"], capture_output=True,
                       text=True)
    assert r.returncode == 0
    assert "demo" in r.stdout


def test_top_level_reconstruct_api():
    import mri_unfold
    from mri_unfold.reconstruct import reconstruct_fastmri, reconstruct_nifti, reconstruct_volume

    assert mri_unfold.reconstruct_volume is reconstruct_volume
    assert mri_unfold.reconstruct_fastmri is reconstruct_fastmri
    assert mri_unfold.reconstruct_nifti is reconstruct_nifti
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        mri_unfold.nope  # noqa: B018


def test_every_subcommand_accepts_debug_once():
    from mri_unfold.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert {"demo", "train", "eval", "import-official", "recon", "compare", "plot-log",
            "masks"} <= set(sub.choices)
    for name, cmd in sub.choices.items():
        flags = [o for a in cmd._actions for o in a.option_strings if o == "--debug"]
        assert flags == ["--debug"], name
