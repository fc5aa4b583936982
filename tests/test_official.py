"""Official-checkpoint import: golden vectors of the authors' code, released files, errors."""
from __future__ import annotations

import pytest
import torch

from mri_unfold.errors import UserError
from mri_unfold.models import build
from mri_unfold.models.official import (check_shapes, convert_official_state_dict, infer_arch, load_official,
                                        official_task)
from mri_unfold.operators import GaussianBlockCS
from mri_unfold.operators.fourier import SingleCoilFourier

SEED = "seed20211020"
RELEASED = "reference/ista_net_pytorch/model"


def _golden(golden_dir, name):
    return torch.load(golden_dir / f"{name}_{SEED}.pt", map_location="cpu", weights_only=True)


def _model_from_golden(g, **config):
    sd, cfg = convert_official_state_dict(g["state_dict"])
    model = build(infer_arch(g["state_dict"]), **cfg, **config)
    model.load_state_dict(sd)
    return model.eval(), cfg


@pytest.mark.parametrize("name,arch,sym_ch", [("ista_net_cs", "ista_net", 1),
                                              ("ista_net_plus_cs", "ista_net_plus", 32)])
def test_golden_block_cs(golden_dir, name, arch, sym_ch):
    g = _golden(golden_dir, name)
    assert infer_arch(g["state_dict"]) == arch
    model, cfg = _model_from_golden(g, blockwise=True, init="linear")
    assert cfg == dict(num_phases=g["layers"], channels=32, image_channels=1)
    op = GaussianBlockCS.from_matrix(g["Phi"], qinit=g["Qinit"])
    n = g["x_blocks"].shape[0]
    x = g["x_blocks"].reshape(n, 1, 33, 33)
    y = op(x)
    torch.testing.assert_close(y[:, :, 0, 0], g["y"], rtol=0, atol=1e-6)
    with torch.no_grad():
        out, aux = model(y, op, return_aux=True)
    assert (out.reshape(n, 1089) - g["x_out"]).abs().max() <= 1e-5
    assert len(aux["sym"]) == len(g["layers_sym"]) == g["layers"]
    for ours, ref in zip(aux["sym"], g["layers_sym"]):
        assert ours.shape == ref.shape == (n, sym_ch, 33, 33)
        assert (ours - ref).abs().max() <= 1e-5


def test_golden_mri(golden_dir):
    g = _golden(golden_dir, "ista_net_plus_mri")
    model, _ = _model_from_golden(g)  # defaults: whole image, init="adjoint"
    op = SingleCoilFourier(g["mask"], layout="unshifted", real_input=True)
    y = op(g["image"])
    assert (op.adjoint(y) - g["PhiTb"]).abs().max() <= 1e-6
    with torch.no_grad():
        out, aux = model(y, op, return_aux=True)
    assert out.dtype == torch.float32 and out.shape == g["x_out"].shape == (1, 1, 64, 48)
    assert (out - g["x_out"]).abs().max() <= 1e-5
    for ours, ref in zip(aux["sym"], g["layers_sym"]):
        assert ours.shape == ref.shape == (1, 32, 64, 48)
        assert (ours - ref).abs().max() <= 1e-5


def test_load_official_released_configs(shared):
    m = load_official(shared / RELEASED / "CS_ISTA_Net_plus_layer_9_group_1_ratio_25_lr_0.0001"
                      / "net_params_200.pkl")
    assert m.arch == "ista_net_plus" and not m.training
    assert {k: m.config[k] for k in ("num_phases", "channels", "image_channels", "blockwise", "init")} \
        == dict(num_phases=9, channels=32, image_channels=1, blockwise=True, init="linear")
    m = load_official(shared / RELEASED / "CS_ISTA_Net_layer_9_group_1_ratio_10_lr_0.0001"
                      / "net_params_200.pkl")
    assert m.arch == "ista_net" and m.config["blockwise"] and len(m.phases) == 9
    path = shared / RELEASED / "MRI_CS_ISTA_Net_plus_layer_9_group_1_ratio_20" / "net_params_200.pkl"
    assert official_task(path) == "mri"
    m = load_official(path)
    assert (m.config["blockwise"], m.config["init"]) == (False, "adjoint")
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert torch.equal(m.phases[4].conv_g2, raw["module.fcs.4.conv2_backward"])
    assert m.phases[8].step.item() == raw["module.fcs.8.lambda_step"].item()
    m = load_official(path, task="cs")  # override the name-based guess
    assert (m.config["blockwise"], m.config["init"]) == (True, "linear")


def test_load_official_errors(shared, tmp_path):
    path = shared / RELEASED / "CS_ISTA_Net_layer_9_group_1_ratio_10_lr_0.0001" / "net_params_200.pkl"
    with pytest.raises(ValueError, match=r"shape mismatch for 'phases.0.conv_f1': checkpoint "
                                         r"\(32, 1, 3, 3\), model \(16, 1, 3, 3\)"):
        load_official(path, channels=16)
    plus = shared / RELEASED / "CS_ISTA_Net_plus_layer_9_group_1_ratio_10_lr_0.0001" / "net_params_200.pkl"
    with pytest.raises(ValueError, match=r"net_params_200.pkl: unexpected checkpoint key "
                                         r"'phases.0.conv_d' for this model"):
        load_official(plus, arch="ista_net")
    ours, _ = convert_official_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    with pytest.raises(ValueError, match="ckpt: checkpoint lacks parameter 'phases.1.momentum'"):
        check_shapes(build("fista_net", num_phases=9, image_channels=1), ours, "ckpt")
    with pytest.raises(ValueError, match="arch must be one of"):
        convert_official_state_dict(torch.load(path, map_location="cpu", weights_only=True), arch="fista_net")
    with pytest.raises(FileNotFoundError, match="nope.pkl: no such checkpoint file"):
        load_official(tmp_path / "nope.pkl")
    bad = tmp_path / "garbage.pkl"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="garbage.pkl: not a readable PyTorch state dict"):
        load_official(bad)
    with pytest.raises(ValueError, match="cannot infer the architecture"):
        infer_arch({"module.foo": torch.zeros(1)})


def test_load_official_dispatches_madun(golden_dir, tmp_path):
    g = _golden(golden_dir, "madun_cs")
    path = tmp_path / "net_params_1.pkl"
    torch.save(g["state_dict"], path)
    assert infer_arch(g["state_dict"]) == "madun"
    model = load_official(path)
    assert model.arch == "madun" and not model.training
    assert model.config["num_stages"] == g["layers"] and model.config["channels"] == g["channels"]
