"""The three worked examples of docs/architecture.md (an operator, a model, a data source),
extracted from the page as written, each checked on its own and then trained together from a
protocol and reloaded from the checkpoint."""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mri_unfold.checkpoints import load_checkpoint
from mri_unfold.data.sources import registry as source_registry
from mri_unfold.models import registry as model_registry
from mri_unfold.operators import registry as operator_registry
from mri_unfold.data.sources import detect_source
from mri_unfold.models import build
from mri_unfold.operators import (GaussianBlockCS, MultiCoilFourier, build_operator,
                                  check_operator, operator_kinds)
from mri_unfold.training.config import validate_protocol
from mri_unfold.training.loop import train

DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    """The example files written out from the page and imported once (they register); the
    registrations are removed afterwards so other tests see the built-in registries only."""
    blocks = re.findall(r"```python\n# file: (\S+)\n(.*?)```", DOC.read_text(), re.S)
    assert [name for name, _ in blocks] == ["example_pixel_sampling.py", "example_lgd.py",
                                            "example_npy_source.py"]
    folder = tmp_path_factory.mktemp("examples")
    mods = {}
    for name, code in blocks:
        path = folder / name
        path.write_text(code)
        mod_name = path.stem
        if mod_name not in sys.modules:
            spec = importlib.util.spec_from_file_location(mod_name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[mod_name] = module
            spec.loader.exec_module(module)
        mods[mod_name] = sys.modules[mod_name]
    yield mods
    source_registry._SOURCES.pop("npy_slices", None)
    operator_registry._REGISTRY.pop("pixel_sampling", None)
    model_registry._REGISTRY.pop("example_lgd", None)
    for name in mods:
        sys.modules.pop(name, None)


def test_the_operator_passes_the_contract(examples):
    mod = examples["example_pixel_sampling"]
    op = mod.PixelSampling(mod.random_pixel_mask((6, 5), 0.4, 0))
    report = check_operator(op)
    assert report.passed and max(report.errors.values()) < 1e-12
    assert "pixel_sampling" in operator_kinds()
    built = build_operator({"kind": "pixel_sampling", "ratio": 0.3, "seed": 1},
                           image_shape=(32, 32))
    assert built.mask.shape == (32, 32) and abs(built.mask.float().mean().item() - 0.3) < 0.05
    with pytest.raises(ValueError, match=r"PixelSampling: x of shape \(1, 1, 6, 4\) does not "
                                         r"match the domain \(N, 1, 6, 5\)"):
        op(torch.zeros(1, 1, 6, 4))


def test_the_model_runs_on_real_and_complex_operators(examples):
    g = torch.Generator().manual_seed(0)
    bcs = GaussianBlockCS(0.25, block_size=8, seed=0)
    real = build("example_lgd", num_steps=2, channels=4, image_channels=1, seed=0)
    x = real(bcs(torch.rand(2, 1, 16, 16, generator=g)), bcs)
    assert x.shape == (2, 1, 16, 16) and x.dtype == torch.float32
    maps = torch.randn(2, 3, 8, 8, dtype=torch.complex64, generator=g)
    mc = MultiCoilFourier(torch.rand(2, 8, 8, generator=g) < 0.5, maps)
    cplx = build("example_lgd", num_steps=2, channels=4, image_channels=2, seed=0)
    z, aux = cplx(mc(torch.randn(2, 1, 8, 8, dtype=torch.complex64, generator=g)), mc,
                  return_aux=True)
    assert z.shape == (2, 1, 8, 8) and z.dtype == torch.complex64 and len(aux["phases"]) == 2
    again = build("example_lgd", num_steps=2, channels=4, image_channels=1, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(real.parameters(), again.parameters()))
    with pytest.raises(ValueError, match="example_lgd has image_channels=1"):
        real(mc(torch.randn(2, 1, 8, 8, dtype=torch.complex64, generator=g)), mc)


@pytest.mark.slow
def test_the_three_train_together_and_reload(examples, tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "slices"
    data.mkdir()
    yy, xx = np.mgrid[0:32, 0:32] / 32.0
    for i in range(3):  # 3 files x 4 slices of smooth images
        stack = np.stack([0.5 + 0.4 * np.sin(2 * np.pi * (xx * (k + 1) + yy * rng.uniform(0, 2)))
                          for k in range(4)])
        np.save(data / f"s{i}.npy", stack.astype(np.float32))
    (data / "notes.txt").write_text("ignored: not a .npy file")
    assert detect_source(data / "s0.npy") == "npy_slices"
    assert detect_source(data / "notes.txt") is None
    raw = {"name": "examples", "seed": 0,
           "data": {"kind": "npy_slices", "train": str(data)},
           "operator": {"kind": "pixel_sampling", "ratio": 0.3, "seed": 0},
           "model": {"name": "example_lgd", "config": {"num_steps": 3, "channels": 8}},
           "training": {"epochs": 6, "batch_size": 4, "lr": 3e-3, "progress": False}}
    res = train(validate_protocol(raw), tmp_path / "run", device="cpu")
    assert res["step"] == 18  # 12 slices, batch 4, 6 epochs
    assert np.mean(res["losses"][-3:]) < 0.7 * np.mean(res["losses"][:3]), res["losses"]
    ck = load_checkpoint(tmp_path / "run" / "last.safetensors")
    assert ck.arch == "example_lgd" and type(ck.op).__name__ == "PixelSampling"
    assert abs(float(ck.op.mask.float().mean()) - 0.3) < 0.05
