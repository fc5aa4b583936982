"""CS-NI / CS-MRI evaluation protocols and the reproduction of the published numbers.

The default run checks ISTA-Net+ on Set11 at 25 % and on the brain slices at 20 %; the other
rows of the tables are marked ``full``."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from mri_unfold.evaluation import reproduce
from mri_unfold.models import build
from mri_unfold.operators import GaussianBlockCS
from mri_unfold.metrics import psnr_255, ssim_255
from natural_cs.evaluate import evaluate_folder, reconstruct_luma
from mri_unfold.data.luma import read_image, recombine, rgb_to_ycrcb, ycrcb_to_rgb

TOL = 0.01  # dB, agreement with the published averages


# ---------------------------------------------------------------------- images / Y channel
def test_ycrcb_hand_values():
    px = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [200, 200, 200]]], dtype=np.uint8)
    # Y = (4899 R + 9617 G + 1868 B + 8192) >> 14 ...
    # (values checked against cv2.cvtColor)
    assert rgb_to_ycrcb(px)[0].tolist() == [[76, 255, 85], [150, 21, 43], [29, 107, 255],
                                             [200, 128, 128]]
    assert ycrcb_to_rgb(rgb_to_ycrcb(px))[0].tolist() == [[254, 0, 0], [0, 255, 0], [0, 0, 254],
                                                          [200, 200, 200]]


def test_ycrcb_bit_exact_against_opencv():
    import cv2  # test extra: the authors' evaluation computes Y with OpenCV

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (32, 512, 3), dtype=np.uint8)
    assert np.array_equal(rgb_to_ycrcb(rgb), cv2.cvtColor(rgb[..., ::-1].copy(), cv2.COLOR_BGR2YCrCb))
    ycc = rng.integers(0, 256, (32, 512, 3), dtype=np.uint8)
    assert np.array_equal(ycrcb_to_rgb(ycc), cv2.cvtColor(ycc, cv2.COLOR_YCrCb2BGR)[..., ::-1])


def test_read_image_gray_palette_colour(tmp_path, shared):
    parrots = read_image(shared / "data" / "natural" / "Set11" / "Parrots.tif")  # palette, gray
    assert not parrots.is_color and parrots.luma.shape == (256, 256) and parrots.luma.dtype == np.uint8
    rgb = np.random.default_rng(1).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    col = read_image(tmp_path / "c.png")
    assert col.is_color and np.array_equal(col.luma, rgb_to_ycrcb(rgb)[..., 0])
    Image.fromarray(np.zeros((4, 4), np.uint16)).save(tmp_path / "deep.png")
    with pytest.raises(ValueError, match=r"deep.png: unsupported image mode 'I;16'"):
        read_image(tmp_path / "deep.png")
    with pytest.raises(FileNotFoundError, match="missing.png: no such image file"):
        read_image(tmp_path / "missing.png")


def test_recombine_truncates_like_uint8_assignment():
    gray = read_image.__globals__["TestImage"](np.zeros((1, 2), np.uint8), None)
    assert recombine(gray, np.array([[12.99, 300.0]])).tolist() == [[12, 255]]


def test_psnr_ssim_255():
    ref = np.full((8, 8), 100, np.uint8)
    assert psnr_255(ref.astype(np.float64) + 1.0, ref) == pytest.approx(20 * np.log10(255.0))
    assert psnr_255(ref, ref) == 100.0
    assert ssim_255(ref.astype(np.float64), ref) == pytest.approx(1.0)


# ---------------------------------------------------------------------- CS-NI protocol
class _Adjoint(torch.nn.Module):
    """Stub model: x = Φᵀy; records the measurement shapes it saw."""

    def __init__(self):
        super().__init__()
        self.shapes = []

    def forward(self, y, op):
        self.shapes.append(tuple(y.shape))
        return op.adjoint(y)


def test_authors_padding_adds_a_full_block_on_multiples():
    op = GaussianBlockCS(ratio=0.25, block_size=11, seed=0)
    m = _Adjoint()
    reconstruct_luma(m, op, np.zeros((22, 15), np.uint8))
    reconstruct_luma(m, op, np.zeros((22, 15), np.uint8), pad_convention="minimal")
    assert m.shapes == [(1, 30, 3, 2), (1, 30, 2, 2)]


def test_evaluate_folder_writes_csv_and_pngs(tmp_path):
    src, out = tmp_path / "imgs", tmp_path / "out"
    src.mkdir()
    rng = np.random.default_rng(2)
    gray = rng.integers(0, 256, (20, 25), dtype=np.uint8)
    rgb = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(gray).save(src / "a_gray.png")
    Image.fromarray(rgb).save(src / "b_col.png")
    op = GaussianBlockCS(ratio=0.5, block_size=8, seed=0)
    model = build("ista_net", num_phases=2, channels=4, image_channels=1, seed=0)
    res = evaluate_folder(model, op, src, out_dir=out, progress=False)
    assert [r["image"] for r in res["images"]] == ["a_gray.png", "b_col.png"]
    expect = psnr_255(gray, reconstruct_luma(model, op, gray) * 255)
    assert res["images"][0]["psnr"] == pytest.approx(expect, abs=1e-12)
    assert res["psnr"] == pytest.approx(np.mean([r["psnr"] for r in res["images"]]))
    assert sorted(p.name for p in out.iterdir()) == ["a_gray.png", "b_col.png", "results.csv"]
    lines = (out / "results.csv").read_text().splitlines()
    assert lines[0] == "image,height,width,psnr,ssim"
    assert lines[1].startswith("a_gray.png,20,25,") and lines[-1].startswith("average,,,")
    assert f"{res['psnr']:.4f}" in lines[-1]
    saved = np.asarray(Image.open(out / "b_col.png"))
    assert saved.shape == (16, 16, 3)
    assert Image.open(out / "a_gray.png").mode == "L"
    # colour: reconstructed Y (truncated to uint8) with the original Cr/Cb, back to RGB
    ycc = rgb_to_ycrcb(rgb)
    ycc[..., 0] = (reconstruct_luma(model, op, ycc[..., 0]) * 255).astype(np.uint8)
    assert np.array_equal(saved, ycrcb_to_rgb(ycc))


def test_evaluate_folder_without_images(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    op = GaussianBlockCS(ratio=0.25, block_size=8, seed=0)
    with pytest.raises(ValueError, match="no images found"):
        evaluate_folder(_Adjoint(), op, tmp_path, progress=False)
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        evaluate_folder(_Adjoint(), op, tmp_path / "nope", progress=False)


# ---------------------------------------------------------------------- published numbers
#: Our average PSNRs (dB) of every row, measured before the core redesign (commit 143a3f7,
#: ``python -m mri_unfold.evaluation.reproduce --json``) and unchanged since (bit-identical).
PINNED = {("cs", "ista_net", 10): 26.261033, ("cs", "ista_net", 25): 31.850148,
          ("cs", "ista_net", 30): 33.087060, ("cs", "ista_net", 40): 35.380019,
          ("cs", "ista_net_plus", 10): 26.485555, ("cs", "ista_net_plus", 25): 32.435700,
          ("cs", "ista_net_plus", 30): 33.696121, ("cs", "ista_net_plus", 40): 36.019556,
          ("mri", "ista_net_plus", 10): 34.628153, ("mri", "ista_net_plus", 20): 38.702933,
          ("mri", "ista_net_plus", 30): 40.973975, ("mri", "ista_net_plus", 40): 42.654240,
          ("mri", "ista_net_plus", 50): 44.118000}


def _pinned(row) -> None:
    assert row.ours == pytest.approx(PINNED[(row.task, row.arch, row.ratio)], abs=1e-4), row


@pytest.mark.slow
def test_reproduce_ista_net_plus_set11_25(shared):
    row = reproduce.reproduce_cs("ista_net_plus", 25, root=shared)
    assert abs(row.ours - 32.44) <= TOL, row
    _pinned(row)


@pytest.mark.slow
def test_reproduce_ista_net_plus_brain_20(shared):
    row = reproduce.reproduce_mri(20, root=shared)
    assert abs(row.ours - 38.70) <= TOL, row
    _pinned(row)


@pytest.mark.full
@pytest.mark.parametrize("arch,ratio", [(a, r) for a, t in reproduce.PUBLISHED_CS.items() for r in t
                                        if (a, r) != ("ista_net_plus", 25)])
def test_reproduce_set11_table(shared, arch, ratio):
    row = reproduce.reproduce_cs(arch, ratio, root=shared)
    assert abs(row.diff) <= TOL, row
    _pinned(row)


@pytest.mark.full
@pytest.mark.parametrize("ratio", [10, 30, 40, 50])
def test_reproduce_brain_table(shared, ratio):
    row = reproduce.reproduce_mri(ratio, root=shared)
    assert abs(row.diff) <= TOL, row
    _pinned(row)


def test_reproduce_script_formats_and_writes_json(tmp_path, monkeypatch, capsys):
    fake = {("cs", "ista_net", 10): 26.2612}
    monkeypatch.setattr(reproduce, "reproduce_cs", lambda a, r, d, progress=False: reproduce.Row(
        "cs", a, r, fake[("cs", a, r)], 0.75, reproduce.PUBLISHED_CS[a][r]))
    assert reproduce.main(["--only", "cs", "--arch", "ista_net", "--ratios", "10",
                           "--json", str(tmp_path / "t.json")]) == 0
    out = capsys.readouterr().out
    assert "cs    ista_net         10%    26.26     26.26   +0.00  0.7500" in out
    data = json.loads((tmp_path / "t.json").read_text())
    assert data == [dict(task="cs", arch="ista_net", ratio=10, ours=26.2612, ssim=0.75,
                         published=26.26, diff=pytest.approx(0.0012))]
    assert reproduce.main(["--only", "mri", "--ratios", "25"]) == 2
