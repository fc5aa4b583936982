"""The model zoo machinery: export of a run with a measured card, name resolution,
``pretrained(name)``, ``mri-unfold models``, names wherever a checkpoint is taken, and the
bundled zoo's integrity (cards, digests, size)."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from benchmarks.suites.training_mri import write_slices
from mri_unfold import checkpoints as ckpt
from mri_unfold.cli import main
from mri_unfold.errors import UserError
from mri_unfold.models import zoo
from mri_unfold.operators import KSpaceOperatorFactory, SingleCoilFourier
from mri_unfold.training.config import validate_protocol
from mri_unfold.training.loop import train
from mri_unfold.training.zoo_export import export_to_zoo, run_time


@pytest.fixture(scope="module")
def slices(tmp_path_factory):
    """Four seeded 256x256 gray PNGs (the brain test's size)."""
    return write_slices(tmp_path_factory.mktemp("zoo_data") / "slices256", n=4, side=256)


def _run(folder, run_dir, kspace: bool):
    data = ({"kind": "simulated_kspace", "train": str(folder), "coils": 2, "mask": "random",
             "acceleration": 4.0, "center_fraction": 0.08} if kspace
            else {"kind": "images", "train": str(folder)})
    op = {"kind": "kspace"} if kspace else {"kind": "single_coil", "mask": "radial",
                                             "ratio": 0.2, "seed": 0}
    cfg = validate_protocol({
        "name": "tinyzoo", "seed": 0, "data": data, "operator": op,
        "model": {"name": "ista_net_plus", "seed": 1, "config": {"num_phases": 2, "channels": 4}},
        "training": {"epochs": 1, "batch_size": 2, "lr": 1e-3, "loss": "mse_sym",
                     "progress": False}}, source="tinyzoo")
    train(cfg, run_dir)
    return run_dir


@pytest.fixture(scope="module")
def tiny_zoo(slices, tmp_path_factory):
    """A zoo folder with one real-valued and one k-space model, exported from real runs."""
    root = tmp_path_factory.mktemp("zoo")
    folder = root / "weights"
    folder.mkdir()
    cards = {}
    for name, kspace in (("tiny_radial20", False), ("tiny_complex_4x", True)):
        run = _run(slices, root / f"run_{name}", kspace)
        cards[name] = export_to_zoo(run, name, label=f"Tiny {name}", description="test model",
                                    protocol="protocols/none.toml", folder=folder,
                                    score_limit=2, machine="test")
    return folder, cards


def test_export_writes_a_card_with_measured_numbers(tiny_zoo):
    folder, cards = tiny_zoo
    assert zoo.model_names(folder) == ["tiny_complex_4x", "tiny_radial20"]
    real, cplx = zoo.load_card("tiny_radial20", folder), zoo.load_card("tiny_complex_4x", folder)
    assert real == cards["tiny_radial20"] and cplx == cards["tiny_complex_4x"]
    assert real["task"] == "cs_mri_real" and real["ratio"] == 0.2 and real["coils"] == 1
    assert real["operator"] == {"kind": "single_coil", "mask": "radial", "ratio": 0.2,
                                "seed": 0, "layout": "centered", "center_fraction": 0.0,
                                "real_input": True}
    assert cplx["task"] == "kspace_complex" and cplx["simulation_trained"] is True
    assert cplx["data"]["coils"] == 2 and cplx["acceleration"] == 4.0
    t = real["training"]
    assert (t["steps"], t["epochs"], t["images_seen"]) == (2, 1, 4) and t["seconds"] > 0
    blob = (folder / "tiny_radial20.safetensors").read_bytes()
    assert real["file"] == {"sha256": hashlib.sha256(blob).hexdigest(), "bytes": len(blob),
                            "dtype": "float32"}
    s = real["scores"]["brain_test"]
    assert s["images"] == 2 and 10 < s["psnr"] < 60 and 0 < s["ssim"] <= 1
    assert real["scores"]["brain_test_own_mask"]["images"] == 2
    c = cplx["scores"]["brain_test"]
    assert c["images"] == 2 and 5 < c["zero_filled_psnr"] < 60 and np.isfinite(c["psnr"])


def test_run_time_counts_steps_and_skips_pauses(tmp_path):
    (tmp_path / "protocol.toml").write_text("[training]\nbatch_size = 2\n")
    recs = [{"step": 1, "epoch": 0, "split": "train", "time": 100.0, "images_per_s": 0.5},
            {"step": 2, "epoch": 0, "split": "train", "time": 104.0, "images_per_s": 0.5},
            {"step": 2, "epoch": 1, "split": "val", "time": 110.0, "psnr": 30.0},
            {"step": 3, "epoch": 1, "split": "train", "time": 5000.0, "images_per_s": 1.0}]
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    t = run_time(tmp_path)
    # 4 s (first step: 2 images at 0.5/s) + 4 + 6, the kill/resume gap replaced by 2 s
    assert t == {"steps": 3, "epochs": 2, "images_seen": 6, "seconds": 16.0,
                 "validations": [(2, 14.0, 30.0)]}


def test_pretrained_returns_model_and_operator_settings(tiny_zoo):
    folder, _ = tiny_zoo
    p = zoo.pretrained("tiny_radial20", folder=folder)
    assert not p.model.training and p.model.config["num_phases"] == 2
    assert isinstance(p.operator, SingleCoilFourier) and p.operator.real_input
    assert abs(float(p.operator.mask.float().mean()) - 0.2) < 0.01
    assert p.operator_cfg == p.card["operator"]
    loaded = ckpt.load_checkpoint(folder / "tiny_radial20.safetensors")
    assert all(torch.equal(a, b) for a, b in zip(p.model.state_dict().values(),
                                                 loaded.model.state_dict().values()))
    x = torch.rand(1, 1, 256, 256, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert p.model(p.operator(x), p.operator).shape == (1, 1, 256, 256)
    k = zoo.pretrained("tiny_complex_4x", folder=folder)
    assert isinstance(k.operator, KSpaceOperatorFactory) and k.model.image_channels == 2


def test_names_resolve_and_bad_ones_are_refused(tiny_zoo, tmp_path, monkeypatch):
    folder, _ = tiny_zoo
    assert zoo.resolve_weights("tiny_radial20", folder) == folder / "tiny_radial20.safetensors"
    local = tmp_path / "tiny_radial20"
    local.write_text("x")
    monkeypatch.chdir(tmp_path)
    assert zoo.resolve_weights("tiny_radial20", folder) == local.relative_to(tmp_path)  # path wins
    with pytest.raises(FileNotFoundError, match=r"nope: checkpoint file not found, and not a "
                                                r"bundled model name \(bundled: tiny_complex_4x, "
                                                r"tiny_radial20\)"):
        zoo.resolve_weights("nope", folder)
    with pytest.raises(UserError, match=r"'nope' is not a bundled model; bundled: tiny_complex"):
        zoo.load_card("nope", folder)
    assert zoo.best_models(0.2, folder=folder) == ["tiny_radial20"]
    assert zoo.best_models(0.3, folder=folder) == []


def test_a_modified_file_or_card_is_refused(tiny_zoo, tmp_path):
    folder, _ = tiny_zoo
    other = tmp_path / "w"
    other.mkdir()
    for suffix in (".safetensors", ".json"):
        (other / f"tiny_radial20{suffix}").write_bytes((folder / f"tiny_radial20{suffix}").read_bytes())
    blob = bytearray((other / "tiny_radial20.safetensors").read_bytes())
    blob[-1] ^= 1
    (other / "tiny_radial20.safetensors").write_bytes(bytes(blob))
    with pytest.raises(UserError, match=r"tiny_radial20.safetensors: SHA-256 .* differs from its card"):
        zoo.pretrained("tiny_radial20", folder=other)
    (other / "tiny_radial20.json").write_text('{"name": "tiny_radial20"}')
    with pytest.raises(UserError, match=r"tiny_radial20.json: not a valid model card \(missing "):
        zoo.load_card("tiny_radial20", other)


def test_models_command_lists_the_zoo_and_one_card(tiny_zoo, monkeypatch, capsys):
    folder, cards = tiny_zoo
    monkeypatch.setattr(zoo, "zoo_dir", lambda: folder)
    assert main(["models"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["name", "task", "brain_test"]
    row = next(line for line in out if line.startswith("tiny_radial20"))
    assert "CS-MRI real, radial 20%" in row
    assert f"{cards['tiny_radial20']['scores']['brain_test']['psnr']:.2f}" in row
    assert any("complex 2-coil, random 4x (sim.)" in line for line in out)
    assert main(["models", "tiny_complex_4x", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == cards["tiny_complex_4x"]
    assert main(["models", "nope"]) == 2
    assert capsys.readouterr().err.strip() == ("mri-unfold: error: 'nope' is not a bundled model; "
                                               "bundled: tiny_complex_4x, tiny_radial20")


def test_eval_and_demo_take_a_zoo_name(tiny_zoo, slices, monkeypatch, tmp_path, capsys):
    folder, _ = tiny_zoo
    monkeypatch.setattr(zoo, "zoo_dir", lambda: folder)
    assert main(["eval", "tiny_radial20", "--images", str(slices), "--max-images", "1"]) == 0
    assert "slices256" in capsys.readouterr().out
    assert main(["demo", "--output", str(tmp_path / "d")]) == 0
    text = capsys.readouterr().out
    assert "methods run: zero-filled, L1-wavelet, Tiny tiny_radial20" in text
    assert main(["demo", "--output", str(tmp_path / "e"), "--ratio", "0.3"]) == 0
    assert "note: no bundled network for 30% radial sampling" in capsys.readouterr().out
    assert main(["demo", "--output", str(tmp_path / "f"), "--model", "nope"]) == 2
    assert "nope: checkpoint file not found, and not a bundled model name" in \
        capsys.readouterr().err


def test_the_bundled_zoo_is_consistent():
    names = zoo.model_names()
    assert names, "no bundled models"
    total = 0
    for name in names:
        card = zoo.load_card(name)
        path = zoo.verify_file(name)
        total += path.stat().st_size
        assert card["file"]["bytes"] == path.stat().st_size
        assert card["scores"]["brain_test"]["images"] == 50
        assert card["training"]["seconds"] > 0 and card["training"]["steps"] > 0
        meta = ckpt.read_checkpoint_info(path)
        assert meta["step"] >= 1
    assert total < 25 * 2 ** 20
