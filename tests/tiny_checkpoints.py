"""Small trained ISTA-Net+ checkpoints for the reconstruction tests (built once per session by
the ``recon_complex_ckpt`` / ``recon_real_ckpt`` fixtures of ``conftest.py``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from fake_fastmri import phantom
from mri_unfold.masks import make_mask
from mri_unfold.models import build
from mri_unfold.operators import SingleCoilFourier
from mri_unfold.checkpoints import save_checkpoint

#: k-space / image shape of the complex (single-coil fastMRI-like) checkpoint's training data.
SHAPE = (40, 33)
#: image shape of the real-valued (NIfTI magnitude) checkpoint's training data.
REAL_SHAPE = (32, 32)
#: Adam steps; 40 keeps every assertion of tests/test_recon.py with a margin of >= 1.4 dB
#: (60 steps were used before; measured gains over zero-filled: 2.5 and 5.4 dB, need 1).
STEPS = 40


def train_tiny(real: bool, shape, mask_fn, steps: int, path: Path) -> Path:
    """Overfit a tiny ISTA-Net+ on fake phantoms (a 'small trained checkpoint') and save it.

    Global torch RNG state is left untouched (private generator, seeded model).
    """
    gen = torch.Generator().manual_seed(0)
    model = build("ista_net_plus", num_phases=3, channels=8, image_channels=1 if real else 2,
                  seed=0)
    imgs = np.stack([phantom(shape, s) for s in range(4)])
    imgs = np.abs(imgs) if real else imgs
    x_all = torch.from_numpy(imgs / np.abs(imgs).max(axis=(1, 2), keepdims=True))[:, None]
    masks = [mask_fn(i) for i in range(8)]
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    for _ in range(steps):
        i = int(torch.randint(0, len(masks), (1,), generator=gen))
        op = SingleCoilFourier(masks[i], real_input=real)
        x = x_all.float() if real else x_all.to(torch.complex64)
        loss = (model(op(x), op) - x).abs().pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    cfg = {"kind": "single_coil", "layout": "centered", "real_input": real}
    save_checkpoint(path, model, SingleCoilFourier(masks[0], real_input=real), cfg)
    return path


def complex_checkpoint(path: Path, steps: int = STEPS) -> Path:
    """2-channel model trained on random 4x masks (16 % centre) of ``SHAPE`` phantoms."""
    def mask_fn(i):
        return make_mask("random", SHAPE, acceleration=4, center_fraction=0.16, seed=100 + i).mask

    return train_tiny(False, SHAPE, mask_fn, steps, path)


def real_checkpoint(path: Path, steps: int = STEPS) -> Path:
    """1-channel model trained on radial 4x masks of ``REAL_SHAPE`` magnitude phantoms."""
    def mask_fn(i):
        return make_mask("radial", REAL_SHAPE, acceleration=4, seed=i).mask

    return train_tiny(True, REAL_SHAPE, mask_fn, steps, path)
