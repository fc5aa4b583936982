"""``mri-unfold recon`` on non-Cartesian k-space simulated from a NIfTI volume: with
``--trajectory --acceleration``, with a non-Cartesian checkpoint's own trajectory, the
reconstruct_nifti API, and one-line errors for bad flag combinations."""
from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from mri_unfold.checkpoints import save_checkpoint
from mri_unfold.cli import main
from mri_unfold.data import noncartesian_operator
from mri_unfold.models import build
from mri_unfold.reconstruct import TrajectorySpec, reconstruct_nifti

CFG = {"kind": "noncartesian", "trajectory": "golden-radial", "acceleration": 2.0,
       "readout": 0, "dcf": "auto", "coils": 1, "real_input": True}


def _volume(path, n=24, slices=2):
    yy, xx = np.mgrid[:n, :n] / n
    vol = np.stack([np.exp(-((yy - 0.5) ** 2 + (xx - 0.4 - 0.1 * k) ** 2) / 0.05)
                    for k in range(slices)], -1).astype(np.float32) * 100
    nib.save(nib.Nifti1Image(vol, np.eye(4)), str(path))
    return vol


def _checkpoint(path, n=24):
    op = noncartesian_operator(CFG, image_shape=(n, n))
    model = build("ista_net_plus", num_phases=2, channels=4, image_channels=1)
    save_checkpoint(path, model, op, CFG)
    return op


def test_recon_simulates_a_trajectory_from_nifti(tmp_path, capsys):
    vol = _volume(tmp_path / "vol.nii.gz")
    ck = tmp_path / "nc.safetensors"
    _checkpoint(ck)
    out = tmp_path / "out.nii.gz"
    assert main(["recon", str(tmp_path / "vol.nii.gz"), "--model", str(ck), "--trajectory",
                 "golden-radial", "--acceleration", "2", "--output", str(out),
                 "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "wrote" in text and "2 slices of 24x24" in text
    rec = np.asarray(nib.load(str(out)).dataobj)
    assert rec.shape == vol.shape and np.isfinite(rec).all() and rec.max() > 0
    # the checkpoint's own trajectory when no flag is given
    out2 = tmp_path / "out2.nii.gz"
    assert main(["recon", str(tmp_path / "vol.nii.gz"), "--model", str(ck), "--output",
                 str(out2), "--no-progress"]) == 0
    assert np.allclose(np.asarray(nib.load(str(out2)).dataobj), rec, atol=1e-5 * rec.max())


def test_reconstruct_nifti_with_a_trajectory_spec(tmp_path):
    vol = _volume(tmp_path / "vol.nii.gz")
    op = _checkpoint(tmp_path / "nc.safetensors")
    model = build("ista_net_plus", num_phases=2, channels=4, image_channels=1)
    res = reconstruct_nifti(tmp_path / "vol.nii.gz", model, None,
                            trajectory=TrajectorySpec("golden-radial", 2.0), progress=False)
    assert res.reconstruction.shape == (2, 24, 24) and res.info["mask"] == "golden-radial R=2"
    assert res.metrics["zero-filled"]["psnr"] > 20          # gridding of a smooth blob
    same = reconstruct_nifti(tmp_path / "vol.nii.gz", model, None,
                             trajectory=TrajectorySpec.of_operator(op), progress=False)
    assert np.allclose(same.reconstruction, res.reconstruction, atol=1e-4 * vol.max())
    with pytest.raises(Exception, match=r"trajectory 'golden-radial': needs an acceleration"):
        TrajectorySpec("golden-radial")


@pytest.mark.parametrize("flags,message", [
    (["--trajectory", "golden-radial"], "--trajectory golden-radial needs --acceleration R"),
    (["--trajectory", "radial", "--acceleration", "2", "--mask", "radial"],
     "give either --trajectory or --mask/--mask-file, not both"),
    (["--trajectory", "zigzag", "--acceleration", "2"], "trajectory 'zigzag': "),
])
def test_recon_trajectory_errors_are_one_line(tmp_path, capsys, flags, message):
    _volume(tmp_path / "vol.nii.gz")
    ck = tmp_path / "nc.safetensors"
    _checkpoint(ck)
    code = main(["recon", str(tmp_path / "vol.nii.gz"), "--model", str(ck), "--output",
                 str(tmp_path / "o.nii.gz"), "--no-progress", *flags])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err


def test_example_script_writes_metrics_and_a_real_figure(tmp_path):
    from PIL import Image

    from benchmarks import noncartesian_example

    n = 32
    folder = tmp_path / "slices"
    folder.mkdir()
    yy, xx = np.mgrid[:n, :n] / n
    for i in range(2):
        img = np.exp(-((yy - 0.5) ** 2 + (xx - 0.4 - 0.1 * i) ** 2) / 0.05) * 255
        Image.fromarray(img.astype(np.uint8)).save(folder / f"s{i}.png")
    ck = tmp_path / "nc.safetensors"
    _checkpoint(ck, n)
    out, fig = tmp_path / "nc.json", tmp_path / "nc.png"
    assert noncartesian_example.main([str(ck), "--images", str(folder), "--l1-images", "1",
                                      "--out", str(out), "--figure", str(fig)]) == 0
    import json

    res = json.loads(out.read_text())
    assert [res["mean"][m]["slices"] for m in noncartesian_example.METHODS] == [2, 2, 2, 1]
    assert res["mean"]["CG-SENSE"]["psnr"] > res["mean"]["gridding"]["psnr"] > 20
    png = np.asarray(Image.open(fig).convert("L"))
    assert png.shape[0] >= 400 and png.shape[1] >= 1000 and png.std() > 10
