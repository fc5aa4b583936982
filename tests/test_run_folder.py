"""Run folders survive real use: one training process per folder, no debris after kills, no
duplicated validation records, a consistent checkpoint/state pair, a protocol.toml that says
what was trained, finite learning rates, checkpoints with the normal file mode."""
from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
import torch

from mri_unfold import checkpoints as ckpt
from mri_unfold.cli import main
from mri_unfold.errors import UserError
from mri_unfold.outputs import MARKER
from mri_unfold.training import state as train_state
from mri_unfold.training.config import load_protocol
from mri_unfold.training.loop import Trainer, train

sys.path.insert(0, str(Path(__file__).parent))
from test_training import image_dir, micro_cfg  # noqa: E402,F401  (fixture + helper)


class Crash(RuntimeError):
    pass


def _records(run: Path, split: str) -> list[int]:
    return [r["step"] for r in map(json.loads, (run / "log.jsonl").read_text().splitlines())
            if r["split"] == split]


def test_a_second_process_on_the_same_run_folder_is_refused(image_dir, tmp_path):
    cfg = micro_cfg(image_dir, training__max_steps=1)
    first = Trainer(cfg, tmp_path / "r", progress=False)  # holds the folder
    with pytest.raises(UserError, match=rf"{tmp_path / 'r'}: another training process "
                                        rf"\(pid {os.getpid()}\) is using this run folder"):
        Trainer(cfg, tmp_path / "r", progress=False)
    first.run()  # releases it
    train(cfg, tmp_path / "r", resume=True)
    assert not (tmp_path / ".r.lock").exists()


def test_a_kill_after_validation_leaves_no_duplicate_and_no_debris(image_dir, tmp_path,
                                                                   monkeypatch, capsys):
    cfg = micro_cfg(image_dir, training__epochs=2)
    cfg["evaluation"].update(protocol="cs_ni", sets=[str(image_dir)], max_images=1)
    real_save, crashed = Trainer.save, []

    def save_or_die(self):
        if self.step == 4 and self.last_val_step == 4 and not crashed:  # validated, not saved
            crashed.append(True)
            (self.run_dir / ".last.state.pt.partial-killed.pt").write_bytes(b"torn")
            (self.run_dir / ".log.csv.h2dx4um9.csv").write_bytes(b"torn")  # older naming
            raise Crash
        real_save(self)

    monkeypatch.setattr(Trainer, "save", save_or_die)
    with pytest.raises(Crash):
        train(cfg, tmp_path / "r")
    assert _records(tmp_path / "r", "val") == [4]
    res = train(cfg, tmp_path / "r", resume=True)
    assert res["step"] == 8 and _records(tmp_path / "r", "val") == [4, 8]
    assert _records(tmp_path / "r", "train") == list(range(1, 9))
    assert [p.name for p in (tmp_path / "r").iterdir() if p.name.startswith(".")] == [MARKER]
    err = capsys.readouterr().err
    assert "removed .last.state.pt.partial-killed.pt, left by a killed run" in err
    assert "removed .log.csv.h2dx4um9.csv" in err


@pytest.mark.slow
def test_resume_rewrites_a_stale_last_checkpoint_from_the_state(image_dir, tmp_path, capsys):
    cfg = micro_cfg(image_dir, training__max_steps=2)
    train(cfg, tmp_path / "r")
    stale = tmp_path / "stale.safetensors"
    train(micro_cfg(image_dir, training__max_steps=1), tmp_path / "one")
    (tmp_path / "one" / "last.safetensors").replace(stale)
    stale.replace(tmp_path / "r" / "last.safetensors")  # as after a kill between the writes
    cfg["training"]["max_steps"] = 3
    trainer = Trainer(cfg, tmp_path / "r", resume=True, progress=False)
    assert "last.safetensors was at step 1, the training state at step 2: resuming from the " \
           "state" in capsys.readouterr().err
    assert ckpt.read_checkpoint_info(tmp_path / "r" / "last.safetensors")["step"] == 2
    trainer.run()
    assert ckpt.read_checkpoint_info(tmp_path / "r" / "last.safetensors")["step"] == 3


def test_resume_keeps_the_trained_settings_unless_overridden(tmp_path, capsys, shared):
    root = Path(__file__).resolve().parents[1]
    tiny = root / "protocols" / "tiny.toml"
    run = tmp_path / "run"
    assert main(["train", str(tiny), "--run-dir", str(run), "--override", "training.epochs=3",
                 "--override", "training.max_steps=2", "--no-progress"]) == 0
    assert load_protocol(run / "protocol.toml")["training"]["epochs"] == 3
    # resumed without repeating the override: the stored 3 epochs stay (the file says 2)
    assert main(["train", str(tiny), "--run-dir", str(run), "--resume",
                 "--override", "training.max_steps=3", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "resuming with the run's stored settings; the protocol file differs in " \
           "training.epochs" in err
    cfg = load_protocol(run / "protocol.toml")
    assert (cfg["training"]["epochs"], cfg["training"]["max_steps"]) == (3, 3)
    kept = sorted(p.name for p in run.glob("protocol.before-step-*.toml"))
    assert kept == ["protocol.before-step-2.toml"]
    assert load_protocol(run / kept[0])["training"]["max_steps"] == 2
    st = train_state.load_train_state(run / "last.state.pt")
    assert json.loads(st["protocol_json"])["training"]["epochs"] == 3


@pytest.mark.parametrize("value", ["inf", "nan", "-1e-3"])
def test_learning_rates_must_be_finite_and_positive(image_dir, value):
    with pytest.raises(UserError, match=rf"micro: training.lr must be a finite number > 0, "
                                        rf"got {value.lstrip('-') if value != '-1e-3' else '-0.001'}"):
        micro_cfg(image_dir, training__lr=float(value))


def test_checkpoints_follow_the_umask(image_dir, tmp_path):
    old = os.umask(0o022)
    try:
        train(micro_cfg(image_dir, training__max_steps=1), tmp_path / "r")
    finally:
        os.umask(old)
    for name in ("last.safetensors", "last.state.pt", "protocol.toml"):
        assert stat.S_IMODE((tmp_path / "r" / name).stat().st_mode) == 0o644, name
    assert torch.load(tmp_path / "r" / "last.state.pt", weights_only=True)["step"] == 1
