"""Protocol files: schema validation, unknown keys at every level, variables, overrides."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from mri_unfold.errors import UserError
from mri_unfold.training.config import (SCHEMA, load_protocol, parse_override, to_toml,
                                        validate_protocol)

PROTOCOLS = Path(__file__).resolve().parents[1] / "protocols"
MIN = {"data": {"train": "d"}, "model": {"name": "ista_net"}}


@pytest.mark.parametrize("name", ["tiny", "ista_net_cs", "ista_net_plus_cs", "madun_cs",
                                  "ista_net_plus_mri"])
def test_shipped_protocols_load(name, shared):
    cfg = load_protocol(PROTOCOLS / f"{name}.toml")
    assert cfg["name"] == name
    assert cfg["data"]["train"].startswith(str(shared))
    assert Path(cfg["data"]["train"]).is_dir()
    for s in cfg["evaluation"]["sets"]:
        assert Path(s).is_dir()


def test_paper_setups(shared):
    ip = load_protocol(PROTOCOLS / "ista_net_plus_cs.toml")
    assert (ip["model"]["name"], ip["model"]["config"]["num_phases"]) == ("ista_net_plus", 9)
    assert (ip["training"]["epochs"], ip["training"]["lr"], ip["training"]["loss"]) == \
        (200, 1e-4, "mse_sym")
    m = load_protocol(PROTOCOLS / "madun_cs.toml")
    assert m["model"]["config"]["num_stages"] == 25
    t = m["training"]
    assert (t["epochs"], t["batch_size"], t["lr"], t["loss"]) == (400, 64, 1e-4, "l1")
    assert (t["finetune"]["epochs"], t["finetune"]["patch_size"]) == (10, 99)


@pytest.mark.parametrize("raw, key", [
    ({"bogus": 1}, "'bogus' in top level"),
    ({"data": {"train": "d", "patchsize": 3}}, "'data.patchsize' in data"),
    ({"training": {"finetune": {"epoch": 3}}}, "'training.finetune.epoch' in training.finetune"),
    ({"evaluation": {"set": []}}, "'evaluation.set' in evaluation"),
])
def test_unknown_keys_name_the_key_and_the_valid_ones(raw, key):
    full = {**MIN, **raw}
    if "data" in raw:
        full["data"] = raw["data"]
    with pytest.raises(UserError) as e:
        validate_protocol(full, source="p.toml")
    msg = str(e.value)
    assert f"p.toml: unknown key {key}; valid keys: " in msg
    section = key.split(" in ")[1]
    schema = SCHEMA if section == "top level" else SCHEMA[section.split(".")[0]]
    if section == "training.finetune":
        schema = SCHEMA["training"]["finetune"]
    assert msg.endswith(", ".join(schema))


def test_types_choices_and_required():
    with pytest.raises(UserError, match=r"training.epochs must be of type int, got str '3'"):
        validate_protocol({**MIN, "training": {"epochs": "3"}})
    with pytest.raises(UserError, match="training.precision = 'fp8' is not one of fp32, bf16, fp16"):
        validate_protocol({**MIN, "training": {"precision": "fp8"}})
    with pytest.raises(UserError, match="missing required key 'model.name'"):
        validate_protocol({"data": {"train": "d"}})
    cfg = validate_protocol({**MIN, "training": {"lr": 1}})  # int accepted for a float
    assert cfg["training"]["lr"] == 1.0 and isinstance(cfg["training"]["lr"], float)


def test_variables(tmp_path, shared):
    p = tmp_path / "p.toml"
    p.write_text('[data]\ntrain = "${protocol_dir}/x"\n[model]\nname = "madun"\n'
                 '[evaluation]\nsets = ["${shared}/data/natural/Set11"]\n')
    cfg = load_protocol(p)
    assert cfg["data"]["train"] == str(tmp_path.resolve() / "x")
    assert cfg["evaluation"]["sets"] == [str(shared / "data/natural/Set11")]
    p.write_text('[data]\ntrain = "${home}/x"\n[model]\nname = "madun"\n')
    with pytest.raises(UserError, match=r"unknown variable \$\{home\}.*valid: \$\{shared\}, "
                                        r"\$\{protocol_dir\}"):
        load_protocol(p)


def test_overrides_are_toml_typed():
    assert parse_override("training.lr=1e-3") == (["training", "lr"], 1e-3)
    assert parse_override("training.grad_checkpoint=true") == (["training", "grad_checkpoint"],
                                                               True)
    assert parse_override('operator.phi="gaussian"') == (["operator", "phi"], "gaussian")
    assert parse_override("operator.phi=gaussian") == (["operator", "phi"], "gaussian")
    assert parse_override("evaluation.sets=['a', 'b']")[1] == ["a", "b"]
    with pytest.raises(UserError, match="expected KEY=VALUE"):
        parse_override("training.lr")
    cfg = load_protocol(PROTOCOLS / "tiny.toml", ["operator.ratio=0.1", "training.epochs=5"])
    assert (cfg["operator"]["ratio"], cfg["training"]["epochs"]) == (0.1, 5)
    with pytest.raises(UserError, match="unknown key 'training.epoch'"):
        load_protocol(PROTOCOLS / "tiny.toml", ["training.epoch=5"])


def test_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.toml: protocol file not found"):
        load_protocol(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[data\ntrain = 1\n")
    with pytest.raises(UserError, match=r"bad.toml: malformed TOML \(.*line 1"):
        load_protocol(bad)


def test_to_toml_round_trip():
    cfg = load_protocol(PROTOCOLS / "madun_cs.toml")
    assert tomllib.loads(to_toml(cfg)) == cfg
    assert validate_protocol(tomllib.loads(to_toml(cfg))) == cfg
