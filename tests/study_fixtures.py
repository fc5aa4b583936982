"""A tiny study for the tests: 32x32 synthetic slices (10 training, 4 test), two hand-designed
mask kinds and a learned 2-D mask at 3x and 5x, zero-filled, L1-wavelet (FISTA) and a
2-phase ISTA-Net+ trained for 2 steps per mask."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

STUDY = """
name = "tiny"
seed = 0
[data]
kind = "images"
train = "{root}/train"
test = "{root}/test"
val_images = 2
[masks]
kinds = ["radial", "gaussian2d"]
accelerations = [3, 5]
learned_dims = [2]
[methods]
classical = ["zero-filled", "l1-wavelet-fista"]
lambdas = [1e-3, 1e-2]
max_iter = 10
batch_size = 3
[network]
model = "ista_net_plus"
config = {{ num_phases = 2, channels = 4 }}
max_steps = 2
batch_size = 2
checkpoint_every = 1
[report]
grid_acceleration = 5
grid_image = 1
"""


def write_images(folder: Path, n: int, seed: int, size: int = 32) -> Path:
    """``n`` seeded 8-bit slices (a blob on a noisy background) as PNG files."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        blob = np.exp(-((xx - size / 2 - rng.normal(0, 3)) ** 2 + (yy - size / 2) ** 2)
                      / (2 * rng.uniform(20, 60)))
        im = (blob * 200 + rng.uniform(0, 30, (size, size))).clip(0, 255).astype(np.uint8)
        Image.fromarray(im).save(folder / f"{folder.name}{i:02d}.png")
    return folder


def make_study(root: Path, text: str = STUDY) -> Path:
    """Images under ``root`` and the study file ``root/tiny.toml``."""
    write_images(root / "train", 10, seed=0)
    write_images(root / "test", 4, seed=1)
    path = root / "tiny.toml"
    path.write_text(text.format(root=root.as_posix()))
    return path


def png_pixels(path: Path) -> np.ndarray:
    """The PNG's pixels (H, W, channels) as uint8."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))
