"""Scan-specific zero-shot adaptation (issue 21): adapt_to_scan, the pipeline's adapt hook,
``recon --adapt`` (outputs, reproducibility, refusals) and real-valued models on k-space
files."""
from __future__ import annotations

import hashlib
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mri_unfold.checkpoints import load_checkpoint
from mri_unfold.cli import main
from mri_unfold.data import collate_samples, simulate_kspace
from mri_unfold.errors import UserError
from mri_unfold.fft import ifft2
from mri_unfold.masks import make_mask
from mri_unfold.masks.split import SplitSettings
from mri_unfold.operators import KSpaceOperatorFactory
from mri_unfold.reconstruct import reconstruct_samples
from mri_unfold.training.zero_shot import AdaptSettings, ScanAdapter, adapt_to_scan

sys.path.insert(0, str(Path(__file__).parent))
from fake_fastmri import phantom  # noqa: E402
from tiny_checkpoints import REAL_SHAPE  # noqa: E402

FAST = AdaptSettings(max_steps=12, lr=1e-3, split=SplitSettings(0.3), holdout=0.15,
                     val_every=3, patience=10, batch_size=2)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _slices(n: int = 2, seed: int = 0):
    mask = make_mask("radial", REAL_SHAPE, acceleration=3, seed=seed).mask
    out = []
    for k in range(n):
        img = np.abs(phantom(REAL_SHAPE, k)).astype(np.float32)
        out.append(simulate_kspace(img / img.max(), mask, fname="scan", slice_index=k))
    return out


def _model(recon_real_ckpt):
    return load_checkpoint(recon_real_ckpt).model


def _same(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_adaptation_keeps_the_best_weights_and_never_reads_a_reference(recon_real_ckpt):
    model = _model(recon_real_ckpt)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    slices = [s.replace(target=torch.full_like(s.target, math.nan)) for s in _slices()]
    fac = KSpaceOperatorFactory(real_input=True)
    state = torch.get_rng_state()
    res = adapt_to_scan(model, slices, fac, FAST, progress=False)
    assert torch.equal(torch.get_rng_state(), state)              # global RNG untouched
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    steps = [h["step"] for h in res.history]
    assert steps == [0, 3, 6, 9, 12] and res.steps == 12 and res.stopped == "max_steps"
    losses = {h["step"]: h["val_loss"] for h in res.history}
    assert losses[res.best_step] == min(losses.values())
    assert min(losses.values()) < losses[0]                       # it learned something
    assert all(math.isfinite(h["train_loss"]) for h in res.history[1:])
    # the kept weights are those of the best validation: re-validating them gives its loss
    again = adapt_to_scan(res.model, slices, fac, AdaptSettings(**{**FAST.__dict__,
                                                                   "max_steps": 1}),
                          progress=False)
    assert again.history[0]["val_loss"] == pytest.approx(losses[res.best_step], rel=1e-5)
    # same settings and seed: the same weights; another seed: others
    assert _same(adapt_to_scan(model, slices, fac, FAST, progress=False).model, res.model)
    other = adapt_to_scan(model, slices, fac, AdaptSettings(**{**FAST.__dict__, "seed": 1}),
                          progress=False)
    assert not _same(other.model, res.model)


def test_early_stopping_and_time_budget(recon_real_ckpt):
    model, fac = _model(recon_real_ckpt), KSpaceOperatorFactory(real_input=True)
    patient = AdaptSettings(**{**FAST.__dict__, "lr": 0.5, "patience": 1, "max_steps": 40})
    res = adapt_to_scan(model, _slices(1), fac, patient, progress=False)
    assert res.stopped == "patience" and res.steps < 40
    assert res.history[-1]["val_loss"] >= min(h["val_loss"] for h in res.history)
    timed = AdaptSettings(**{**FAST.__dict__, "max_steps": 10_000, "max_seconds": 0.5,
                                    "patience": 10**6})
    res = adapt_to_scan(model, _slices(1), fac, timed, progress=False)
    assert res.stopped == "max_seconds" and res.steps < 10_000


def test_pipeline_adapts_per_scan_or_per_slice(recon_real_ckpt):
    model, slices = _model(recon_real_ckpt), _slices(3)
    plain = reconstruct_samples(slices, model, real_input=True, progress=False)
    per_scan = ScanAdapter(FAST, "scan", progress=False)
    scan = reconstruct_samples(slices, model, real_input=True, progress=False, adapt=per_scan)
    assert [idx for idx, _ in per_scan.results] == [[0, 1, 2]]
    per_slice = ScanAdapter(FAST, "slice", progress=False)
    each = reconstruct_samples(slices, model, real_input=True, progress=False, adapt=per_slice)
    assert [idx for idx, _ in per_slice.results] == [[0], [1], [2]]
    # the reconstruction is the adapted network's on all measurements
    b = collate_samples(slices[1:2])
    fac = KSpaceOperatorFactory(real_input=True)
    with torch.no_grad():
        x = per_slice.results[1][1].model(fac.measurements(b), fac.for_batch(b))[0, 0].abs()
    np.testing.assert_allclose(each.reconstruction[1], x.numpy(), rtol=1e-5, atol=1e-6)
    assert not np.array_equal(scan.reconstruction, plain.reconstruction)
    assert set(per_scan.summary()["adaptations"][0]) >= {"steps", "best_step", "seconds"}
    with pytest.raises(UserError, match="adaptation per 'volume'"):
        ScanAdapter(FAST, "volume")


def test_settings_are_checked():
    for kw, msg in [({"max_steps": 0}, "max_steps must be >= 1, got 0"),
                    ({"holdout": 1.0}, r"holdout must be in \(0, 1\), got 1.0"),
                    ({"lr": float("nan")}, "lr must be > 0"),
                    ({"loss": "l3"}, "adaptation loss 'l3' is not one of l1l2, l2, l1"),
                    ({"precision": "fp16"}, "precision must be fp32 or bf16")]:
        with pytest.raises(UserError, match=msg):
            AdaptSettings(**kw)


# ------------------------------------------------------------------------------ the command
def _kspace_file(tmp_path: Path, name: str = "k.npy") -> Path:
    """Single-coil k-space of a real-valued phantom, radial 3x, centred (measurements only)."""
    s = _slices(1)[0]
    path = tmp_path / name
    np.save(path, s.kspace[0].numpy())
    return path


def _digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_recon_adapt_writes_images_and_weights_reproducibly(tmp_path, recon_real_ckpt, capsys):
    k = _kspace_file(tmp_path)
    digest = _digest(k)
    args = ["recon", str(k), "--model", str(recon_real_ckpt), "--adapt", "--adapt-steps", "6",
            "--adapt-lr", "1e-3", "--seed", "3", "--no-progress"]
    assert main([*args, "--output", str(tmp_path / "a.npy"),
                 "--save-adapted", str(tmp_path / "a.safetensors")]) == 0
    out = capsys.readouterr().out
    assert "wrote " + str(tmp_path / "a.safetensors") + "  (adapted weights)" in out
    assert "adapted to the scan: 6 steps" in out and "held-out k-space loss" in out
    assert "model ista_net_plus (real images)" in out
    assert _digest(k) == digest                                   # the input is untouched
    ck = load_checkpoint(tmp_path / "a.safetensors")
    assert ck.info["source"] == "mri-unfold recon --adapt" and ck.info["steps"] == 6
    assert main([*args, "--output", str(tmp_path / "b.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))
    # the saved network reconstructs the same image as the adapted run
    assert main(["recon", str(k), "--model", str(tmp_path / "a.safetensors"), "--output",
                 str(tmp_path / "c.npy"), "--no-progress"]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "c.npy"), np.load(tmp_path / "a.npy"),
                               rtol=1e-5, atol=1e-6)
    # an existing weights file is never replaced without --overwrite, and nothing is written
    assert main([*args, "--output", str(tmp_path / "d.npy"),
                 "--save-adapted", str(tmp_path / "a.safetensors")]) == 2
    assert "--save-adapted" in capsys.readouterr().err and not (tmp_path / "d.npy").exists()


def test_recon_adapt_per_slice_and_from_scratch(tmp_path, capsys):
    s = _slices(2)
    k = tmp_path / "two.npy"
    np.save(k, torch.stack([x.kspace for x in s]).numpy())       # (slice, coil, H, W)
    assert main(["recon", str(k), "--arch", "ista_net_plus", "--adapt", "--adapt-per", "slice",
                 "--adapt-steps", "3", "--output", str(tmp_path / "o.npy"), "--save-adapted",
                 str(tmp_path / "w.safetensors"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "adapted to slice 0" in out and "adapted to slice 1" in out
    assert sorted(p.name for p in tmp_path.glob("w_slice*.safetensors")) == [
        "w_slice000.safetensors", "w_slice001.safetensors"]
    assert np.load(tmp_path / "o.npy").shape == (2, *REAL_SHAPE)


@pytest.mark.parametrize("extra,msg", [
    (["--adapt-steps", "5"], "--adapt-steps only apply with --adapt"),
    (["--save-adapted", "w.safetensors"], "--save-adapted only apply with --adapt"),
    (["--adapt", "--method", "sense"], "--adapt fine-tunes a network; --method sense is a "
                                       "classical method"),
    (["--adapt", "--arch", "nonet"], "--arch 'nonet' is not a registered architecture"),
    (["--adapt", "--adapt-steps", "0", "--model", "REAL"], "--adapt-steps must be >= 1, got 0"),
    (["--adapt", "--adapt-split", "1.5", "--model", "REAL"],
     r"--adapt-split: split ratio must be in \(0, 1\), got 1.5"),
    (["--adapt", "--model", "REAL", "--save-adapted", "w.pt"],
     "--save-adapted w.pt: a checkpoint is a .safetensors file"),
])
def test_recon_adapt_refusals(tmp_path, recon_real_ckpt, capsys, extra, msg):
    k = _kspace_file(tmp_path)
    extra = [str(recon_real_ckpt) if e == "REAL" else e for e in extra]
    before = sorted(tmp_path.iterdir())
    rc = main(["recon", str(k), "--output", str(tmp_path / "o.npy"), "--no-progress", *extra])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("mri-unfold: error: ") and err.count("\n") == 1
    assert msg.replace("\\", "") in err or __import__("re").search(msg, err), err
    assert sorted(tmp_path.iterdir()) == before


def test_adapting_needs_something_to_hold_out(tmp_path, recon_real_ckpt, capsys):
    """A mask of calibration lines only cannot be split: one line, exit 2, nothing written."""
    img = np.abs(phantom(REAL_SHAPE, 0)).astype(np.float32)
    mask = np.zeros(REAL_SHAPE, np.float32)
    mask[:, 14:18] = 1                                            # 4 centre lines, all ACS
    k = tmp_path / "acs.npy"
    np.save(k, simulate_kspace(img, mask).kspace[0].numpy())
    rc = main(["recon", str(k), "--model", str(recon_real_ckpt), "--adapt", "--output",
               str(tmp_path / "o.npy"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "measured locations are in the ACS region" in err
    assert not (tmp_path / "o.npy").exists()


def test_a_real_valued_model_reconstructs_kspace_files(tmp_path, recon_real_ckpt, capsys):
    """A real-valued (CS-MRI) network on a single-coil k-space file, no image anywhere."""
    s = _slices(1)[0]
    k = _kspace_file(tmp_path)
    assert main(["recon", str(k), "--model", str(recon_real_ckpt), "--output",
                 str(tmp_path / "r.npy"), "--no-progress"]) == 0
    assert "model ista_net_plus (real images)" in capsys.readouterr().out
    got = np.load(tmp_path / "r.npy")[0]
    fac = KSpaceOperatorFactory(real_input=True)
    b = collate_samples([s])
    scale = float(ifft2(s.kspace, "centered").abs().max())
    with torch.no_grad():   # the file is normalised by its zero-filled peak, then scaled back
        x = load_checkpoint(recon_real_ckpt).model(fac.measurements(b) / scale,
                                                   fac.for_batch(b))[0, 0].abs() * scale
    np.testing.assert_allclose(got, x.numpy(), rtol=1e-4, atol=1e-5)


def test_a_network_that_does_not_fit_the_scan_is_refused(recon_complex_ckpt):
    """A complex (2-channel) network asked to adapt on real-valued images: one clear error."""
    model = load_checkpoint(recon_complex_ckpt).model
    with pytest.raises(UserError, match=r"the network does not fit this scan's operator "
                                        r"\(real images\)"):
        adapt_to_scan(model, _slices(1), KSpaceOperatorFactory(real_input=True), FAST,
                      progress=False)


def test_adaptation_on_a_non_cartesian_scan_splits_the_sample_points(recon_complex_ckpt):
    """Radial k-space through the NUFFT operator: Γ, Θ and Λ are sets of sample points."""
    from mri_unfold.data import simulate_noncartesian
    from mri_unfold.trajectories import make_trajectory
    img = phantom((32, 32), 0).astype(np.complex64)
    t = make_trajectory("radial", 32, acceleration=2)
    s = simulate_noncartesian(img / np.abs(img).max(), t).replace(target=None, image=None)
    model = load_checkpoint(recon_complex_ckpt).model
    res = adapt_to_scan(model, [s], KSpaceOperatorFactory(),
                        AdaptSettings(**{**FAST.__dict__, "max_steps": 6}), progress=False)
    assert res.steps == 6 and all(math.isfinite(h["val_loss"]) for h in res.history)
    assert min(h["val_loss"] for h in res.history) <= res.history[0]["val_loss"]


def test_recon_adapt_on_a_nifti_volume(tmp_path, recon_real_ckpt, capsys):
    import nibabel as nib
    vol = np.stack([np.abs(phantom(REAL_SHAPE, s)) for s in range(2)], axis=-1) * 100
    src = tmp_path / "v.nii.gz"
    nib.save(nib.Nifti1Image(vol.astype(np.float32), np.eye(4)), src)
    assert main(["recon", str(src), "--model", str(recon_real_ckpt), "--mask", "radial",
                 "--acceleration", "3", "--adapt", "--adapt-steps", "2", "--output",
                 str(tmp_path / "r.nii.gz"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "adapted to the scan: 2 steps" in out and "metrics vs the reference" in out
    assert nib.load(tmp_path / "r.nii.gz").shape == (*REAL_SHAPE, 2)
