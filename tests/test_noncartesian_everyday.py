"""Non-Cartesian k-space as a new user meets it: what ``recon`` and ``info`` say was sampled
(the Cartesian cells hit, radial spokes and acceleration — never "sampled fraction 1.000"),
networks trained on simulated radial k-space prepared exactly as a radial file is
(``simulated_kspace`` with ``trajectory``), and non-Cartesian checkpoints on images of
another size than their training images."""
from __future__ import annotations

import math

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

from mri_unfold.cli import main
from mri_unfold.data.noncartesian import file_dcf, prepare_noncartesian
from mri_unfold.data.sources import get_source
from mri_unfold.training.config import validate_protocol
from mri_unfold.trajectories import describe_sampling, make_trajectory

from test_noncartesian_ismrmrd import N, SPOKES, _write_radial


def test_recon_and_info_report_what_a_radial_file_samples(tmp_path, capsys):
    path = _write_radial(tmp_path / "radial.h5")
    assert main(["recon", str(path), "--method", "zero-filled", "--output",
                 str(tmp_path / "r.npy"), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "sampled fraction 1.000" not in text
    assert (f"{SPOKES * 2 * N} radial samples hitting 0.801 of the Cartesian k-space cells, "
            f"{SPOKES} spokes: acceleration 0.84 (Nyquist: 50 spokes)") in text
    assert main(["info", str(path)]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("sampling"))
    assert line.split(None, 1)[1] == ("radial: 3840 samples, 60 spokes: acceleration 0.84 "
                                      "(Nyquist 50 spokes), 80.1% of the Cartesian k-space "
                                      "cells hit")


@pytest.mark.parametrize("acc,spokes", [(8, 51), (4, 101), (1, 403)])
def test_describe_sampling_of_golden_radial(acc, spokes):
    t = make_trajectory("golden-radial", 256, acceleration=acc, dcf="none")
    d = describe_sampling(t.traj, (256, 256), radial=True)
    assert d["spokes"] == spokes and d["samples"] == spokes * 512
    assert d["acceleration"] == pytest.approx(math.pi / 2 * 256 / spokes)
    assert 0 < d["cells_hit"] < 1
    assert describe_sampling(t.traj, (256, 256))["cells_hit"] == d["cells_hit"]


def _images(folder, n=4, size=32):
    folder.mkdir()
    yy, xx = np.mgrid[:size, :size] / size
    for i in range(n):
        img = np.exp(-((yy - 0.4 - 0.05 * i) ** 2 + (xx - 0.5) ** 2) / 0.05)
        Image.fromarray((255 * img / img.max()).astype(np.uint8)).save(folder / f"im{i}.png")
    return folder


def test_simulated_radial_kspace_is_prepared_as_a_radial_file_is(tmp_path):
    folder = _images(tmp_path / "imgs")
    src = get_source("simulated_kspace")
    options = {k: v for k, (_, v) in src.options.items()} | {
        "trajectory": "golden-radial", "acceleration": 4.0, "coils": 1}
    ds = src.open(folder, options, seed=0)
    s = ds[0]
    t = make_trajectory("golden-radial", 32, acceleration=4, dcf="none")
    assert s.kspace.shape == (1, t.num_samples) and s.image.shape == (1, 32, 32)
    assert torch.allclose(s.dcf, torch.from_numpy(file_dcf(t.traj, (32, 32), "radial")))
    assert torch.allclose(s.image.abs()[0], s.target, atol=1e-6)   # one scale for both
    # the same k-space read from a file (no DCF, cycles per FOV) gets the same preparation
    raw = s.replace(dcf=None, trajectory=s.trajectory * 32 / (2 * math.pi),
                    kspace=s.kspace * 3.0)
    again = prepare_noncartesian(raw, units="cycles")
    assert torch.allclose(again.dcf, s.dcf, rtol=1e-5)
    assert torch.allclose(again.kspace, s.kspace, rtol=1e-4, atol=1e-6)
    with pytest.raises(Exception, match=r"data.trajectory must be one of cartesian, radial, "
                                        r"golden-radial, spiral; got 'rosette'"):
        src.check_options(options | {"trajectory": "rosette"}, "p.toml")


def _train(cfg: dict, run_dir) -> None:
    from mri_unfold.training import train
    train(validate_protocol(cfg), run_dir, device="cpu", progress=False)


def test_a_complex_radial_network_reconstructs_a_radial_file(tmp_path, capsys):
    folder = _images(tmp_path / "imgs")
    _train({"data": {"kind": "simulated_kspace", "train": str(folder), "coils": 1,
                     "trajectory": "golden-radial", "acceleration": 4.0},
            "operator": {"kind": "kspace"},
            "model": {"name": "ista_net_plus", "config": {"num_phases": 2, "channels": 4,
                                                          "image_channels": 2}},
            "training": {"batch_size": 2, "max_steps": 2, "progress": False},
            "evaluation": {"protocol": "none"}}, tmp_path / "run")
    path = _write_radial(tmp_path / "radial.h5")
    out = tmp_path / "rec.npy"
    assert main(["recon", str(path), "--model", str(tmp_path / "run" / "last.safetensors"),
                 "--output", str(out), "--no-progress"]) == 0
    assert "model ista_net_plus (complex images)" in capsys.readouterr().out
    rec = np.load(out)
    assert rec.shape == (1, N, N) and np.isfinite(rec).all() and rec.max() > 0


def test_a_noncartesian_checkpoint_on_images_of_another_size(tmp_path, capsys):
    folder = _images(tmp_path / "imgs")
    _train({"data": {"kind": "images", "train": str(folder)},
            "operator": {"kind": "noncartesian", "trajectory": "golden-radial",
                         "acceleration": 4.0, "dcf": "ramp"},
            "model": {"name": "ista_net_plus", "config": {"num_phases": 2, "channels": 4}},
            "training": {"batch_size": 2, "max_steps": 1, "progress": False},
            "evaluation": {"protocol": "none"}}, tmp_path / "run")
    vol = tmp_path / "vol.nii.gz"
    rng = np.random.default_rng(0)
    nib.save(nib.Nifti1Image(rng.random((24, 24, 2)).astype(np.float32), np.eye(4)), vol)
    ck = str(tmp_path / "run" / "last.safetensors")
    assert main(["recon", str(vol), "--model", ck, "--output", str(tmp_path / "o.nii.gz"),
                 "--no-progress"]) == 0
    text = capsys.readouterr().out
    spokes = math.ceil(math.pi / 2 * 24 / 4)                # golden-radial 4x made for 24 x 24
    assert f"{spokes} spokes: acceleration" in text
    nib.save(nib.Nifti1Image(rng.random((32, 32, 1)).astype(np.float32), np.eye(4)),
             tmp_path / "same.nii.gz")                      # the training size: stored spokes
    assert main(["recon", str(tmp_path / "same.nii.gz"), "--model", ck, "--output",
                 str(tmp_path / "s.nii.gz"), "--no-progress"]) == 0
    assert f"{math.ceil(math.pi / 2 * 32 / 4)} spokes" in capsys.readouterr().out
