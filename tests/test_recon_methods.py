"""Classical reconstruction through the one pipeline: CG-SENSE (any operator), ``recon
--method`` without a network, ``.npy`` output, and where the mask seed comes from."""
from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from mri_unfold import metrics
from mri_unfold.cli import main
from mri_unfold.data import birdcage_coil_maps
from mri_unfold.operators import MultiCoilFourier, SingleCoilFourier
from mri_unfold.reconstruct import reconstruct_fastmri
from mri_unfold.solvers import cg_sense, conjugate_gradient

sys.path.insert(0, str(Path(__file__).parent))
from fake_fastmri import phantom, write_fake_fastmri  # noqa: E402

SHAPE, RECON = (32, 28), (20, 20)


def test_cg_sense_inverts_a_well_posed_sense_problem():
    g = torch.Generator().manual_seed(0)
    x = torch.from_numpy(np.stack([phantom((16, 14), s) for s in range(2)]))[:, None]
    maps = torch.from_numpy(birdcage_coil_maps(4, (16, 14)))
    mask = torch.zeros(16, 14, dtype=torch.bool)
    mask[::2] = True  # 2x along the rows, 4 coils: well posed
    mask[6:10] = True
    op = MultiCoilFourier(mask, maps)
    rec = cg_sense(op(x), op, max_iter=60, tol=1e-10)
    assert float((rec - x).abs().max()) < 1e-3 * float(x.abs().max())
    # fully sampled single-coil: the normal operator is the identity, one step suffices
    full = SingleCoilFourier(torch.ones(16, 14))
    torch.testing.assert_close(cg_sense(full(x), full, max_iter=1), x, rtol=1e-5, atol=1e-5)
    # real-domain operators: CG in the real inner product
    real = SingleCoilFourier(mask, real_input=True)
    xr = x.abs().float()
    b = real.adjoint(real(xr))
    sol = conjugate_gradient(real.normal, b, lamda=1e-3, max_iter=100, tol=1e-10)
    torch.testing.assert_close(real.normal(sol) + 1e-3 * sol, b, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="lamda must be >= 0"):
        conjugate_gradient(real.normal, b, lamda=-1.0)


def test_recon_methods_without_a_network(tmp_path, capsys):
    f = write_fake_fastmri(tmp_path / "scan.h5", challenge="multicoil", num_slices=2,
                           shape=SHAPE, recon_size=RECON, num_coils=4, padding=0)
    with h5py.File(f) as hf:
        target = hf["reconstruction_rss"][()]
    # fully sampled, zero-filled: the RSS of the coil images is the stored target
    out = tmp_path / "zf.npy"
    assert main(["recon", str(f), "--output", str(out), "--no-progress"]) == 0
    zf = np.load(out)
    assert zf.shape == (2, *RECON) and zf.dtype == np.float32
    assert metrics.psnr(target, zf) > 60
    assert "method zero-filled" in capsys.readouterr().out
    # 2x undersampled: CG-SENSE with ESPIRiT maps beats zero-filled
    args = ["--mask", "equispaced", "--acceleration", "2", "--center-fraction", "0.25",
            "--espirit-crop", "0", "--no-progress"]
    assert main(["recon", str(f), "--method", "sense", "--output", str(tmp_path / "s.npy"),
                 *args]) == 0
    assert main(["recon", str(f), "--output", str(tmp_path / "z.npy"), *args]) == 0
    text = capsys.readouterr().out
    assert "mask seed 0 (the given seed, independent of the file name; reproduce with --mask " \
        "equispaced --acceleration 2 --center-fraction 0.25 --seed 0)" in text
    sense = metrics.psnr(target, np.load(tmp_path / "s.npy"))
    under = metrics.psnr(target, np.load(tmp_path / "z.npy"))
    assert sense > under + 3.0, (sense, under)


def test_recon_method_errors(tmp_path, capsys, recon_complex_ckpt):
    f = write_fake_fastmri(tmp_path / "scan.h5", num_slices=1, shape=SHAPE, recon_size=RECON)
    before = set(tmp_path.iterdir())
    assert main(["recon", str(f), "--model", str(recon_complex_ckpt), "--method", "sense",
                 "--output", str(tmp_path / "o.npy")]) == 2
    assert "give either --model CKPT or --method METHOD, not both" in capsys.readouterr().err
    assert main(["recon", str(f), "--method", "zero-filled", "--output",
                 str(tmp_path / "o.png")]) == 2
    assert "unsupported output (expected .h5, .nii/.nii.gz or .npy)" in capsys.readouterr().err
    assert set(tmp_path.iterdir()) == before


def test_api_reconstructs_with_a_method(tmp_path):
    f = write_fake_fastmri(tmp_path / "scan.h5", num_slices=2, shape=SHAPE, recon_size=RECON)
    res = reconstruct_fastmri(f, method="zero-filled", progress=False)
    assert res.reconstruction.shape == (2, *RECON) and res.info["challenge"] == "singlecoil"
    assert res.metrics["network"]["psnr"] > 60  # fully sampled: zero-filled is the target
    with pytest.raises(ValueError, match="exactly one of model or method"):
        reconstruct_fastmri(f, progress=False)
