"""The training switches of issue 14: ``init_from`` (warm start), ``channels_last``,
``optimizer`` (foreach / fused Adam), ``compile_mode``, ``max_seconds``."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from mri_unfold import checkpoints as ckpt
from mri_unfold.errors import UserError
from mri_unfold.training.config import validate_protocol
from mri_unfold.training.loop import Trainer, train


@pytest.fixture(scope="module")
def slices(tmp_path_factory):
    """Six 24x24 gray PNG slices (seeded noise over a gradient)."""
    d = tmp_path_factory.mktemp("slices")
    rng = np.random.default_rng(11)
    ramp = np.linspace(0.2, 0.8, 24)[None, :]
    for i in range(6):
        a = np.clip(ramp + 0.1 * rng.standard_normal((24, 24)), 0, 1)
        Image.fromarray((a * 255).astype(np.uint8)).save(d / f"s{i}.png")
    return d


def _cfg(folder, **training):
    return validate_protocol({
        "name": "warm", "seed": 1,
        "data": {"kind": "images", "train": str(folder)},
        "operator": {"kind": "single_coil", "mask": "radial", "ratio": 0.3, "seed": 2},
        "model": {"name": "ista_net_plus", "seed": 4,
                  "config": {"num_phases": 2, "channels": 4}},
        "training": {"epochs": 1, "batch_size": 3, "lr": 1e-3, "loss": "mse_sym",
                     "progress": False, **training},
    }, source="warm")


def test_init_from_copies_the_weights_and_only_the_weights(slices, tmp_path):
    train(_cfg(slices), tmp_path / "a")
    src = ckpt.load_checkpoint(tmp_path / "a" / "last.safetensors")
    fresh = Trainer(_cfg(slices), tmp_path / "fresh")
    warm = Trainer(_cfg(slices, init_from=str(tmp_path / "a" / "last.safetensors")),
                   tmp_path / "b")
    try:
        a, f, w = src.model.state_dict(), fresh.model.state_dict(), warm.model.state_dict()
        assert all(torch.equal(a[k], w[k]) for k in a)           # the trained weights
        assert any(not torch.equal(a[k], f[k]) for k in a)       # not the seeded init
        assert warm.step == 0 and warm.opt.state == {}           # a new run otherwise
    finally:
        fresh.folder.unlock()
        warm.folder.unlock()


def test_init_from_another_configuration_is_refused(slices, tmp_path):
    train(_cfg(slices), tmp_path / "a")
    cfg = _cfg(slices, init_from=str(tmp_path / "a" / "last.safetensors"))
    cfg["model"]["config"]["channels"] = 8
    with pytest.raises(UserError, match=r"training.init_from: .*last.safetensors holds "
                                        r"'ista_net_plus' .*'channels': 4.*the protocol builds"):
        Trainer(cfg, tmp_path / "b")
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        Trainer(_cfg(slices, init_from=str(tmp_path / "nope.safetensors")), tmp_path / "c")


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("switches", [{"channels_last": True}, {"optimizer": "adam_foreach"},
                                      {"optimizer": "adam_fused"}])
def test_speed_switches_train_the_same_weights(slices, tmp_path, switches):
    ref = Trainer(_cfg(slices, max_steps=2), tmp_path / "ref")
    ref.run()
    fast = Trainer(_cfg(slices, max_steps=2, **switches), tmp_path / "fast")
    if switches.get("channels_last"):
        w = fast.model.phases[0].conv_f1
        assert w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
    fast.run()
    a, b = _weights(ref.model), _weights(fast.model)
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-6
    loaded = ckpt.load_checkpoint(tmp_path / "fast" / "last.safetensors").model.state_dict()
    assert all(torch.equal(loaded[k], b[k]) for k in b)


def test_max_seconds_stops_and_resumes(slices, tmp_path):
    summary = train(_cfg(slices, max_seconds=1e-6), tmp_path / "r")
    assert summary["step"] == 1                            # one step, then the budget is spent
    st = torch.load(tmp_path / "r" / "last.state.pt", weights_only=True)
    assert int(st["step"]) == 1
    again = train(_cfg(slices, max_seconds=0.0), tmp_path / "r", resume=True)
    assert again["step"] == 2                              # the epoch's other batch


def test_bad_switch_values_are_refused(slices):
    with pytest.raises(UserError, match=r"training.compile_mode = 'fast' is not one of default, "
                                        r"reduce-overhead, max-autotune"):
        _cfg(slices, compile_mode="fast")
    with pytest.raises(UserError, match=r"training.optimizer = 'sgd' is not one of adam, "
                                        r"adam_foreach, adam_fused"):
        _cfg(slices, optimizer="sgd")
    with pytest.raises(UserError, match=r"training.max_seconds must be a finite number >= 0"):
        _cfg(slices, max_seconds=-1.0)
