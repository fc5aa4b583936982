"""DDP on CPU: two gloo processes under torchrun train the same weights as one process with
the same global batch."""
from __future__ import annotations

import pytest

import os
import socket
import subprocess
import sys

import torch

from mri_unfold.training import state as train_state
from mri_unfold.training.config import to_toml
from mri_unfold.training.loop import train

from test_training import image_dir, micro_cfg  # noqa: F401  (fixture + helper)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_gloo_processes_match_single_process(image_dir, tmp_path):  # noqa: F811
    cfg = micro_cfg(image_dir, training__max_steps=3, training__checkpoint_every=0)
    single = train(cfg, tmp_path / "single")
    proto = tmp_path / "micro.toml"
    proto.write_text(to_toml(cfg))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2",
         f"--master-port={_free_port()}", "-m", "mri_unfold", "train", str(proto),
         "--run-dir", str(tmp_path / "ddp"), "--device", "cpu", "--no-progress"],
        capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "trained micro: step 3" in r.stdout
    assert r.stdout.count("trained micro") == 1  # only rank 0 reports
    a = train_state.load_train_state(tmp_path / "single" / "last.state.pt")
    b = train_state.load_train_state(tmp_path / "ddp" / "last.state.pt")
    assert b["step"] == single["step"] == 3
    for k in a["model"]:
        if k == "phases.0.step":
            # x(0) = Φ^T y is consistent with y (Φ Φ^T = I), so the first step size multiplies
            # Φ^T(Φ x(0) - y) = 0: its gradient is float noise, which Adam scales to ±lr
            assert (b["model"][k] - a["model"][k]).abs().max() <= 3 * cfg["training"]["lr"]
            continue
        torch.testing.assert_close(b["model"][k], a["model"][k], rtol=1e-5, atol=1e-6, msg=k)
    # rank 0 alone wrote the log: one record per step
    assert (tmp_path / "ddp" / "log.jsonl").read_text().count('"split": "train"') == 3
