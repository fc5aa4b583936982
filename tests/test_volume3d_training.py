"""Training 2-D networks for 3-D scans: the ``volume_kspace`` source (ky–kz slices of
simulated scans) and ``learned_kspace_mask`` (a ky–kz mask learned with the network) through
the engine, resumed, and reused by ``recon --ndim 3``."""
from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch

from mri_unfold.checkpoints import load_checkpoint
from mri_unfold.cli import main
from mri_unfold.data import stable_seed
from mri_unfold.data.sources import get_source
from mri_unfold.data.sources.volume_kspace import parse_positions
from mri_unfold.errors import UserError
from mri_unfold.masks.kykz import make_kykz_mask
from mri_unfold.operators import LearnedKSpaceMask
from mri_unfold.training import train, validate_protocol


def _volume_file(tmp_path, shape=(8, 40, 32)):
    g = [np.linspace(-1, 1, n) for n in shape]
    x, y, z = np.meshgrid(*g, indexing="ij")
    v = ((x ** 2 + y ** 2 / 0.8 + z ** 2 / 0.7) < 1) * (0.5 + 0.5 * np.cos(5 * y) ** 2)
    nib.save(nib.Nifti1Image(v.astype(np.float32), np.eye(4)), tmp_path / "v.nii.gz")
    return tmp_path / "v.nii.gz"


def _options(**over):
    src = get_source("volume_kspace")
    return {**{k: d for k, (_, d) in src.options.items()}, "coils": 4, "maps": "given",
            "acs": [12, 12], **over}


def test_volume_kspace_source_items(tmp_path):
    path = _volume_file(tmp_path)
    ds = get_source("volume_kspace").open(path, _options(positions="1:7"))
    assert [x for _, x in ds.index] == [1, 2, 3, 4, 5, 6]
    s = ds[2]
    assert tuple(s.kspace.shape) == (4, 40, 32) and s.metadata.slice == 3
    expect = make_kykz_mask("poisson", (40, 32), acceleration=4, acs=(12, 12),
                            seed=stable_seed("v.nii.gz", 0)).mask
    assert np.array_equal(s.mask.numpy(), expect) and s.metadata.undersampled
    assert s.image is not None and tuple(s.image.shape) == (1, 40, 32)
    assert float(s.kspace.abs().max()) > 0 and s.coil_maps is not None
    full = get_source("volume_kspace").open(path, _options(mask="none"), for_training=False)
    assert full[0].mask.min() == 1 and full[0].image is None
    with pytest.raises(UserError, match=r"data.positions must be 'start:stop'"):
        parse_positions("3-5", 8, "p.toml")
    with pytest.raises(UserError, match=r"data.positions = '9:' selects no readout position"):
        parse_positions("9:", 8, "p.toml")


def _protocol(path, run_kind: str) -> dict:
    data = {"kind": "volume_kspace", "train": str(path), "coils": 4, "maps": "given",
            "acs": [12, 12], "positions": "1:7", "mask": "poisson", "acceleration": 4.0}
    op = {"kind": "kspace"}
    if run_kind == "learned":
        data["mask"] = "none"
        op = {"kind": "learned_kspace_mask", "ratio": 0.25, "acs": [12, 12],
              "mask_prob_slope": 20.0}
    return validate_protocol({
        "name": run_kind, "seed": 0, "data": data, "operator": op,
        "model": {"name": "ista_net_plus",
                  "config": {"num_phases": 2, "channels": 4, "image_channels": 2}},
        "training": {"epochs": 5, "max_steps": 3, "batch_size": 2, "lr": 1e-2,
                     "progress": False, "checkpoint_every": 2},
        "evaluation": {"protocol": "none"}}, source="t.toml")


def test_learned_kspace_mask_trains_resumes_and_drives_recon(tmp_path, capsys):
    path = _volume_file(tmp_path)
    cfg = _protocol(path, "learned")
    run = tmp_path / "run"
    train(cfg, run, device="cpu")
    ck = load_checkpoint(run / "last.safetensors")
    assert isinstance(ck.op, LearnedKSpaceMask)
    fresh = LearnedKSpaceMask((40, 32), 0.25, acs=(12, 12), prob_slope=20.0)
    assert float((ck.op.learned.logits - fresh.learned.logits).abs().max()) > 0   # learned
    mask = ck.op.mask
    assert int(mask.sum()) == round(0.25 * 40 * 32) and bool(mask[14:26, 10:22].all())
    cfg["training"]["max_steps"] = 5
    train(cfg, run, device="cpu", resume=True)
    resumed = load_checkpoint(run / "last.safetensors")
    assert int(resumed.info.get("step", 5)) == 5
    out = tmp_path / "rec.nii.gz"
    assert main(["recon", str(path), "--ndim", "3", "--model", str(run / "last.safetensors"),
                 "--sim-coils", "4", "--coil-maps", "given", "--acs", "12", "12",
                 "--output", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "sampled fraction 0.250" in text and "model ista_net_plus" in text
    assert nib.load(out).shape == (8, 40, 32)


def test_fixed_mask_network_trains_on_kykz_slices(tmp_path):
    path = _volume_file(tmp_path)
    run = tmp_path / "fixed"
    train(_protocol(path, "fixed"), run, device="cpu")
    ck = load_checkpoint(run / "last.safetensors")
    assert ck.operator_cfg["kind"] == "kspace" and ck.model.image_channels == 2
    op = ck.op(torch.ones(1, 40, 32), torch.ones(1, 4, 40, 32, dtype=torch.complex64) / 2)
    x = torch.ones(1, 1, 40, 32, dtype=torch.complex64)
    out = ck.model(op(x), op)
    assert tuple(out.shape) == (1, 1, 40, 32) and bool(torch.isfinite(out.abs()).all())


KYKZ_STUDY = """
name = "kykz"
seed = 0
[data]
kind = "nifti"
train = "{root}/train.nii.gz"
test = "{root}/test.nii.gz"
axis = 0
val_images = 2
[masks]
kinds = ["poisson", "caipi"]
accelerations = [4]
acs = [8, 8]
elliptical = true
learned_dims = [2]
tolerance = 0.3
[methods]
classical = ["zero-filled"]
[network]
model = "ista_net_plus"
config = {{ num_phases = 2, channels = 4 }}
max_steps = 2
batch_size = 2
checkpoint_every = 1
"""


@pytest.mark.slow
def test_kykz_mask_study_runs_with_the_acs_block(tmp_path, capsys):
    vol = np.random.default_rng(0).random((14, 32, 24)).astype(np.float32)
    nib.save(nib.Nifti1Image(vol[:10], np.eye(4)), tmp_path / "train.nii.gz")
    nib.save(nib.Nifti1Image(vol[10:], np.eye(4)), tmp_path / "test.nii.gz")
    study = tmp_path / "kykz.toml"
    study.write_text(KYKZ_STUDY.format(root=tmp_path.as_posix()))
    out = tmp_path / "out"
    assert main(["study", str(study), "--out", str(out), "--no-progress"]) == 0
    masks = {p.stem: np.load(p) for p in (out / "masks").glob("*.npy")}
    assert len(masks) == 3                               # poisson, caipi, learned
    for m in masks.values():
        assert m.shape == (32, 24) and m[12:20, 8:16].all()     # the 8 x 8 ACS block
    caipi = [m for k, m in masks.items() if "caipi" in k][0]
    ref = make_kykz_mask("caipi", (32, 24), acceleration=4, acs=(8, 8), elliptical=True,
                         seed=0).mask
    assert np.array_equal(caipi, ref)
    bad = study.read_text().replace('kinds = ["poisson", "caipi"]', 'kinds = ["radial"]')
    study.write_text(bad)
    assert main(["study", str(study), "--out", str(tmp_path / "o2"), "--no-progress"]) == 2
    assert "masks.kinds" in capsys.readouterr().err and not (tmp_path / "o2").exists()
