"""The learned (LOUPE-style) sampling mask: exact budget, fixed ACS, per-step samples with a
straight-through gradient, the training loop's per-step hook, checkpoints and the exported
mask file."""
from __future__ import annotations

import math

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

from mri_unfold.checkpoints import load_checkpoint
from mri_unfold.cli import main
from mri_unfold.errors import InvalidValue
from mri_unfold.masks import load_mask, save_mask
from mri_unfold.operators import LearnedMaskFourier, SingleCoilFourier, check_operator
from mri_unfold.operators.learned_mask import annealed_slope, rescale_to_budget
from mri_unfold.training import train, validate_protocol


def test_rescaling_holds_the_budget_exactly_in_both_directions():
    g = torch.Generator().manual_seed(0)
    p = torch.rand(1000, generator=g, dtype=torch.float64)          # mean ~0.5
    for beta in (0.1, 0.9):                                         # scale down / scale up
        q = rescale_to_budget(p, beta)
        assert abs(float(q.mean()) - beta) < 1e-12
        assert float(q.min()) >= 0 and float(q.max()) <= 1
        # order is kept: the same positions are the most likely
        assert torch.equal(torch.argsort(q), torch.argsort(p))


def test_annealed_slope_is_geometric_from_start_to_end():
    assert annealed_slope(0, 10, 1000, 100) == 10
    assert math.isclose(annealed_slope(50, 10, 1000, 100), 100.0)
    assert annealed_slope(100, 10, 1000, 100) == annealed_slope(500, 10, 1000, 100) == 1000
    assert annealed_slope(70, 10, 1000, 0) == 10


@pytest.mark.parametrize("dims, shape, ratio", [(2, (64, 48), 1 / 6), (1, (40, 64), 0.25)])
def test_binarised_mask_has_exactly_the_budget_and_keeps_the_acs(dims, shape, ratio):
    op = LearnedMaskFourier(shape, ratio, dims=dims, seed=3)
    m = op.binarised()
    h, w = shape
    assert m.dtype == torch.bool and tuple(m.shape) == shape
    if dims == 1:
        cols = m.any(0)
        assert torch.equal(m, cols.expand(h, w))            # whole columns
        assert int(cols.sum()) == op.budget == round(ratio * w) == 16
        assert int(op.acs[0].sum()) == round(0.32 * ratio * w) == 5   # fastMRI's pairing
    else:
        assert int(m.sum()) == op.budget == round(ratio * h * w) == 512
        assert int(op.acs.sum()) == round(0.32 * ratio * h) * round(0.32 * ratio * w) == 9
    assert bool(m[op.acs].all())
    assert m[h // 2, w // 2]                                # DC sampled, centred layout
    p = op.probabilities()
    assert abs(float(p.detach().mean()) - op.free_budget / op.n_free) < 1e-6


def test_binarised_operator_equals_single_coil_fourier_with_its_mask():
    op = LearnedMaskFourier((32, 32), 0.25, seed=0, real_input=True)
    ref = SingleCoilFourier(op.mask, real_input=True)
    x = torch.rand(3, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    assert torch.equal(op(x), ref(x))
    assert torch.equal(op.adjoint(op(x)), ref.adjoint(ref(x)))


def test_step_samples_are_binary_seeded_and_leave_the_global_rng_alone():
    op = LearnedMaskFourier((64, 64), 0.25, seed=5)
    state = torch.random.get_rng_state()
    a, b, c = op.sample(7), op.sample(7), op.sample(8)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert set(torch.unique(a.detach()).tolist()) == {0.0, 1.0}     # exactly 0/1 values
    assert bool((a.detach()[op.acs] == 1).all())
    # Bernoulli with the rescaled probabilities: the count is the budget in expectation
    p = op.probabilities().detach().double()
    sd = float((p * (1 - p)).sum().sqrt())
    assert abs(float(a.detach().sum()) - op.budget) < 5 * sd
    other = LearnedMaskFourier((64, 64), 0.25, seed=6)
    assert not torch.equal(other.sample(7), a)


def test_straight_through_gradient_is_the_relaxations_gradient():
    op = LearnedMaskFourier((16, 20), 0.3, seed=2, slope_start=4.0, slope_end=64.0,
                            anneal_steps=10)
    w = torch.randn(16, 20, generator=torch.Generator().manual_seed(0))
    (op.sample(5) * w).sum().backward()
    got = op.logits.grad.clone()
    op.logits.grad = None
    # the relaxation by hand: same probabilities, same thresholds, slope at step 5
    p = op.probabilities()
    g = torch.Generator().manual_seed(2 * 1_000_003 + 5)
    u = torch.rand(p.shape, generator=g, dtype=torch.float64).float()
    soft = torch.sigmoid(annealed_slope(5, 4.0, 64.0, 10) * (p - u))
    (soft * w[~op.acs]).sum().backward()
    assert math.isclose(annealed_slope(5, 4.0, 64.0, 10), 16.0)
    assert torch.allclose(got, op.logits.grad, rtol=1e-5, atol=1e-8)
    assert float(got.abs().sum()) > 0


def test_inside_a_training_step_the_operator_is_linear_at_that_sample():
    op = LearnedMaskFourier((12, 14), 0.3, seed=1)
    with op.training_step(4):
        report = check_operator(op)
        sample = op.sample(4).detach().bool()
    assert report.passed
    assert not torch.equal(sample, op.mask)                 # a different, stochastic mask
    x = torch.randn(1, 1, 12, 14, dtype=torch.complex64)
    with op.training_step(4):
        y = op(x)
    assert torch.equal(y, SingleCoilFourier(sample)(x))
    assert torch.equal(op(x), SingleCoilFourier(op.mask)(x))   # binarised again afterwards


@pytest.mark.parametrize("kwargs, message", [
    (dict(dims=3), r"dims must be 1 \(per column\) or 2 \(per point\), got 3"),
    (dict(ratio=1.0), r"ratio must be in \(0, 1\), got 1.0"),
    (dict(center_fraction=0.5), r"the budget of 256 points leaves -768 of 3072 free points "
                                r"after the 1024 ACS points"),
    (dict(slope_end=0.0), r"slope_end must be > 0"),
])
def test_bad_settings_are_one_clear_error(kwargs, message):
    args = dict(shape=(64, 64), ratio=1 / 16) | kwargs
    with pytest.raises(InvalidValue, match=message):
        LearnedMaskFourier(args.pop("shape"), args.pop("ratio"), **args)


def _images(folder, n=6, size=32):
    folder.mkdir()
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        im = ((np.sin(xx / 3 + i) + np.cos(yy / 4)) * 60 + 128).clip(0, 255).astype(np.uint8)
        Image.fromarray(im).save(folder / f"im{i}.png")
    return folder


def _protocol(folder, **training):
    return validate_protocol({
        "data": {"kind": "images", "train": str(folder)},
        "operator": {"kind": "learned_mask", "ratio": 0.3, "mask_anneal_steps": 4},
        "model": {"name": "ista_net_plus", "config": {"num_phases": 2, "channels": 4}},
        "training": {"epochs": 2, "batch_size": 2, "lr": 1e-2, "progress": False} | training})


def test_the_loop_trains_the_mask_through_its_per_step_hook(tmp_path, monkeypatch):
    seen = []
    hook = LearnedMaskFourier.training_step

    def recording(self, step):
        seen.append(step)
        return hook(self, step)

    monkeypatch.setattr(LearnedMaskFourier, "training_step", recording)
    cfg = _protocol(_images(tmp_path / "imgs"))
    start = LearnedMaskFourier((32, 32), 0.3, seed=0)
    res = train(cfg, tmp_path / "run", device="cpu", progress=False)
    assert res["step"] == 6 and seen == [0, 1, 2, 3, 4, 5]
    ck = load_checkpoint(tmp_path / "run" / "last.safetensors")
    assert isinstance(ck.op, LearnedMaskFourier) and ck.operator_cfg["kind"] == "learned_mask"
    assert not torch.equal(ck.op.logits, start.logits)       # the logits were trained
    m = ck.op.binary_mask()
    assert m.dtype == np.float32 and m.shape == (32, 32) and int(m.sum()) == ck.op.budget == 307
    # export: a binary centred .npy that load_mask (--mask-file, recon, studies) accepts
    path = save_mask(tmp_path / "learned.npy", m)
    back = load_mask(path, layout="centered")
    assert np.array_equal(back, m)
    x = torch.rand(2, 1, 32, 32)
    assert torch.equal(SingleCoilFourier(back, real_input=True)(x), ck.op(x))
    # recon: the checkpoint's own (binarised) mask and the exported file give one result
    vol = np.stack([np.asarray(Image.open(tmp_path / "imgs" / f"im{i}.png")) for i in (0, 1)],
                   axis=-1).astype(np.float32)
    nib.save(nib.Nifti1Image(vol, np.eye(4)), tmp_path / "vol.nii.gz")
    outs = []
    for extra in ([], ["--mask-file", str(path)]):
        outs.append(tmp_path / f"rec{len(outs)}.nii.gz")
        assert main(["recon", str(tmp_path / "vol.nii.gz"), "--model",
                     str(tmp_path / "run" / "last.safetensors"), "--output", str(outs[-1]),
                     "--no-progress", *extra]) == 0
    a, b = (nib.load(o).get_fdata() for o in outs)
    assert a.shape == (32, 32, 2) and np.array_equal(a, b)


def test_acs_of_another_operator_is_refused_when_loading():
    a = LearnedMaskFourier((32, 32), 0.25, seed=0)
    b = LearnedMaskFourier((32, 32), 0.25, center_fraction=0.2, seed=0)
    with pytest.raises(InvalidValue, match=r"the stored ACS \(9 points\) differs from this "
                                           r"operator's \(36\)"):
        b.load_state_dict(a.state_dict())
