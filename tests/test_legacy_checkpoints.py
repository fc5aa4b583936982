"""Checkpoints written before the core redesign still load and give the same outputs; newer
format versions are refused with a message naming both versions."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from mri_unfold.checkpoints import load_checkpoint
from mri_unfold.cli.demo import bundled_weights_dir
from mri_unfold.errors import UserError
from mri_unfold.models import available_models
from mri_unfold.operators import KSpaceOperatorFactory, MultiCoilFourier, SingleCoilFourier

LEGACY = Path(__file__).parent / "data" / "legacy_v1"
CASES = sorted(json.loads((LEGACY / "cases.json").read_text()))


def _operator(name: str, ck):
    if not name.startswith("fastmri"):
        return ck.op
    t = torch.load(LEGACY / "fastmri_ista_net_plus.op.pt", weights_only=True)  # both cases
    mask, maps = t["mask"], t["maps"]
    h, w = mask.shape
    if name == "fastmri_ista_net_plus":
        return MultiCoilFourier(mask[None, None].expand(2, 1, h, w),
                                maps[None].expand(2, maps.shape[0], h, w))
    return SingleCoilFourier(mask[None, None].expand(1, 1, h, w))


@pytest.mark.parametrize("name", CASES)
def test_legacy_checkpoint_reproduces_its_output(name):
    ck = load_checkpoint(LEGACY / f"{name}.safetensors")
    io = torch.load(LEGACY / f"{name}.io.pt", weights_only=True)
    with torch.no_grad():
        x = ck.model(io["y"], _operator(name, ck))
    assert x.dtype == io["x"].dtype and x.shape == io["x"].shape
    torch.testing.assert_close(x, io["x"], rtol=1e-6, atol=1e-6)
    assert isinstance(ck.model_config["image_channels"], int)
    if name.startswith("fastmri"):
        assert isinstance(ck.op, KSpaceOperatorFactory) and ck.op.complex_domain
        assert ck.complex_model and ck.operator_cfg["kind"] == "fastmri"


def test_bundled_weights_load():
    files = sorted(bundled_weights_dir().glob("*.safetensors"))
    assert files, "no bundled weights"
    for f in files:
        ck = load_checkpoint(f)
        assert ck.arch in available_models()
        if isinstance(ck.op, SingleCoilFourier):  # real-valued CS-MRI (the demo's case)
            assert ck.op.real_input and not ck.complex_model
        else:  # trained on k-space: complex images, the operator comes with the data
            assert isinstance(ck.op, KSpaceOperatorFactory) and ck.complex_model


def test_newer_format_version_is_refused(tmp_path):
    src = LEGACY / "single_coil_real_fista_net.safetensors"
    with safe_open(str(src), "pt") as f:
        meta = dict(f.metadata())
    newer = tmp_path / "newer.safetensors"
    save_file(load_file(str(src)), str(newer), metadata={**meta, "version": "7"})
    with pytest.raises(UserError, match=r"newer.safetensors: checkpoint format version '7' is "
                                        r"newer than this mri-unfold reads \(version 1\)"):
        load_checkpoint(newer)
    no_arch = tmp_path / "no_arch.safetensors"
    save_file(load_file(str(src)), str(no_arch),
              metadata={k: v for k, v in meta.items() if k != "arch"})
    with pytest.raises(UserError, match=r"no_arch.safetensors: checkpoint metadata has no "
                                        r"'arch'"):
        load_checkpoint(no_arch)
