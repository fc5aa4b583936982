"""The CLI's error policy: user errors are one line with exit status 2, anything else is an
"internal error" line with a hint to rerun with --debug and exit status 1."""
from __future__ import annotations

import pytest

from mri_unfold.cli import main, train
from mri_unfold.errors import DataFileError, UserError


def _fail_with(monkeypatch, exc):
    def boom(args):
        raise exc

    monkeypatch.setattr(train, "run", boom)


@pytest.mark.parametrize("exc,text", [
    (UserError("settings.toml: training.lr must be > 0, got 0.0"),
     "training.lr must be > 0, got 0.0"),
    (DataFileError("scan.h5: slice 3 k-space contains 2 NaN/Inf values"), "scan.h5: slice 3"),
    (FileNotFoundError("x.toml: protocol file not found"), "x.toml: protocol file not found"),
    (PermissionError("out/: folder is not writable"), "folder is not writable"),
])
def test_user_errors_are_one_line_with_exit_2(monkeypatch, capsys, exc, text):
    _fail_with(monkeypatch, exc)
    assert main(["train", "x.toml"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mri-unfold: error: ") and err.count("\n") == 1 and text in err


@pytest.mark.parametrize("exc", [ValueError("shapes (2, 3) and (4,) not aligned"),
                                 KeyError("phases.0.conv_d"), TypeError("unsupported operand"),
                                 RuntimeError("mat1 and mat2 shapes cannot be multiplied")])
def test_unexpected_exceptions_are_internal_errors_with_exit_1(monkeypatch, capsys, exc):
    _fail_with(monkeypatch, exc)
    assert main(["train", "x.toml"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"mri-unfold: internal error: {type(exc).__name__}: ")
    assert "this is a bug in mri-unfold; rerun with --debug for the traceback" in err


def test_debug_shows_the_traceback(monkeypatch):
    _fail_with(monkeypatch, RuntimeError("boom"))
    with pytest.raises(RuntimeError, match="boom"):
        main(["train", "x.toml", "--debug"])
    with pytest.raises(UserError, match="bad"):
        _fail_with(monkeypatch, UserError("bad"))
        main(["--debug", "train", "x.toml"])
