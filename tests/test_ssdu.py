"""Self-supervised splits and training (issue 21): the Θ/Λ split of the measured locations
(mri_unfold.masks.split), the k-space losses, and ``training.objective = "ssdu"`` through the
engine, which must never read a reference image."""
from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mri_unfold import metrics
from mri_unfold.cli import main
from mri_unfold.data import collate_samples
from mri_unfold.image_ops import center_crop
from mri_unfold.errors import UserError
from mri_unfold.losses import kspace_loss
from mri_unfold.masks import make_mask
from mri_unfold.masks.split import (SplitSettings, acs_region, hermitian_partner,
                                    split_locations)
from mri_unfold.models import build as build_model
from mri_unfold.operators import KSpaceOperatorFactory
from mri_unfold.training import load_checkpoint, load_protocol, train
from mri_unfold.training.data import build_dataset
from mri_unfold.training import loop as training_loop
from mri_unfold.training.self_supervised import SSDUConfig, heldout_validation

sys.path.insert(0, str(Path(__file__).parent))
from fake_fastmri import write_fake_fastmri  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "protocols" / "fastmri_tiny.toml"
SHAPE, RECON = (40, 36), (24, 24)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _mask(kind: str, shape=(64, 64), **kw) -> torch.Tensor:
    return torch.as_tensor(make_mask(kind, shape, seed=0, **kw).mask).bool()


def _split(mask, ratio=0.4, seed=0, **kw):
    return split_locations(mask, SplitSettings(ratio, **kw), torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------ the split
@pytest.mark.parametrize("kind,kw", [("equispaced", dict(acceleration=4, center_fraction=0.125)),
                                     ("poisson", dict(acceleration=4, center_fraction=0.125)),
                                     ("radial", dict(acceleration=5))])
def test_split_is_a_partition_with_the_acs_region_in_theta(kind, kw):
    omega = _mask(kind, **kw)
    acs = acs_region(omega, SplitSettings())
    theta, lam = _split(omega)
    assert theta.dtype == lam.dtype == torch.bool and theta.shape == lam.shape == (64, 64)
    assert torch.equal(theta | lam, omega) and not bool((theta & lam).any())
    assert not bool((lam & acs).any()) and bool(acs.any())
    assert abs(int(lam.sum()) - 0.4 * int(omega.sum())) <= 1


def test_auto_acs_is_the_fully_sampled_centre():
    cols = _mask("equispaced", acceleration=4, center_fraction=0.125)   # 8 centre columns
    acs = acs_region(cols, SplitSettings())
    assert torch.equal(acs.any(0).nonzero()[:, 0], torch.arange(28, 36))
    assert bool(acs[:, 28:36].all()) and int(acs.sum()) == 64 * 8
    block = acs_region(cols, SplitSettings(acs=(4, 6)))
    assert torch.equal(block.nonzero()[[0, -1]], torch.tensor([[30, 29], [33, 34]]))
    assert not bool(acs_region(cols, SplitSettings(acs="none")).any())


def test_conjugate_pairs_stay_together_for_real_images():
    omega = _mask("radial", acceleration=4)
    partner = hermitian_partner((64, 64), "centered").flatten()
    theta, lam = _split(omega, hermitian=True)
    lam_f, theta_f = lam.flatten(), theta.flatten()
    assert not bool((lam_f & theta_f[partner]).any())        # no Λ sample has its twin in Θ
    assert abs(int(lam.sum()) - 0.4 * int(omega.sum())) <= 2
    theta, lam = _split(omega)                               # complex images: independent
    assert bool((lam.flatten() & theta.flatten()[partner]).any())
    # unshifted layout: the twin of (i, j) is (-i, -j) mod n
    p = hermitian_partner((4, 6), "unshifted")
    assert int(p[1, 2]) == 3 * 6 + 4 and int(p[0, 0]) == 0


def test_gaussian_split_holds_out_near_the_centre():
    omega = _mask("random2d", acceleration=3)
    radius = torch.fft.fftshift(torch.fft.fftfreq(64)).abs()
    r = radius[:, None] + radius[None, :]
    means = {}
    for dist in ("uniform", "gaussian"):
        _, lam = _split(omega, distribution=dist, acs="none")
        means[dist] = float(r[lam].mean())
    assert means["gaussian"] < 0.8 * means["uniform"]


def test_split_is_seeded_and_leaves_the_global_rng_alone():
    omega = _mask("poisson", acceleration=4, center_fraction=0.1)
    state = torch.get_rng_state()
    a, b, c = _split(omega, seed=3), _split(omega, seed=3), _split(omega, seed=4)
    assert torch.equal(a[1], b[1]) and not torch.equal(a[1], c[1])
    assert torch.equal(torch.get_rng_state(), state)


def test_split_refuses_what_cannot_be_split():
    full = torch.ones(16, 16, dtype=torch.bool)
    with pytest.raises(UserError, match="all 256 measured locations are in the ACS region"):
        _split(full)
    few = torch.zeros(16, 16, dtype=torch.bool)
    few[6:10, 6:10] = True
    few[0, :3] = True
    with pytest.raises(UserError, match="only 3 measured locations outside the ACS region; at "
                                        "least 8 are needed"):
        _split(few)
    with pytest.raises(UserError, match="no measured k-space locations"):
        _split(torch.zeros(8, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"split ratio must be in \(0, 1\), got 1.0"):
        SplitSettings(ratio=1.0)


def test_noncartesian_split_pairs_points_and_keeps_the_centre():
    angles = torch.arange(8, dtype=torch.float64) * math.pi / 8
    r = torch.linspace(-math.pi, math.pi, 33, dtype=torch.float64)[:-1] + math.pi / 32
    traj = torch.stack([torch.outer(angles.cos(), r).flatten(),
                        torch.outer(angles.sin(), r).flatten()], -1)
    omega = torch.ones(len(traj), dtype=torch.bool)
    settings = dict(hermitian=True, acs_radius=2.0)
    theta, lam = split_locations(omega, SplitSettings(0.4, **settings),
                                 torch.Generator().manual_seed(0), traj=traj,
                                 image_shape=(32, 32))
    near = traj.norm(dim=-1) <= 2 * 2 * math.pi / 32
    assert bool(theta[near].all()) and torch.equal(theta | lam, omega)
    key = {tuple(np.round(t, 6)): i for i, t in enumerate(traj.numpy())}
    twins = torch.tensor([key[tuple(np.round(-t, 6))] for t in traj.numpy()])
    assert torch.equal(lam, lam[twins])                      # pairs held out together


# ------------------------------------------------------------------------------ the losses
def test_kspace_losses():
    y = torch.tensor([[3 + 4j, 0, 1j]], dtype=torch.complex64)
    pred = torch.tensor([[3 + 4j, 1, 0]], dtype=torch.complex64)
    # d = (0, 1, -1j): ‖d‖₂ = √2, ‖d‖₁ = 2; ‖y‖₂ = √26, ‖y‖₁ = 6
    assert float(kspace_loss(pred, y, "l1l2")) == pytest.approx(math.sqrt(2 / 26) + 2 / 6)
    assert float(kspace_loss(pred, y, "l2")) == pytest.approx(2 / 26)
    assert float(kspace_loss(pred, y, "l1")) == pytest.approx(2 / 6)
    two = torch.cat([y, 2 * y])
    assert float(kspace_loss(torch.cat([pred, 2 * pred]), two, "l1")) == pytest.approx(2 / 6)
    g = torch.zeros_like(y, requires_grad=True)
    kspace_loss(g + y, y).backward()                         # zero error: finite gradient
    assert bool(torch.isfinite(torch.view_as_real(g.grad)).all())
    with pytest.raises(ValueError, match="unknown k-space loss 'l3'"):
        kspace_loss(pred, y, "l3")


# ------------------------------------------------------------------------------ the engine
def _volumes(root: Path) -> None:
    for part, n in (("train", 2), ("val", 1)):
        (root / part).mkdir(parents=True)
        for i in range(n):
            write_fake_fastmri(root / part / f"{part}{i}.h5", challenge="multicoil",
                               num_slices=2, shape=SHAPE, recon_size=RECON, num_coils=4,
                               patient_id=f"p{i}")


def _cfg(root: Path, *extra: str) -> dict:
    return load_protocol(TINY, [f"data.train={root / 'train'}", f"data.val={root / 'val'}",
                                f"data.espirit_cache={root / 'espirit'}",
                                "data.acceleration=2", "training.objective=ssdu",
                                "training.epochs=2",
                                "training.lr=3e-3", "evaluation.protocol=none",
                                "evaluation.every=1",
                                "training.progress=false", *extra])


class _References:
    """A data set whose samples carry NaN references (or none): wraps the engine's own."""

    def __init__(self, ds, value):
        self.ds, self.value = ds, value

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        s = self.ds[i]
        if self.value is None:
            return s.replace(target=None, image=None)
        h, w = s.kspace.shape[-2:]
        return s.replace(target=torch.full(s.crop, self.value),
                         image=torch.full((1, h, w), complex(self.value, self.value),
                                          dtype=torch.complex64))

    @property
    def collate_fn(self):
        return self.ds.collate_fn


def test_ssdu_trains_without_reading_references(tmp_path, monkeypatch):
    _volumes(tmp_path)
    build = training_loop.build_dataset
    weights = {}
    for value in (None, math.nan):
        monkeypatch.setattr(training_loop, "build_dataset",
                            lambda *a, v=value, **k: _References(build(*a, **k), v))
        run = tmp_path / f"run_{value}"
        summary = train(_cfg(tmp_path, "training.ssdu.masks_per_sample=2"), run, device="cpu")
        assert summary["step"] == 8 and all(math.isfinite(x) for x in summary["losses"])
        weights[value] = torch.load(run / "last.state.pt", weights_only=True)["model"]
    a, b = weights[None], weights[math.nan]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    log = [json.loads(line) for line in (tmp_path / "run_None" / "log.jsonl").read_text()
           .splitlines()]
    val = [r for r in log if r.get("split") == "val"]
    assert len(val) == 2 and all(set(r) >= {"kspace_loss"} for r in val)
    # the logged loss is the held-out loss of the saved network on data.val
    monkeypatch.setattr(training_loop, "build_dataset", build)
    cfg = _cfg(tmp_path)
    net = load_checkpoint(tmp_path / "run_None" / "last.safetensors").model
    ds = build(cfg["data"], 0, with_references=False, path=cfg["data"]["val"])
    again = heldout_validation(net, KSpaceOperatorFactory(), ds,
                               SSDUConfig.from_table(cfg["training"]["ssdu"], False), 0, "cpu")
    assert again["kspace_loss"] == pytest.approx(val[-1]["kspace_loss"], rel=1e-5)


def test_ssdu_validation_reports_psnr_beside_the_kspace_loss(tmp_path):
    _volumes(tmp_path)
    cfg = _cfg(tmp_path)
    summary = train(cfg, tmp_path / "run", device="cpu")
    assert summary["best"] < 0                               # minus the held-out loss
    log = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    val = [r for r in log if r.get("split") == "val"]
    # the fake files carry reference images: PSNR/SSIM are logged beside the k-space loss,
    # those of the full-Ω reconstruction of every validation slice against its reference
    assert len(val) == 2 and all({"kspace_loss", "psnr", "ssim"} <= set(r) for r in val)
    net = load_checkpoint(tmp_path / "run" / "last.safetensors").model
    ds = build_dataset(cfg["data"], 0, with_references=False, path=cfg["data"]["val"])
    fac, scores = KSpaceOperatorFactory(), []
    for i in range(len(ds)):
        b = collate_samples([ds[i]])
        with torch.no_grad():
            x = net(fac.measurements(b), fac.for_batch(b)).abs()[0, 0]
        t = b.target[0, 0].double().numpy()
        scores.append(metrics.psnr(t, center_crop(x, t.shape).double().numpy()))
    assert val[-1]["psnr"] == pytest.approx(float(np.mean(scores)), abs=1e-6)
    assert (tmp_path / "run" / "best.safetensors").is_file()


def test_heldout_validation_is_seeded(tmp_path):
    _volumes(tmp_path)
    cfg = _cfg(tmp_path)
    ds = build_dataset(cfg["data"], 0, with_references=False, path=cfg["data"]["val"])
    net = build_model("ista_net_plus", num_phases=2, channels=8, image_channels=2, seed=0)
    settings = SSDUConfig.from_table({}, real_images=False)
    a = heldout_validation(net, KSpaceOperatorFactory(), ds, settings, 0, "cpu")
    b = heldout_validation(net, KSpaceOperatorFactory(), ds, settings, 0, "cpu")
    c = heldout_validation(net, KSpaceOperatorFactory(), ds, settings, 1, "cpu")
    assert a == b and a["kspace_loss"] != c["kspace_loss"] and a["images"] == 2
    assert 0 < a["kspace_loss"] < 3 and "psnr" in a


def test_ssdu_refuses_image_sources_and_bad_settings(tmp_path, capsys):
    tiny = ROOT / "protocols" / "tiny.toml"
    with pytest.raises(UserError, match=r"training.objective = 'ssdu' learns from measured "
                                        r"k-space, but data.kind = 'patches' yields images"):
        load_protocol(tiny, ["training.objective=ssdu"])
    with pytest.raises(UserError, match=r"training.ssdu.ratio must be in \(0, 1\), got 0.0"):
        load_protocol(TINY, ["training.objective=ssdu", "training.ssdu.ratio=0.0"])
    with pytest.raises(UserError, match="training.ssdu.loss = 'l3' is not one of l1l2, l2, l1"):
        load_protocol(TINY, ["training.objective=ssdu", "training.ssdu.loss='l3'"])
    with pytest.raises(UserError, match="expected 'auto', 'none' or a block 'HxW'"):
        load_protocol(TINY, ["training.objective=ssdu", "training.ssdu.acs='big'"])
    with pytest.raises(UserError, match="training.objective = 'selfie' is not one of "
                                        "supervised, ssdu"):
        load_protocol(TINY, ["training.objective=selfie"])
    rc = main(["train", str(tiny), "--override", "training.objective=ssdu",
               "--run-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert rc == 2 and "yields images, not measurements" in err and "\n" not in err.strip()
    assert not (tmp_path / "r").exists()
