"""``recon`` on a researcher's own fully sampled scan: scores against the scan's own fully
sampled image (RSS, SENSE or a given file, printed and written with ``--metrics``), the
mask seed that never depends on the file name, coil compression on the command line, and
``compare`` on a raw file (methods side by side, a real figure)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from mri_unfold.cli import main
from mri_unfold.data.sources import get_source
from mri_unfold.fft import ifft2
from mri_unfold.image_ops import rss
from mri_unfold.metrics import quality
from mri_unfold.reconstruct import MaskSpec, reconstruct_kspace_file

from raw_fixtures import phantom_kspace

AXES = ["--axes", "coil,readout,phase"]
MASK = ["--mask", "equispaced", "--acceleration", "3", "--center-fraction", "0.3"]


@pytest.fixture
def scan(tmp_path):
    """A fully sampled 4-coil 48 x 48 scan as a plain .npy k-space array."""
    path = tmp_path / "scan_full.npy"
    np.save(path, phantom_kspace(4, 48, 48, seed=3))
    return path


def _recon(args, capsys):
    code = main(["recon", *map(str, args), "--no-progress"])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_fully_sampled_scan_is_scored_against_its_own_rss_image(scan, tmp_path, capsys):
    out, js = tmp_path / "rec.npy", tmp_path / "scores.json"
    code, text, err = _recon([scan, *AXES, *MASK, "--output", out, "--metrics", js], capsys)
    assert code == 0, err
    assert "no reference image" not in text
    assert "metrics vs the reference (fully sampled RSS;" in text
    full = phantom_kspace(4, 48, 48, seed=3)
    ref = rss(ifft2(torch.from_numpy(full)), 0).numpy()
    rec = np.load(out)[0]
    want = quality(ref[None], rec[None])
    got = json.loads(js.read_text())
    assert got["reference"] == "fully sampled RSS" and got["sampled_fraction"] == pytest.approx(1 / 3)
    row = got["rows"][0]
    assert row["method"] == "zero-filled" and len(got["rows"]) == 1
    for k in ("psnr", "ssim", "nmse"):
        assert row[k] == pytest.approx(want[k], rel=1e-5)
    assert f"{want['psnr']:.2f}" in text


def test_sense_and_file_references_and_csv(scan, tmp_path, capsys):
    rss_out = tmp_path / "rss.npy"
    code, _, err = _recon([scan, *AXES, "--method", "zero-filled", "--output", rss_out], capsys)
    assert code == 0, err                          # fully sampled zero-filled: the RSS image
    csv_sense, csv_file = tmp_path / "sense.csv", tmp_path / "file.csv"
    base = [scan, *AXES, *MASK, "--method", "sense", "--metrics"]
    code, text, err = _recon([*base, csv_sense, "--reference", "sense", "--output",
                              tmp_path / "a.npy"], capsys)
    assert code == 0 and "(fully sampled SENSE;" in text, err
    code, text, err = _recon([*base, csv_file, "--reference", rss_out, "--output",
                              tmp_path / "b.npy"], capsys)
    assert code == 0 and f"({rss_out};" in text, err
    lines = csv_file.read_text().splitlines()
    assert lines[0] == "method,psnr,ssim,nmse" and lines[1].startswith("sense,")
    assert lines[2].startswith("zero-filled,") and len(lines) == 3
    # the file reference is the RSS image: the same numbers as the default reference
    res = reconstruct_kspace_file(scan, "array", method="sense", progress=False,
                                  mask=MaskSpec("equispaced", 3, 0.3),
                                  read_options={"axes": "coil,readout,phase"})
    assert res.info["reference"] == "fully sampled RSS"
    assert float(lines[1].split(",")[1]) == pytest.approx(res.metrics["network"]["psnr"],
                                                          rel=1e-5)
    sense_psnr = float(csv_sense.read_text().splitlines()[1].split(",")[1])
    assert sense_psnr != pytest.approx(res.metrics["network"]["psnr"], abs=1e-3)


def test_reference_and_metrics_refusals(scan, tmp_path, capsys):
    under = tmp_path / "under.npy"
    k = phantom_kspace(4, 48, 48, seed=3)
    k[:, :, ::2] = 0                                    # every other column never measured
    np.save(under, k)
    js = tmp_path / "m.json"
    code, _, err = _recon([under, *AXES, "--output", tmp_path / "u.npy", "--metrics", js], capsys)
    assert code == 2 and "there is no reference to score against" in err and not js.exists()
    assert not (tmp_path / "u.npy").exists()
    code, _, err = _recon([under, *AXES, "--reference", "rss", "--output", tmp_path / "v.npy"],
                          capsys)
    assert code == 2 and "already undersampled" in err
    vol = tmp_path / "vol.nii.gz"
    import nibabel as nib
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((16, 16, 2)).astype(np.float32),
                             np.eye(4)), vol)
    code, _, err = _recon([vol, "--mask", "radial", "--acceleration", "3", "--reference", "rss",
                           "--output", tmp_path / "w.nii.gz"], capsys)
    assert code == 2 and "needs a k-space input" in err
    code, _, err = _recon([scan, *AXES, *MASK, "--reference", tmp_path / "nope.npy",
                           "--output", tmp_path / "x.npy"], capsys)
    assert code == 2 and "expected rss, sense or an existing image file" in err
    np.save(tmp_path / "small.npy", np.ones((8, 8), np.float32))
    code, _, err = _recon([scan, *AXES, *MASK, "--reference", tmp_path / "small.npy",
                           "--output", tmp_path / "y.npy"], capsys)
    assert code == 2 and "the reference is 1x8x8, the reconstruction 1x48x48" in err
    assert not (tmp_path / "y.npy").exists()


def test_the_mask_seed_never_depends_on_the_file_name(scan, tmp_path, capsys):
    copy = tmp_path / "renamed_copy.npy"
    shutil.copyfile(scan, copy)
    mask = ["--mask", "random", "--acceleration", "3", "--seed", "0"]
    outs = []
    for i, src in enumerate((scan, copy)):
        out = tmp_path / f"r{i}.npy"
        code, text, err = _recon([src, *AXES, *mask, "--output", out], capsys)
        assert code == 0, err
        assert ("mask seed 0 (the given seed, independent of the file name; reproduce with "
                "--mask random --acceleration 3 --seed 0)") in text
        outs.append(np.load(out))
    assert np.array_equal(outs[0], outs[1])
    code, text, _ = _recon([scan, *AXES, "--mask", "random", "--acceleration", "3", "--seed",
                            "1", "--output", tmp_path / "r2.npy"], capsys)
    assert code == 0 and not np.array_equal(np.load(tmp_path / "r2.npy"), outs[0])


def test_coil_compression_on_the_command_line(scan, tmp_path, capsys):
    code, text, err = _recon([scan, *AXES, *MASK, "--method", "sense", "--coils", "2",
                              "--output", tmp_path / "c2.npy"], capsys)
    assert code == 0, err
    raw = get_source("array").read(scan, {"axes": "coil,readout,phase"})
    res = reconstruct_kspace_file(scan, "array", method="sense", progress=False,
                                  mask=MaskSpec("equispaced", 3, 0.3),
                                  read_options={"axes": "coil,readout,phase"})
    compressed = np.load(tmp_path / "c2.npy")
    assert raw[0].num_coils == 4 and compressed.shape == res.reconstruction.shape
    assert not np.allclose(compressed, res.reconstruction, rtol=1e-3)
    from mri_unfold.data import CompressCoils
    two = reconstruct_kspace_file(scan, "array", method="sense", progress=False,
                                  mask=MaskSpec("equispaced", 3, 0.3), compress=CompressCoils(2),
                                  read_options={"axes": "coil,readout,phase"})
    assert two.info["virtual_coils"] == 2 and np.allclose(compressed, two.reconstruction)
    code, _, err = _recon([scan, *AXES, *MASK, "--coil-energy", "0.99", "--output",
                           tmp_path / "e.npy"], capsys)
    assert code == 0, err
    for bad, msg in ((["--coils", "5"], "cannot compress 4 coils to 5"),
                     (["--coils", "0"], "--coils 0: num_coils must be >= 1, got 0"),
                     (["--coil-energy", "1.5"], "--coil-energy 1.5: energy must be in (0, 1]"),
                     (["--geometric"], "--geometric needs --coils N or --coil-energy E")):
        code, _, err = _recon([scan, *AXES, *MASK, *bad, "--output", tmp_path / "bad.npy"],
                              capsys)
        assert code == 2 and msg in err, (bad, err)
    with pytest.raises(SystemExit) as e:
        main(["recon", str(scan), "--coils", "2", "--coil-energy", "0.9"])
    assert e.value.code == 2


def test_compare_on_a_raw_scan(scan, tmp_path, capsys):
    png, csv = tmp_path / "cmp.png", tmp_path / "cmp.csv"
    code = main(["compare", str(scan), *AXES, *MASK, "--baseline", "zero-filled", "--baseline",
                 "sense", "--baseline", "l1-wavelet-fista", "--output", str(png), "--metrics",
                 str(csv)])
    text = capsys.readouterr().out
    assert code == 0
    assert "4 coils, 48x48, mask equispaced, 33.3% sampled, mask seed 0; reference: fully " \
           "sampled RSS" in text
    rows = [line.split(",") for line in csv.read_text().splitlines()]
    assert [r[0] for r in rows] == ["method", "zero-filled", "sense", "l1-wavelet-fista"]
    # the zero-filled row is the recon command's number for the same scan and mask
    res = reconstruct_kspace_file(scan, "array", method="zero-filled", progress=False,
                                  mask=MaskSpec("equispaced", 3, 0.3),
                                  read_options={"axes": "coil,readout,phase"})
    assert float(rows[1][1]) == pytest.approx(res.metrics["network"]["psnr"], rel=1e-5)
    img = np.asarray(Image.open(png).convert("L"))
    assert img.shape[1] > 3 * img.shape[0] // 2 and img.std() > 20   # 4 columns, not blank
    code = main(["compare", str(scan), *AXES, "--output", str(tmp_path / "n.png")])
    assert code == 2 and "give --mask KIND --acceleration R" in capsys.readouterr().err
