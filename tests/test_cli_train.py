"""CLI: train the tiny protocol end to end, plot its log, import the authors' ISTA-Net+ and
reproduce 32.44 dB on Set11, and one-line errors (exit 2, no partial outputs) for bad input."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mri_unfold.cli import main
from mri_unfold.outputs import MARKER

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "protocols" / "tiny.toml"
ISTA_PLUS_25 = ("reference/ista_net_pytorch/model/CS_ISTA_Net_plus_layer_9_group_1_ratio_25_"
                "lr_0.0001/net_params_200.pkl")


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("mri-unfold: error: ")
    return err[0]


@pytest.mark.slow
def test_tiny_protocol_trains_through_the_cli(tmp_path, shared, capsys):
    run = tmp_path / "run"
    assert main(["train", str(TINY), "--run-dir", str(run), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "trained tiny: step 24, epoch 2" in out
    recs = [json.loads(ln) for ln in (run / "log.jsonl").read_text().splitlines()]
    loss = np.array([r["loss"] for r in recs if r["split"] == "train"])
    assert len(loss) == 24
    assert loss[-8:].mean() < 0.75 * loss[:3].mean()  # it learns
    val = [r for r in recs if r["split"] == "val"]
    assert [r["epoch"] for r in val] == [1, 2] and all(20 < r["psnr"] < 45 for r in val)
    with open(run / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert sum(r["metric"] == "loss" for r in rows) == 24
    assert {p.name for p in run.iterdir()} == {"protocol.toml", "last.safetensors",
                                               "last.state.pt", "best.safetensors",
                                               "log.jsonl", "log.csv", MARKER}
    # plot-log writes a real, non-blank PNG
    assert main(["plot-log", str(run)]) == 0
    from PIL import Image

    img = np.asarray(Image.open(run / "curves.png").convert("L"))
    assert img.shape[0] >= 300 and img.shape[1] >= 900
    assert img.std() > 10 and (img < 128).mean() > 0.005


@pytest.mark.slow
def test_import_official_and_eval_reproduce_ista_net_plus_set11(tmp_path, shared, capsys):
    ck = tmp_path / "ista_net_plus_25.safetensors"
    assert main(["import-official", str(shared / ISTA_PLUS_25), "--output", str(ck)]) == 0
    assert "ista_net_plus, operator block_cs, ratio 0.25" in capsys.readouterr().out
    out = tmp_path / "eval"
    assert main(["eval", str(ck), "--images", str(shared / "data/natural/Set11"),
                 "--output", str(out)]) == 0
    table = capsys.readouterr().out
    assert "Set11" in table and "32.44" in table
    with open(out / "summary.csv") as f:
        row = next(csv.DictReader(f))
    assert row["set"] == "Set11" and row["images"] == "11"
    assert float(row["psnr"]) == pytest.approx(32.44, abs=0.01)
    assert len(list((out / "Set11").glob("*.png"))) == 11


# ----------------------------------------------------------------------------- bad input
@pytest.fixture
def tiny_ckpt(tmp_path_factory, shared):
    d = tmp_path_factory.mktemp("ck")
    ck = d / "ip.safetensors"
    assert main(["import-official", str(shared / ISTA_PLUS_25), "--output", str(ck)]) == 0
    return ck


def test_missing_protocol(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nope.toml"), "--run-dir", str(tmp_path / "r")]) == 2
    assert "nope.toml: protocol file not found" in _error_line(capsys)
    assert not (tmp_path / "r").exists()


def test_malformed_toml(tmp_path, capsys):
    p = tmp_path / "bad.toml"
    p.write_text("[training]\nepochs = \n")
    assert main(["train", str(p), "--run-dir", str(tmp_path / "r")]) == 2
    assert "bad.toml: malformed TOML" in _error_line(capsys)
    assert not (tmp_path / "r").exists()


def test_unknown_key(tmp_path, capsys):
    p = tmp_path / "p.toml"
    p.write_text(TINY.read_text().replace("lr = 1e-3", "learning_rate = 1e-3"))
    assert main(["train", str(p), "--run-dir", str(tmp_path / "r")]) == 2
    line = _error_line(capsys)
    assert "unknown key 'training.learning_rate' in training; valid keys: epochs, batch_size, lr" \
        in line
    assert not (tmp_path / "r").exists()


def test_ratio_without_authors_matrix(tmp_path, capsys, shared, tiny_ckpt):
    assert main(["train", str(TINY), "--run-dir", str(tmp_path / "r"), "--override",
                 "operator.phi=authors", "--override", "operator.ratio=0.5"]) == 2
    line = _error_line(capsys)
    assert "operator.ratio = 0.5: no authors' matrix phi_0_50_1089.mat in " in line
    assert "(available ratios in %: 1, 4, 10, 25, 30, 40)" in line
    assert not (tmp_path / "r").exists()
    assert main(["eval", str(tiny_ckpt), "--images", str(shared / "data/natural/Set11"),
                 "--ratio", "0.5", "--output", str(tmp_path / "e")]) == 2
    assert "no authors' matrix phi_0_50_1089.mat" in _error_line(capsys)
    assert not (tmp_path / "e").exists()


def test_checkpoint_for_another_architecture(tmp_path, capsys, shared, tiny_ckpt):
    assert main(["eval", str(tiny_ckpt), "--protocol", str(ROOT / "protocols/madun_cs.toml"),
                 "--output", str(tmp_path / "e")]) == 2
    assert ("checkpoint is a 'ista_net_plus' model but " in _error_line(capsys))
    assert not (tmp_path / "e").exists()
    assert main(["import-official", str(shared / ISTA_PLUS_25), "--arch", "ista_net",
                 "--output", str(tmp_path / "x.safetensors")]) == 2
    assert "holds an 'ista_net_plus' checkpoint, not 'ista_net' (--arch)" in _error_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_image_folder_without_images(tmp_path, capsys, tiny_ckpt):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    assert main(["eval", str(tiny_ckpt), "--images", str(empty),
                 "--output", str(tmp_path / "e")]) == 2
    line = _error_line(capsys)
    assert str(empty) in line and "no images" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]  # no partial output


def test_not_a_checkpoint_and_resume_without_run(tmp_path, capsys):
    bad = tmp_path / "w.safetensors"
    bad.write_bytes(b"\x00" * 64)
    assert main(["eval", str(bad), "--images", str(tmp_path)]) == 2
    assert "w.safetensors: not an mri-unfold checkpoint" in _error_line(capsys)
    assert main(["train", str(TINY), "--run-dir", str(tmp_path / "r"), "--resume"]) == 2
    assert "no training state to resume from" in _error_line(capsys)


@pytest.mark.slow
def test_subprocess_error_has_no_traceback_unless_debug(tmp_path):
    cmd = [sys.executable, "-m", "mri_unfold", "train", str(tmp_path / "nope.toml")]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    r = subprocess.run(cmd[:3] + ["--debug"] + cmd[3:], capture_output=True, text=True)
    assert r.returncode != 0 and "Traceback" in r.stderr


@pytest.mark.parametrize("cmd", ["train", "eval", "import-official", "plot-log"])
def test_help_has_examples(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and f"mri-unfold {cmd}" in out


def test_plot_log_errors(tmp_path, capsys):
    assert main(["plot-log", str(tmp_path)]) == 2
    assert "log.jsonl: no training log in this run folder" in _error_line(capsys)
