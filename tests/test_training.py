"""Training engine: resume equivalence, precision / gradient checkpointing agreement,
checkpoint round trip, schedules, data order, logs and plots (small synthetic data)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from mri_unfold.outputs import MARKER
from mri_unfold.errors import UserError
from mri_unfold import checkpoints as ckpt
from mri_unfold.training import state as train_state
from mri_unfold.training.components import lr_factor
from mri_unfold.training.config import validate_protocol
from mri_unfold.training.data import epoch_batches
from mri_unfold.training.loop import Trainer, train


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    """Eight 40x40 gray PNGs with smooth structure (deterministic)."""
    d = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:40, 0:40] / 40.0
    for i in range(8):
        a = 0.5 + 0.3 * np.sin(2 * np.pi * (xx * (i + 1) + yy * rng.uniform(0, 2)))
        a += 0.05 * rng.standard_normal((40, 40))
        Image.fromarray(np.clip(a * 255, 0, 255).astype(np.uint8)).save(d / f"im{i}.png")
    return d


def micro_cfg(image_dir, **over):
    """A very small protocol: 16 patches of 33x33, batch 4, ISTA-Net+ with 2 phases."""
    raw = {
        "name": "micro", "seed": 3,
        "data": {"kind": "patches", "train": str(image_dir), "patch_size": 33,
                 "patches_per_image": 2},
        "operator": {"kind": "block_cs", "ratio": 0.1, "phi": "gaussian", "seed": 1},
        "model": {"name": "ista_net_plus", "seed": 0,
                  "config": {"num_phases": 2, "channels": 4, "init": "adjoint"}},
        "training": {"epochs": 2, "batch_size": 4, "lr": 1e-3, "loss": "mse_sym",
                     "progress": False, "checkpoint_every": 1},
    }
    for k, v in over.items():
        sec, key = k.split("__")
        raw[sec][key] = v
        if v is None:  # a key the data kind does not have
            del raw[sec][key]
    return validate_protocol(raw, source="micro")


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class Crash(RuntimeError):
    pass


@pytest.mark.slow
def test_resume_continues_the_identical_trajectory(image_dir, tmp_path):
    full = train(micro_cfg(image_dir, training__max_steps=6), tmp_path / "full")
    # 6 steps = 1.5 epochs: the cut at step 3 is mid-epoch, the resume crosses an epoch
    ref = train_state.load_train_state(tmp_path / "full" / "last.state.pt")["model"]

    def crash_at_4(tr):
        if tr.step == 4:  # step 4 happened but was not checkpointed (checkpoint_every=3)
            raise Crash

    cut = micro_cfg(image_dir, training__max_steps=6, training__checkpoint_every=3)
    with pytest.raises(Crash):
        train(cut, tmp_path / "cut", on_step=crash_at_4)
    st = train_state.load_train_state(tmp_path / "cut" / "last.state.pt")
    assert (st["step"], st["epoch"], st["batch_in_epoch"]) == (3, 0, 3)
    res = train(cut, tmp_path / "cut", resume=True)  # fresh objects, same process
    assert res["step"] == 6
    got = train_state.load_train_state(tmp_path / "cut" / "last.state.pt")["model"]
    assert got.keys() == ref.keys()
    for k in ref:
        torch.testing.assert_close(got[k], ref[k], rtol=0, atol=1e-7, msg=k)
    # the log was cut back to step 3 and continued: steps 1..6 exactly once
    steps = [r["step"] for r in map(json.loads, (tmp_path / "cut" / "log.jsonl").read_text()
                                     .splitlines()) if r["split"] == "train"]
    assert steps == [1, 2, 3, 4, 5, 6]
    assert len(full["losses"]) == 6 and res["losses"][-1] == pytest.approx(full["losses"][-1],
                                                                           abs=1e-7)


def test_run_dir_in_use_and_resume_without_state(image_dir, tmp_path):
    cfg = micro_cfg(image_dir, training__max_steps=1)
    train(cfg, tmp_path / "r")
    with pytest.raises(UserError, match="already holds a training run; pass --resume"):
        train(cfg, tmp_path / "r")
    with pytest.raises(FileNotFoundError, match="no training state to resume from"):
        train(cfg, tmp_path / "empty", resume=True)


def _one_step(image_dir, tmp_path, name, **over):
    tr = Trainer(micro_cfg(image_dir, **over), tmp_path / name, progress=False)
    batch = torch.stack([tr.dataset[i] for i in range(4)])
    before = _weights(tr.model)
    loss = tr.train_step(batch)
    grads = torch.cat([p.grad.flatten() for p in tr.model.parameters()])
    return loss, grads, before, _weights(tr.model)


def test_bf16_autocast_agrees_with_fp32_for_one_step(image_dir, tmp_path):
    l32, g32, w0, _ = _one_step(image_dir, tmp_path, "a")
    l16, g16, w0b, _ = _one_step(image_dir, tmp_path, "b", training__precision="bf16")
    for k in w0:
        assert torch.equal(w0[k], w0b[k])  # same seeded initialisation
    assert l16 == pytest.approx(l32, rel=0.05)
    cos = torch.nn.functional.cosine_similarity(g32, g16, dim=0)
    assert cos > 0.98


def test_grad_checkpointing_agrees_with_plain_path(image_dir, tmp_path):
    l0, g0, _, w1 = _one_step(image_dir, tmp_path, "a")
    l1, g1, _, w2 = _one_step(image_dir, tmp_path, "b", training__grad_checkpoint=True)
    assert l1 == pytest.approx(l0, rel=1e-6)
    torch.testing.assert_close(g1, g0, rtol=1e-5, atol=1e-7)
    for k in w1:
        torch.testing.assert_close(w2[k], w1[k], rtol=1e-5, atol=1e-6)


def test_enable_grad_checkpoint_uses_the_models_switch():
    from mri_unfold.models import build
    from mri_unfold.training.components import enable_grad_checkpoint

    for arch in ("ista_net", "ista_net_plus", "fista_net", "madun"):
        model = build(arch, seed=0)
        assert model.grad_checkpoint is False
        assert enable_grad_checkpoint(model) == "native" and model.grad_checkpoint is True
    with pytest.raises(UserError, match="training.grad_checkpoint: Linear has no per-stage "
                                        "gradient checkpointing"):
        enable_grad_checkpoint(torch.nn.Linear(2, 2))


def test_grad_checkpointing_madun_native_switch(image_dir, tmp_path):
    over = dict(model__name="madun", model__config={"num_stages": 2, "channels": 4},
                training__loss="l1")
    l0, g0, _, _ = _one_step(image_dir, tmp_path, "a", **over)
    l1, g1, _, _ = _one_step(image_dir, tmp_path, "b", training__grad_checkpoint=True, **over)
    assert l1 == pytest.approx(l0, rel=1e-6)
    torch.testing.assert_close(g1, g0, rtol=1e-5, atol=1e-7)


def test_fp16_on_cpu_is_a_clear_error(image_dir, tmp_path):
    with pytest.raises(UserError, match="fp16' needs CUDA; use 'bf16' on CPU"):
        _one_step(image_dir, tmp_path, "a", training__precision="fp16")


def test_checkpoint_round_trip_rebuilds_model_and_operator(image_dir, tmp_path):
    train(micro_cfg(image_dir, training__max_steps=2), tmp_path / "r")
    st = train_state.load_train_state(tmp_path / "r" / "last.state.pt")
    c = ckpt.load_checkpoint(tmp_path / "r" / "last.safetensors")
    assert c.arch == "ista_net_plus" and c.model_config["num_phases"] == 2
    assert c.info["step"] == 2 and c.protocol["name"] == "micro"
    for k, v in c.model.state_dict().items():
        assert torch.equal(v, st["model"][k])
    assert c.op.phi.shape == (109, 1089)
    assert torch.equal(c.op.phi, st["operator"]["phi"])
    x = torch.rand(1, 1, 33, 33)
    with torch.no_grad():
        assert c.model(c.op(x), c.op).shape == (1, 1, 33, 33)
    with pytest.raises(UserError, match="checkpoint is for architecture 'ista_net_plus', "
                                        "expected 'madun'"):
        ckpt.load_checkpoint(tmp_path / "r" / "last.safetensors", expect_arch="madun")
    # training state is tensors/plain types only: loads with weights_only=True
    torch.load(tmp_path / "r" / "last.state.pt", weights_only=True)
    # no temp files left behind
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == [
        MARKER, "last.safetensors", "last.state.pt", "log.csv", "log.jsonl", "protocol.toml"]


def test_not_a_checkpoint(tmp_path):
    p = tmp_path / "x.safetensors"
    p.write_bytes(b"garbage")
    with pytest.raises(UserError, match="not an mri-unfold checkpoint"):
        ckpt.load_checkpoint(p)


def test_schedules():
    t = {"gamma": 0.5, "step_size": 2, "milestones": [1, 3], "lr": 1.0, "min_lr": 0.1}
    assert [lr_factor("step", t, 6)(e) for e in range(5)] == [1, 1, 0.5, 0.5, 0.25]
    assert [lr_factor("multistep", t, 6)(e) for e in range(5)] == [1, 0.5, 0.5, 0.25, 0.25]
    cos = lr_factor("cosine", t, 4)
    assert [round(cos(e), 6) for e in range(5)] == [1.0, 0.868198, 0.55, 0.231802, 0.1]
    assert lr_factor("constant", t, 4)(3) == 1.0


def test_ddp_batches_partition_the_global_batch(image_dir):
    from natural_cs.datasets import PatchDataset

    ds = PatchDataset(image_dir, patch_size=33, patches_per_image=2, seed=0)
    single = list(epoch_batches(ds, 1, 7, 4))
    r0 = list(epoch_batches(ds, 1, 7, 2, rank=0, world=2))
    r1 = list(epoch_batches(ds, 1, 7, 2, rank=1, world=2))
    assert [sorted(a + b) for a, b in zip(r0, r1)] == [sorted(s) for s in single]
    assert list(epoch_batches(ds, 1, 7, 4, skip=2)) == single[2:]
    assert list(epoch_batches(ds, 2, 7, 4)) != single  # new order each epoch


def test_model_seed_does_not_touch_global_rng(image_dir, tmp_path):
    state = torch.get_rng_state()
    Trainer(micro_cfg(image_dir), tmp_path / "a", progress=False)
    assert torch.equal(torch.get_rng_state(), state)


def test_learned_phi_is_trained_and_stored(image_dir, tmp_path):
    cfg = micro_cfg(image_dir, operator__kind="learned_block_cs", training__max_steps=2)
    tr = Trainer(cfg, tmp_path / "r", progress=False)
    phi0 = tr.task.op.phi.detach().clone()
    assert any(p is tr.task.op.phi for p in tr.params)
    tr.run()
    phi1 = tr.task.op.phi.detach()
    assert (phi1 - phi0).abs().max() > 1e-5  # Φ moved
    c = ckpt.load_checkpoint(tmp_path / "r" / "last.safetensors")
    assert type(c.op).__name__ == "LearnedBlockCS"
    assert torch.equal(c.op.phi.detach(), phi1)


def test_simulated_single_coil_task_on_an_image_folder(image_dir, tmp_path):
    cfg = micro_cfg(image_dir, data__kind="images", data__patch_size=None,
                    data__patches_per_image=None, operator__kind="single_coil",
                    operator__mask="radial", operator__ratio=0.3, training__max_steps=2,
                    model__config={"num_phases": 2, "channels": 4, "init": "adjoint"})
    tr = Trainer(cfg, tmp_path / "r", progress=False)
    assert tr.task.op.mask.shape[-2:] == (40, 40)
    y, op, target = tr.task.prepare(torch.stack([tr.dataset[i] for i in range(2)]))
    assert target.shape == (2, 1, 40, 40) and not op.complex_domain and y.is_complex()
    assert abs(float(op.mask.float().mean()) - 0.3) < 0.05
    tr.run()
    c = ckpt.load_checkpoint(tmp_path / "r" / "last.safetensors")
    assert torch.equal(c.op.mask, tr.task.op.mask)
    x = torch.rand(1, 1, 40, 40)
    torch.testing.assert_close(c.op.normal(x), tr.task.op.normal(x))


def test_finetune_stage_runs_after_the_main_stage(image_dir, tmp_path):
    cfg = micro_cfg(image_dir, training__epochs=1, training__checkpoint_every=0,
                    training__finetune={"epochs": 1, "patch_size": 33, "lr": 5e-4,
                                        "batch_size": 8})
    res = train(cfg, tmp_path / "r")
    assert res["step"] == 4 + 2 and res["epoch"] == 2  # 16 patches: 4 batches of 4, 2 of 8
    st = train_state.load_train_state(tmp_path / "r" / "last.state.pt")
    assert (st["stage"], st["epoch"]) == (1, 1) and st["optimizer"]["param_groups"][0]["lr"] == 5e-4
    lrs = [json.loads(ln)["lr"] for ln in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
    assert lrs == [1e-3] * 4 + [5e-4] * 2


def test_resume_single_coil_with_a_mask_file(image_dir, tmp_path):
    m = np.zeros((40, 40), np.float32)
    m[0, :] = m[:, 0] = m[::3, ::2] = 1  # unshifted layout: DC at [0, 0]
    np.save(tmp_path / "mask.npy", m)
    cfg = micro_cfg(image_dir, data__kind="images", data__patch_size=None,
                    data__patches_per_image=None, operator__kind="single_coil",
                    operator__mask=str(tmp_path / "mask.npy"), training__max_steps=1,
                    model__config={"num_phases": 1, "channels": 4, "init": "adjoint"})
    a = Trainer(cfg, tmp_path / "r", progress=False)
    a.run()
    cfg["training"]["max_steps"] = 2
    b = Trainer(cfg, tmp_path / "r", progress=False, resume=True)
    assert torch.equal(b.task.op.mask, a.task.op.mask) and b.task.op.layout == a.task.op.layout
    x = torch.rand(1, 1, 40, 40)
    torch.testing.assert_close(b.task.op.normal(x), a.task.op.normal(x))
