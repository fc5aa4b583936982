"""`mri-unfold recon` and `mri-unfold info` on raw k-space (twix, ISMRMRD, BART, arrays), and
one table of bad inputs through the command line (one line, exit 2, nothing written, the
input untouched)."""
import hashlib
import json

import h5py
import nibabel as nib
import numpy as np
import pytest
import torch

from mri_unfold.cli import main
from mri_unfold.data.bart import kspace_to_bart, write_cfl
from mri_unfold.data.ismrmrd_writer import write_ismrmrd
from mri_unfold.data.sources import get_source
from mri_unfold.fft import ifft2
from mri_unfold.image_ops import rss

from raw_fixtures import (cartesian_acqs, flagged_twix, ismrmrd_xml, phantom_kspace, twix_path,
                          write_ismrmrd_acqs)


@pytest.fixture(scope="module")
def real():
    return get_source("twix").read(twix_path())[0]


def test_recon_twix_zero_filled_and_sense_with_affine(real, tmp_path, capsys):
    out = tmp_path / "zf.h5"
    assert main(["recon", str(twix_path()), "--output", str(out), "--no-progress"]) == 0
    with h5py.File(out) as f:
        got = f["reconstruction"][()]
    expect = rss(ifft2(real.kspace), 0).numpy()
    assert got.shape == (1, 160, 160)
    np.testing.assert_allclose(got[0], expect, rtol=1e-4, atol=1e-6 * expect.max())
    nii = tmp_path / "sense.nii.gz"
    assert main(["recon", str(twix_path()), "--method", "sense", "--output", str(nii),
                 "--no-progress"]) == 0
    img = nib.load(nii)
    assert img.shape == (160, 160, 1)
    np.testing.assert_allclose(img.affine, real.metadata.extras["affine"], atol=1e-4)
    assert "input " in capsys.readouterr().out


def test_recon_ismrmrd_undersampled_and_bart_npy(real, tmp_path):
    h5 = write_ismrmrd([real], tmp_path / "scan.h5")
    out = tmp_path / "l1.npy"
    assert main(["recon", str(h5), "--method", "l1-wavelet", "--mask", "equispaced",
                 "--acceleration", "4", "--center-fraction", "0.15", "--output", str(out),
                 "--no-progress"]) == 0
    rec = np.load(out)
    assert rec.shape == (1, 160, 160) and rec.dtype == np.float32 and np.isfinite(rec).all()
    write_cfl(tmp_path / "k", kspace_to_bart(real.kspace.numpy()[None]))
    out = tmp_path / "bart.npy"
    assert main(["recon", str(tmp_path / "k.cfl"), "--output", str(out), "--no-progress"]) == 0
    np.testing.assert_allclose(np.load(out)[0], rss(ifft2(real.kspace), 0).numpy(), rtol=1e-4,
                               atol=1e-7)


def test_info_text_and_json(tmp_path, capsys):
    assert main(["info", str(twix_path())]) == 0
    text = capsys.readouterr().out
    assert "Siemens twix (VD/VE)" in text and "fov_mm         200.0 x 200.0 x 4.0" in text
    assert "sampling       fully sampled: acceleration 1.00" in text
    k = phantom_kspace(2, 16, 12)
    k[:, :, 1::4] = 0
    np.save(tmp_path / "k.npy", k)
    assert main(["info", str(tmp_path / "k.npy"), "--axes", "coil,readout,phase", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["kind"], info["coils"], info["slices"], info["matrix"]) == ("array", 2, 1,
                                                                            [16, 12])
    s = info["sampling"]
    assert (s["kind"], s["acceleration"], s["sampled_lines"], s["acs_lines"]) == \
        ("1-D lines", 1.3333, 9, 3)
    assert info["fov_mm"] is None and info["affine"] is None


def _bad_inputs(tmp):
    raw = twix_path().read_bytes()
    (tmp / "truncated.dat").write_bytes(raw[: len(raw) // 2])
    flagged_twix(twix_path(), tmp / "noimage.dat")
    k = phantom_kspace(2, 16, 12)
    write_ismrmrd_acqs(tmp / "noheader.h5", None, cartesian_acqs(k))
    acqs = cartesian_acqs(k)
    acqs[3]["idx"]["kspace_encode_step_1"] = 99
    xml = ismrmrd_xml((16, 12, 1), (16, 12, 1), (1, 1, 1), (1, 1, 1),
                      {"kspace_encoding_step_1": (0, 11, 6), "slice": (0, 0, 0)}, coils=2)
    write_ismrmrd_acqs(tmp / "limits.h5", xml, acqs)
    np.save(tmp / "axes.npy", k)
    np.save(tmp / "ambiguous.npy", k)
    bad = k.copy()
    bad[1, 2, 3] = np.inf
    np.save(tmp / "inf.npy", bad[None])
    (tmp / "empty.dat").write_bytes(b"")
    return [
        ("truncated.dat", [], r"truncated.dat: truncated twix file: measurement 0 needs bytes"),
        ("noimage.dat", [], r"noimage.dat: no image scan in the last measurement"),
        ("noheader.h5", [], r"noheader.h5: ISMRMRD file without an XML header"),
        ("limits.h5", [], r"limits.h5: acquisition 3 has line counter 99, outside the "
                          r"header's encoding limits \[0, 11\]"),
        ("axes.npy", ["--axes", "slice,coil,readout,phase"],
         r"axes.npy: axes 'slice,coil,readout,phase' name 4 axes but 'kspace' has 3"),
        ("ambiguous.npy", [], r"ambiguous.npy: the axes of 'kspace' \(2, 16, 12\) are ambiguous"),
        ("inf.npy", [], r"inf.npy slice 0: k-space holds 1 NaN/Inf samples"),
        ("empty.dat", [], r"empty.dat: empty file \(0 bytes\)"),
    ]


def test_bad_inputs_one_line_exit_2_nothing_written(tmp_path, capsys):
    import re

    for name, extra, message in _bad_inputs(tmp_path):
        src = tmp_path / name
        before = hashlib.sha256(src.read_bytes()).hexdigest()
        for cmd in (["recon", str(src), "--output", str(tmp_path / "out.nii.gz"),
                     "--no-progress"], ["info", str(src)]):
            assert main(cmd + extra) == 2, (name, cmd[0])
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and err.startswith("mri-unfold: error: "), err
            assert re.search(message, err), (name, err)
        assert not (tmp_path / "out.nii.gz").exists()
        assert hashlib.sha256(src.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["truncated.dat", "noimage.dat", "noheader.h5", "limits.h5", "axes.npy",
         "ambiguous.npy", "inf.npy", "empty.dat"])


def test_recon_twix_with_the_bundled_network(real, tmp_path):
    import mri_unfold
    from mri_unfold.metrics import psnr

    ckpt = mri_unfold.__file__.replace("__init__.py", "weights/ista_net_plus_raw_sim.safetensors")
    out = tmp_path / "net.npy"
    assert main(["recon", str(twix_path()), "--model", ckpt, "--mask", "equispaced",
                 "--acceleration", "4", "--center-fraction", "0.15", "--output", str(out),
                 "--no-progress"]) == 0
    rec = np.load(out)
    target = rss(ifft2(real.kspace), 0).numpy()
    assert rec.shape == (1, 160, 160) and np.isfinite(rec).all()
    assert 20.0 < psnr(target, rec[0]) < 24.0          # docs/raw_data.md: 21.9 dB (seed 0 mask)
