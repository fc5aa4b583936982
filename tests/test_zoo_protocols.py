"""The protocols of issue 14: the zoo's training protocols (our own seeded masks only), the
GPU protocols of the papers' full MADUN schedules and the MADUN Table 1 protocol."""
from __future__ import annotations

from pathlib import Path

import pytest

from mri_unfold.training.config import load_protocol

ROOT = Path(__file__).resolve().parents[1] / "protocols"
ZOO = sorted((ROOT / "zoo").glob("*.toml"))


def test_there_are_zoo_and_gpu_protocols():
    names = {p.stem for p in ZOO}
    assert {"ista_net_plus_radial20", "madun_radial20", "ttq_ista_net_plus_radial20",
            "complex_ista_net_plus_1coil_4x", "complex_ista_net_plus_8coil_4x",
            "complex_ista_net_plus_1coil_8x", "complex_ista_net_plus_8coil_8x"} <= names
    assert {p.stem for p in (ROOT / "gpu").glob("*.toml")} == {"madun_cs_25x32",
                                                              "madun_mri_radial20"}


@pytest.mark.parametrize("path", ZOO, ids=lambda p: p.stem)
def test_zoo_protocols_train_with_our_own_seeded_masks(path):
    cfg = load_protocol(path)
    data, op = cfg["data"], cfg["operator"]
    if data["kind"] == "simulated_kspace":      # masks drawn per image from mask_seed
        assert op["kind"] == "kspace" and data["mask"] == "random"
        assert cfg["evaluation"]["protocol"] == "simulated_kspace"
        assert cfg["model"]["config"]["image_channels"] == 2
    else:                                      # a make_mask kind, never a mask file
        assert op["kind"] == "single_coil" and op["mask"] == "radial" and op["real_input"]
        assert cfg["evaluation"]["protocol"] == "mri"
    assert "chest_train" in data["train"] and "brain_test" in cfg["evaluation"]["sets"][0]
    init = cfg["training"]["init_from"]
    assert init == "" or ("/runs/zoo/" in init and init.endswith(".safetensors"))


def test_gpu_protocols_hold_the_papers_schedules():
    cs = load_protocol(ROOT / "gpu" / "madun_cs_25x32.toml")
    mri = load_protocol(ROOT / "gpu" / "madun_mri_radial20.toml")
    for cfg in (cs, mri):
        assert cfg["model"]["name"] == "madun"
        assert cfg["model"]["config"] == {"num_stages": 25, "channels": 32, "init": "adjoint"}
        assert cfg["training"]["lr"] == 1e-4 and cfg["training"]["loss"] == "l1"
        assert cfg["training"]["precision"] == "bf16" and cfg["training"]["compile"]
    assert (cs["training"]["epochs"], cs["training"]["batch_size"]) == (400, 64)
    assert cs["training"]["finetune"] == {"epochs": 10, "patch_size": 99, "lr": 0.0,
                                          "batch_size": 0}
    assert mri["training"]["epochs"] == 400 and mri["operator"]["mask"] == "radial"


@pytest.mark.parametrize("row", ["madun_pmm", "madun_clm", "madun_hsm_conv3", "madun_hsm_rb1",
                                 "madun_hsm", "madun"])
def test_table1_protocol_runs_every_row(row):
    cfg = load_protocol(ROOT / "madun_table1.toml", [f"model.name={row}"])
    assert cfg["model"]["name"] == row and cfg["operator"]["ratio"] == 0.10
