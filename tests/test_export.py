"""Exported checkpoints: same tensors, portable metadata."""
from __future__ import annotations

import json

import torch

from mri_unfold.models import build
from mri_unfold.operators import GaussianBlockCS
from mri_unfold.checkpoints import load_checkpoint, read_checkpoint_file, save_checkpoint
from mri_unfold.training.export import export_checkpoint


def test_export_keeps_tensors_and_rewrites_shared_root(tmp_path, shared):
    model = build("ista_net_plus", num_phases=2, channels=4, image_channels=1, seed=0)
    op = GaussianBlockCS(0.25, block_size=8, seed=1)
    op_cfg = {"kind": "block_cs", "ratio": 0.25, "block_size": 8, "seed": 1, "phi": "gaussian",
              "qinit": "none", "matrix_dir": str(shared / "reference")}
    src = save_checkpoint(tmp_path / "a.safetensors", model, op, op_cfg,
                          protocol={"data": {"train": str(shared / "data" / "x")}})
    dst = export_checkpoint(src, tmp_path / "b.safetensors", {"note": "hello"})
    t_a, m_a = read_checkpoint_file(src)
    t_b, m_b = read_checkpoint_file(dst)
    assert t_a.keys() == t_b.keys()
    assert all(torch.equal(t_a[k], t_b[k]) for k in t_a)
    assert str(shared) not in json.dumps(m_b)
    assert json.loads(m_b["protocol"])["data"]["train"] == "${shared}/data/x"
    assert json.loads(m_b["operator"])["matrix_dir"] == "${shared}/reference"
    info = json.loads(m_b["info"])
    assert info["note"] == "hello" and info["exported_from"] == "a.safetensors"
    ck = load_checkpoint(dst)
    y = op(torch.rand(1, 1, 16, 16))
    with torch.no_grad():
        assert torch.equal(ck.model(y, ck.op), model.eval()(y, op))
