"""comparison_grid: a real, non-blank PNG of the expected size, metrics in titles, atomic write."""
from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np
import pytest
import torch

from mri_unfold.figures import comparison_grid, image_metrics


def _images():
    rng = np.random.default_rng(0)
    t = np.zeros((32, 32), np.float32)
    t[8:24, 8:24] = 1.0
    return t, {"zero-filled": t + 0.1 * rng.standard_normal(t.shape).astype(np.float32),
               "net": torch.from_numpy(t + 0.01)[None, None]}


def test_png_written_with_expected_size_and_content(tmp_path):
    t, recons = _images()
    mask = np.zeros((32, 32))
    mask[:, ::3] = 1
    out = comparison_grid(t, recons, mask, tmp_path / "grid.png", title="test", dpi=50)
    assert out == tmp_path / "grid.png"
    img = mpimg.imread(out)
    # 3 columns x 3 in, 6.4 in high, 50 dpi
    assert img.shape[:2] == (320, 450)
    assert img[..., :3].std() > 0.1  # not blank
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]  # no temp files left


def test_image_metrics_values():
    t = np.ones((16, 16))
    p = t - 0.1  # constant error 0.1, data range 1 -> PSNR 20 dB, NMSE 0.01
    m = image_metrics(t, p)
    assert m["psnr"] == pytest.approx(20.0, abs=1e-9)
    assert m["nmse"] == pytest.approx(0.01, rel=1e-9)
    assert image_metrics(t, t, data_range=1.0)["ssim"] == pytest.approx(1.0)


def test_errors_and_no_partial_output(tmp_path):
    t, recons = _images()
    with pytest.raises(ValueError, match="recons is empty"):
        comparison_grid(t, {}, np.ones((32, 32)), tmp_path / "a.png")
    with pytest.raises(ValueError, match=r"reconstruction 'bad' has shape \(16, 16\)"):
        comparison_grid(t, {"bad": np.zeros((16, 16))}, np.ones((32, 32)), tmp_path / "a.png")
    with pytest.raises(ValueError, match=r"target: expected a 2-D image"):
        comparison_grid(np.zeros((2, 3, 4)), recons, np.ones((32, 32)), tmp_path / "a.png")
    with pytest.raises(OSError):
        comparison_grid(t, recons, np.ones((32, 32)), tmp_path / "missing" / "a.png")
    assert list(tmp_path.iterdir()) == []
