"""Property tests of the output rules, command by command (hypothesis draws the command, the
kind of output path and ``--overwrite``):

* files — ``recon``, ``compare``, ``masks --output``, ``masks --save-npy``, ``plot-log``,
  ``import-official``, ``demo``: an output that is an input (the same path, a symbolic or hard
  link to it, another spelling of its path) is refused with or without ``--overwrite``; so
  are a name ending with ``/`` and a missing folder; an existing file is refused without
  ``--overwrite`` and replaced with it; a new file is written;
* folders — ``train --run-dir``, ``eval --output``, ``study --out`` / ``study merge --out``:
  a new folder (with missing parents for runs) or an empty one is accepted, one of ours is
  accepted where the command continues it, anything else is refused.

A refused command exits with status 2 and leaves every file byte-for-byte unchanged; an
accepted one changes nothing but its own outputs.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mri_unfold.cli import main
from mri_unfold.outputs import MARKER, check_folder, mark_folder
from mri_unfold.errors import UserError

sys.path.insert(0, str(Path(__file__).parent))
import hostile_files as hf  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PKL = ("reference/ista_net_pytorch/model/CS_ISTA_Net_plus_layer_9_group_1_ratio_25_lr_0.0001/"
       "net_params_200.pkl")
INPUT_KINDS = ("input", "symlink", "hardlink", "dotted")
FILE_KINDS = ("new", "existing", "slash", "missing_folder") + INPUT_KINDS


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def sources(tmp_path_factory, recon_complex_ckpt, shared):
    """The inputs every example copies into its own folder."""
    d = tmp_path_factory.mktemp("sources")
    hf.fastmri_scan(d)
    hf.png(d / "brain.png", seed=2)
    (d / "ratio_25").mkdir()
    shutil.copy(shared / PKL, d / "ratio_25" / "net_params_200.pkl")
    (d / "run").mkdir()
    (d / "run" / "log.jsonl").write_text("".join(json.dumps(
        {"step": s, "epoch": 0, "split": "train", "time": 0.0, "loss": 1.0 / s}) + "\n"
        for s in range(1, 6)))
    return d, Path(recon_complex_ckpt)


#: command -> (argv(folder, output, ckpt), the input an output may wrongly be, output suffix)
def _recon(d, out, ck):
    return ["recon", str(d / "scan.h5"), "--model", str(ck), "--mask", "random",
            "--acceleration", "4", "--no-progress", "--output", out]


def _compare(d, out, ck):
    return ["compare", str(d / "brain.png"), "--mask", "radial", "--acceleration", "4",
            "--baseline", "zero-filled", "--output", out]


def _masks(d, out, ck):
    return ["masks", "--kind", "radial", "--shape", "32", "32", "--acceleration", "4",
            "--output", out]


def _masks_npy(d, out, ck):  # out is DIR/radial.npy
    return ["masks", "--kind", "radial", "--shape", "32", "32", "--acceleration", "4",
            "--save-npy", out[: -len("/radial.npy")]]


def _plot_log(d, out, ck):
    return ["plot-log", str(d / "run"), "--output", out]


def _import(d, out, ck):
    return ["import-official", str(d / "ratio_25" / "net_params_200.pkl"), "--output", out]


def _demo(d, out, ck):  # out is DIR/comparison.png
    return ["demo", "--output", out[: -len("/comparison.png")], "--weights", str(d / "none")]


COMMANDS = {
    "recon": (_recon, "scan.h5", "o.h5"),
    "compare": (_compare, "brain.png", "o.png"),
    "masks": (_masks, None, "o.png"),
    "masks --save-npy": (_masks_npy, None, "npy/radial.npy"),
    "plot-log": (_plot_log, "run/log.jsonl", "o.png"),
    "import-official": (_import, "ratio_25/net_params_200.pkl", "o.safetensors"),
    "demo": (_demo, None, "demo/comparison.png"),
}


def _output(d: Path, kind: str, source: str | None, name: str) -> tuple[str, bool]:
    """(the output argument, whether it must be refused) for one kind of path."""
    if kind in INPUT_KINDS:
        src = d / source
        path = {"input": src, "symlink": d / ("link_" + src.name),
                "hardlink": d / ("hard_" + src.name),
                "dotted": d / "run" / ".." / source}[kind]
        if kind == "symlink":
            os.symlink(src, path)
        elif kind == "hardlink":
            os.link(src, path)
        return str(path), True
    out = d / name
    if kind == "missing_folder":
        return str(d / "nope" / "deeper" / Path(name).name), "demo" not in name
    if kind == "slash":
        return str(out) + "/", True
    if kind == "existing":
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(b"an earlier result")
    return str(out), False


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(sorted(COMMANDS)), kind=st.sampled_from(FILE_KINDS),
       overwrite=st.booleans())
@pytest.mark.slow
def test_file_outputs_follow_the_rules(sources, command, kind, overwrite, capsys):
    src_dir, ck = sources
    argv, source, name = COMMANDS[command]
    if source is None and kind in INPUT_KINDS:
        kind = "new"  # the command reads no file an output could be
    if command in ("demo", "masks --save-npy") and kind == "slash":
        kind = "new"  # these name a folder: a trailing slash is allowed there
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "w"
        shutil.copytree(src_dir, d)
        out, refused = _output(d, kind, source, name)
        refused = refused or (kind == "existing" and not overwrite)
        before = _snapshot(d)
        capsys.readouterr()
        code = main(argv(d, out, ck) + (["--overwrite"] if overwrite else []))
        err = capsys.readouterr().err
        after = _snapshot(d)
        if refused:
            assert code == 2 and err.count("mri-unfold: error: ") == 1, (command, kind, err)
            assert after == before
            return
        assert code == 0, (command, kind, err)
        changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
        written = {str(Path(out).relative_to(d))}
        if command == "demo":
            written.add(str(Path(out).parent.relative_to(d) / "metrics.csv"))
        assert changed == written, (command, kind, changed)
        assert Path(out).read_bytes() != b"an earlier result"


FOLDER_KINDS = ("new", "new_nested", "empty", "ours", "other_kind", "user", "file")


def _folder(base: Path, kind: str, marker_kind: str) -> Path:
    p = base / ("a/b/c" if kind == "new_nested" else "f")
    if kind in ("empty", "ours", "other_kind", "user"):
        p.mkdir(parents=True)
    if kind == "ours":
        mark_folder(p, marker_kind)
        (p / "log.csv").write_text("ours\n")
    if kind == "other_kind":
        mark_folder(p, "study" if marker_kind == "run" else "run")
    if kind == "user":
        (p / "notes.txt").write_text("mine")
    if kind == "file":
        p.write_text("a file")
    return p


@settings(max_examples=80, deadline=None)
@given(kind=st.sampled_from(FOLDER_KINDS), marker_kind=st.sampled_from(("run", "study")),
       legacy=st.booleans())
def test_folder_rules(kind, marker_kind, legacy):
    """check_folder: new, empty and ours are accepted; a user's folder only when the caller
    recognised it by content (legacy); a file and a folder of another kind never; nothing is
    ever changed."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        p = _folder(base, kind, marker_kind)
        before = _snapshot(base)
        ok = {"new": "new", "new_nested": "new", "empty": "ours" if legacy else "empty",
              "ours": "ours", "user": "ours" if legacy else None}.get(kind)
        if ok is None:
            with pytest.raises(UserError, match=r"run folder .*(not|is a)"):
                check_folder(p, marker_kind, "run folder", legacy=legacy)
        else:
            assert check_folder(p, marker_kind, "run folder", legacy=legacy) == ok
        assert _snapshot(base) == before and p.exists() == (kind not in ("new", "new_nested"))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(FOLDER_KINDS))
@pytest.mark.slow
def test_train_run_folders_follow_the_rules(kind):
    """``train --run-dir``: new (with parents), empty or ours (without a training state:
    a run that never saved) are trained in; anything else is refused untouched."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        run = _folder(base, kind, "run")
        before = _snapshot(base)
        code = main(["train", str(ROOT / "protocols" / "tiny.toml"), "--override",
                     "data.max_images=4", "--override", "training.max_steps=1", "--override",
                     'evaluation.protocol="none"', "--no-progress", "--run-dir", str(run)])
        if kind in ("other_kind", "user", "file"):
            assert code == 2 and _snapshot(base) == before
            assert sorted(p.name for p in base.iterdir()) == ["f"]  # no lock file left
        else:
            assert code == 0 and (run / MARKER).is_file() and (run / "last.safetensors").is_file()
            kept = {k: v for k, v in before.items() if "log.csv" not in k}
            assert {k: v for k, v in _snapshot(base).items() if k in kept} == kept


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(FOLDER_KINDS))
@pytest.mark.slow
def test_eval_output_folders_follow_the_rules(sources, kind, shared):
    """``eval --output``: a new or empty folder is filled; anything else is refused."""
    src_dir, _ = sources
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        ck = base / "ck.safetensors"
        assert main(["import-official", str(src_dir / "ratio_25" / "net_params_200.pkl"),
                     "--output", str(ck)]) == 0
        out = _folder(base, kind, "run")
        before = _snapshot(base)
        code = main(["eval", str(ck), "--images", str(shared / "data" / "natural" / "Set11"),
                     "--max-images", "1", "--output", str(out)])
        if kind in ("new", "empty"):
            assert code == 0 and (out / "summary.csv").is_file()
        else:
            assert code == 2 and _snapshot(base) == before
        assert not [p for p in base.iterdir() if ".partial-" in p.name]


def test_study_folders_refuse_what_is_not_ours(tmp_path, capsys):
    """``study merge --out`` and ``study --out``: a user's folder, a file, a run folder are
    refused before anything is read or written."""
    shard = hf.user_folder(tmp_path / "shard", {})
    (shard / "study.json").write_text(json.dumps({"name": "s", "fingerprint": "f", "cells": []}))
    for kind in ("user", "file", "other_kind"):
        (tmp_path / kind).mkdir()
        out = _folder(tmp_path / kind, kind, "study")
        before = _snapshot(tmp_path)
        assert main(["study", "merge", str(shard), "--out", str(out)]) == 2
        assert "--out " + str(out) in capsys.readouterr().err
        assert _snapshot(tmp_path) == before
    np.testing.assert_equal(sorted(p.name for p in shard.iterdir()), ["study.json"])
