"""Fast paths reachable from the training engine (training.precision / training.compile) and
from ``mri-unfold recon`` (--precision / --compile, reconstruct_volume(pad_last_batch=...))."""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from mri_unfold import fastpath
from mri_unfold.cli import main
from mri_unfold.errors import UserError
from mri_unfold.fastpath import Fp32Operator
from mri_unfold.models import build
from mri_unfold.operators import SingleCoilFourier
from mri_unfold.reconstruct import reconstruct_volume
from mri_unfold import checkpoints as ckpt
from mri_unfold.training.config import validate_protocol
from mri_unfold.training.loop import Trainer

sys.path.insert(0, str(Path(__file__).parent))
from fake_fastmri import write_fake_fastmri  # noqa: E402
from tiny_checkpoints import SHAPE  # noqa: E402


# ------------------------------------------------------------------------------ training
@pytest.fixture(scope="module")
def tiny_images(tmp_path_factory):
    """Four 33x33 seeded-noise gray PNGs: one 33x33 patch each."""
    d = tmp_path_factory.mktemp("fast_imgs")
    pixels = np.random.default_rng(5).integers(40, 216, size=(4, 33, 33), dtype=np.uint8)
    for i, a in enumerate(pixels):
        Image.fromarray(a).save(d / f"p{i}.png")
    return d


def tiny_cfg(image_dir, operator_kind="block_cs", **training):
    """2-phase, 4-channel ISTA-Net+ on four 33x33 patches, batch 2."""
    raw = {"name": "fast", "seed": 1,
           "data": {"kind": "patches", "train": str(image_dir), "patch_size": 33},
           "operator": {"kind": operator_kind, "ratio": 0.1, "seed": 2},
           "model": {"name": "ista_net_plus", "seed": 0,
                     "config": {"num_phases": 2, "channels": 4, "init": "adjoint"}},
           "training": {"epochs": 1, "batch_size": 2, "lr": 1e-3, "loss": "mse_sym",
                        "progress": False, **training}}
    return validate_protocol(raw, source="fast")


def _spy_inputs(trainer):
    """Record the (y, op) the network receives in each step."""
    seen, net = [], trainer.net

    def spy(y, op, **kw):
        seen.append((y.detach().clone(), op))
        return net(y, op, **kw)

    trainer.net = spy
    return seen


def test_bf16_measurements_and_operator_stay_fp32(tiny_images, tmp_path):
    got = {}
    for prec in ("fp32", "bf16"):
        tr = Trainer(tiny_cfg(tiny_images, precision=prec), tmp_path / prec, progress=False)
        seen = _spy_inputs(tr)
        tr.train_step(torch.stack([tr.dataset[i] for i in range(2)]))
        got[prec] = (seen[0], tr.task.op)
    (y32, op32), task_op32 = got["fp32"]
    (y16, op16), task_op16 = got["bf16"]
    assert y16.dtype == torch.float32 and y16.shape == (2, 109, 1, 1)
    assert torch.equal(y16, y32)  # measured outside autocast: bit-identical
    assert op32 is task_op32  # fp32: the operator itself
    assert isinstance(op16, Fp32Operator) and op16.op is task_op16
    # inside autocast the wrapped operator still computes fp32 Φ products
    x = torch.rand(1, 1, 33, 33, generator=torch.Generator().manual_seed(0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert op16.normal(x).dtype == torch.float32
        assert task_op16.forward(x).dtype == torch.bfloat16  # what the bug did to y


def test_bf16_learned_phi_gets_gradients_through_the_wrapper(tiny_images, tmp_path):
    tr = Trainer(tiny_cfg(tiny_images, "learned_block_cs", precision="bf16"), tmp_path / "r",
                 progress=False)
    phi0 = tr.task.op.phi.detach().clone()
    assert isinstance(tr.network_operator(tr.task.op), Fp32Operator)
    loss = tr.train_step(torch.stack([tr.dataset[i] for i in range(2)]))
    assert np.isfinite(loss)
    grad = tr.task.op.phi.grad
    assert grad is not None and grad.dtype == torch.float32 and grad.abs().max() > 0
    assert (tr.task.op.phi.detach() - phi0).abs().max() > 1e-5  # Φ moved in the step


def test_compile_key_is_a_strict_bool(tiny_images):
    assert tiny_cfg(tiny_images)["training"]["compile"] is False
    with pytest.raises(UserError, match=r"training.compile must be of type bool, got str 'yes'"):
        tiny_cfg(tiny_images, compile="yes")


def _two_step_losses(image_dir, run_dir, **training):
    tr = Trainer(tiny_cfg(image_dir, max_steps=2, **training), run_dir, progress=False)
    return tr, tr.run()["losses"]


def test_training_compile_inductor_matches_eager(tiny_images, tmp_path):
    """The one real inductor compilation of the suite (~10-30 s on CPU)."""
    _, eager = _two_step_losses(tiny_images, tmp_path / "eager")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no fallback allowed here
        tr, comp = _two_step_losses(tiny_images, tmp_path / "compiled", compile=True)
    assert tr.net.compiled and tr.net.eager is tr.model
    assert len(comp) == len(eager) == 2
    np.testing.assert_allclose(comp, eager, rtol=0, atol=1e-5)
    # checkpoints hold the uncompiled model's (same) parameters under the plain names
    c = ckpt.load_checkpoint(tmp_path / "compiled" / "last.safetensors")
    state = c.model.state_dict()
    assert state.keys() == tr.model.state_dict().keys()
    for k, v in tr.model.state_dict().items():
        assert torch.equal(state[k], v), k


def test_training_compile_failure_falls_back_with_a_warning(tiny_images, tmp_path, monkeypatch):
    _, eager = _two_step_losses(tiny_images, tmp_path / "eager")

    def no_compile(*a, **k):
        raise RuntimeError("compiler missing")

    monkeypatch.setattr(torch, "compile", no_compile)
    with pytest.warns(RuntimeWarning, match=r"torch.compile unavailable or failed "
                                            r"\(RuntimeError: compiler missing\); using the "
                                            r"eager model"):
        tr, losses = _two_step_losses(tiny_images, tmp_path / "fallback", compile=True)
    assert not tr.net.compiled
    assert losses == eager  # the eager model itself: identical


# ------------------------------------------------------------------------------ recon
def test_pad_last_batch_gives_the_unpadded_result():
    model = build("ista_net_plus", num_phases=2, channels=4, image_channels=2, seed=0)
    masks = torch.from_numpy(np.random.default_rng(0).random((5, 1, 8, 8)) < 0.5).float()
    x = torch.randn(5, 1, 8, 8, dtype=torch.complex64, generator=torch.Generator().manual_seed(1))
    y = SingleCoilFourier(masks)(x)
    seen, sizes = [], []

    def factory(idx):
        seen.append(list(idx))
        return SingleCoilFourier(masks[idx])

    model.register_forward_hook(lambda m, i, o: sizes.append(i[0].shape[0]))
    plain = reconstruct_volume(y, model, factory, batch_size=2, device="cpu", progress=False)
    assert seen == [[0, 1], [2, 3], [4]] and sizes == [2, 2, 1]
    seen.clear(), sizes.clear()
    padded = reconstruct_volume(y, model, factory, batch_size=2, device="cpu", progress=False,
                                pad_last_batch=True)
    assert seen == [[0, 1], [2, 3], [4, 4]] and sizes == [2, 2, 2]
    assert padded.shape == (5, 8, 8) and padded.dtype == np.complex64
    # the same numbers up to float32 rounding (the CPU convolution kernels of a batch of 1
    # and of 2 sum in different orders; measured: max difference 3e-7)
    np.testing.assert_array_equal(padded[:4], plain[:4])
    np.testing.assert_allclose(padded, plain, rtol=1e-5, atol=1e-6)
    seen.clear()  # a volume that fits in one batch is not padded
    reconstruct_volume(y[:3], model, factory, batch_size=4, progress=False, pad_last_batch=True)
    assert seen == [[0, 1, 2]]


def _recon(tmp_path, ckpt_path, out_name, *extra):
    f = tmp_path / "knee.h5"
    if not f.exists():
        write_fake_fastmri(f, shape=SHAPE, recon_size=(24, 24), num_slices=3, padding=0)
    out = tmp_path / out_name
    code = main(["recon", str(f), "--model", str(ckpt_path), "--mask", "random",
                 "--acceleration", "4", "--center-fraction", "0.16", "--output", str(out),
                 "--no-progress", "--batch-size", "2", *extra])
    assert code == 0
    with h5py.File(out) as hf:
        return hf["reconstruction"][()]


def test_recon_bf16_agrees_with_fp32(tmp_path, recon_complex_ckpt, capsys):
    ref = _recon(tmp_path, recon_complex_ckpt, "fp32.h5")
    bf = _recon(tmp_path, recon_complex_ckpt, "bf16.h5", "--precision", "bf16")
    assert "bf16" in capsys.readouterr().out
    assert bf.dtype == np.float32 and bf.shape == ref.shape == (3, 24, 24)
    # bf16 keeps 8 significant bits (relative rounding 2^-9 ~ 0.2 %) per convolution; over the
    # 3 phases x 4 convolutions of the tiny net the errors add up to ~1 % of the image maximum
    # (test_fastpaths allows 3 % for the same switch).  Measured here: max 0.39 %, mean 0.06 %.
    err = np.abs(bf - ref) / np.abs(ref).max()
    assert err.max() < 0.02 and err.mean() < 0.005, (err.max(), err.mean())
    assert not np.array_equal(bf, ref)  # the CNN really ran in bf16


def test_recon_fp16_on_cpu_is_a_one_line_error(tmp_path, recon_complex_ckpt, capsys):
    f = write_fake_fastmri(tmp_path / "k.h5", shape=SHAPE, padding=0)
    before = set(tmp_path.rglob("*"))
    assert main(["recon", str(f), "--model", str(recon_complex_ckpt), "--mask", "random",
                 "--acceleration", "4", "--output", str(tmp_path / "o.h5"), "--device", "cpu",
                 "--precision", "fp16"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("mri-unfold: error: --precision fp16 needs a CUDA device (running on cpu); "
                   "use --precision bf16 or fp32")
    assert set(tmp_path.rglob("*")) == before


def test_recon_compile_flag_wires_accelerate_and_padding(tmp_path, recon_complex_ckpt,
                                                          monkeypatch):
    import mri_unfold.reconstruct.pipeline as rec_mod

    paths, pads = [], []
    real_accelerate, real_volume = fastpath.accelerate, rec_mod.reconstruct_volume

    def spy_accelerate(model, path=None, **kw):
        paths.append(path)
        return real_accelerate(model, path, compile=False)  # no inductor in the recon tests

    def spy_volume(*a, **kw):
        pads.append(kw.get("pad_last_batch"))
        return real_volume(*a, **kw)

    monkeypatch.setattr(fastpath, "accelerate", spy_accelerate)
    monkeypatch.setattr(rec_mod, "reconstruct_volume", spy_volume)
    ref = _recon(tmp_path, recon_complex_ckpt, "plain.h5")
    assert paths == [] and pads == [False]
    got = _recon(tmp_path, recon_complex_ckpt, "comp.h5", "--compile")
    assert paths == [fastpath.FastPath(compile=True)] and pads == [False, True]
    # padded last batch (3 slices, batch 2): the same up to float32 rounding
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())
    _recon(tmp_path, recon_complex_ckpt, "both.h5", "--compile", "--precision", "bf16")
    assert paths[-1] == fastpath.FastPath(autocast="bf16", compile=True)
