"""The offline demo: MNI slice from nilearn, 20 % radial k-space, figure + table written."""
from __future__ import annotations

import json

import matplotlib.image as mpimg
import numpy as np
import pytest

from mri_unfold.cli import main
from mri_unfold.cli.demo_data import DEFAULT_SLICE, load_demo_slice, mni_template_path, pad_to_shape
from mri_unfold.errors import UserError


def test_template_comes_from_nilearn_and_slice_is_prepared():
    p = mni_template_path()
    assert p.name == "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
    assert "nilearn" in p.parts
    img = load_demo_slice()
    assert img.shape == (256, 256) and img.dtype == np.float32
    assert img.min() == 0.0 and img.max() == 1.0
    # 233 x 197 slice padded symmetrically: rows 11..243, columns 29..225 hold the data
    assert not img[:11].any() and not img[244:].any()
    assert not img[:, :29].any() and not img[:, 226:].any()
    assert img.mean() > 0.1
    assert not np.array_equal(load_demo_slice(DEFAULT_SLICE + 10), img)


def test_demo_slice_errors_and_padding():
    with pytest.raises(UserError, match="--slice 500: the template has axial slices 0..188"):
        load_demo_slice(500)
    with pytest.raises(UserError, match="--slice -1: the template has axial slices"):
        load_demo_slice(-1)
    assert pad_to_shape(np.ones((1, 2)), (3, 4)).tolist() == [[0, 0, 0, 0], [0, 1, 1, 0],
                                                              [0, 0, 0, 0]]
    with pytest.raises(ValueError, match="does not fit"):
        pad_to_shape(np.ones((5, 5)), (4, 4))


def _csv(path):
    rows = [line.split(",") for line in path.read_text().splitlines()]
    assert rows[0] == ["method", "psnr_db", "ssim", "nmse"]
    return {r[0]: (float(r[1]), float(r[2])) for r in rows[1:]}


def test_demo_runs_without_weights(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--output", str(out), "--weights", str(tmp_path / "none")]) == 0
    text = capsys.readouterr().out
    assert "note: no trained network weights found" in text
    assert "methods run: zero-filled, L1-wavelet" in text
    assert f"wrote {out / 'comparison.png'}" in text
    png = mpimg.imread(out / "comparison.png")
    assert png.shape[:2] == (640, 900) and png[..., :3].std() > 0.1
    res = _csv(out / "metrics.csv")
    assert set(res) == {"zero-filled", "L1-wavelet"}
    assert 24 < res["zero-filled"][0] < res["L1-wavelet"][0]  # L1-wavelet beats zero-filled
    assert res["L1-wavelet"][1] > res["zero-filled"][1]


def test_demo_runs_bundled_style_network(tmp_path, capsys):
    """A checkpoint in the weights folder (+ json name) is run and reported."""
    import torch

    from mri_unfold.models import build
    from mri_unfold.operators import SingleCoilFourier
    from mri_unfold.checkpoints import save_checkpoint

    wdir = tmp_path / "weights"
    wdir.mkdir()
    model = build("ista_net_plus", num_phases=2, channels=4, image_channels=1, seed=0)
    op = SingleCoilFourier(np.ones((8, 8)), real_input=True)
    save_checkpoint(wdir / "ista_net_plus_mri.safetensors", model, op,
                    {"kind": "single_coil", "layout": "centered", "real_input": True})
    (wdir / "ista_net_plus_mri.json").write_text(json.dumps({"name": "ISTA-Net+ (ours)"}))
    (wdir / "broken.safetensors").write_bytes(b"not a checkpoint")
    with torch.random.fork_rng():
        assert main(["demo", "--output", str(tmp_path / "o"), "--weights", str(wdir)]) == 0
    text = capsys.readouterr().out
    assert "methods run: zero-filled, L1-wavelet, ISTA-Net+ (ours)" in text
    assert "note: skipped broken.safetensors" in text
    assert set(_csv(tmp_path / "o" / "metrics.csv")) == {"zero-filled", "L1-wavelet",
                                                         "ISTA-Net+ (ours)"}


def test_demo_bad_output_is_one_line_error(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["demo", "--output", str(f)]) == 2
    assert capsys.readouterr().err.strip() == (f"mri-unfold: error: --output {f}: exists and is "
                                               "not a folder")


def test_demo_with_the_bundled_weights(tmp_path, capsys):
    """The zoo's best 20 % networks per architecture (ISTA-Net+ and MADUN) run by default and
    beat both classical methods on the demo slice (measured: ISTA-Net+ 40.21 dB, MADUN
    36.97, L1-wavelet 33.20, zero-filled 27.76)."""
    from mri_unfold.models.zoo import best_models

    # the demo's default selection
    assert best_models(0.2) == ["ista_net_plus_radial20", "madun_radial20"]
    assert main(["demo", "--output", str(tmp_path / "d")]) == 0
    text = capsys.readouterr().out
    assert "methods run: zero-filled, L1-wavelet, ISTA-Net+ (ours), MADUN (ours)" in text
    res = _csv(tmp_path / "d" / "metrics.csv")
    assert res["ISTA-Net+ (ours)"][0] == pytest.approx(40.21, abs=0.02)
    assert res["MADUN (ours)"][0] == pytest.approx(36.97, abs=0.02)
    for net in ("ISTA-Net+ (ours)", "MADUN (ours)"):
        assert res[net][0] > res["L1-wavelet"][0] + 3.0
        assert res[net][1] > res["L1-wavelet"][1]
