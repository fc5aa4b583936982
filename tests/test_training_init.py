"""training.init_from: a run warm-started from another run's checkpoint (fine-tuning)."""
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
