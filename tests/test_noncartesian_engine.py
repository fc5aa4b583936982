"""Non-Cartesian k-space through the networks, the operator factory, the reconstruction
pipeline, the baselines and the training engine (operator.kind = "noncartesian")."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from mri_unfold.baselines import run_baseline
from mri_unfold.checkpoints import load_checkpoint
from mri_unfold.cli import main
from mri_unfold.data import birdcage_coil_maps, collate_samples, simulate_noncartesian
from mri_unfold.metrics import psnr
from mri_unfold.models import build
from mri_unfold.operators import KSpaceOperatorFactory, NonCartesianFourier, build_operator
from mri_unfold.reconstruct import reconstruct_samples
from mri_unfold.training.config import load_protocol
from mri_unfold.trajectories import make_trajectory

SMALL = {"ista_net": {"num_phases": 2, "channels": 4},
         "ista_net_plus": {"num_phases": 2, "channels": 4},
         "fista_net": {"num_phases": 2, "channels": 4},
         "madun": {"num_stages": 2, "channels": 4}}


def _phantom(n: int, seed: int = 0) -> np.ndarray:
    """A smooth seeded test image (sum of Gaussian blobs) in [0, 1], ``(n, n)`` float32."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:n, :n] / n
    img = np.zeros((n, n))
    for _ in range(6):
        cy, cx, s, a = rng.uniform(0.25, 0.75), rng.uniform(0.25, 0.75), rng.uniform(.05, .2), \
            rng.uniform(0.3, 1)
        img += a * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
    return (img / img.max()).astype(np.float32)


@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("coils", [1, 3])
def test_every_network_runs_unchanged_on_the_nufft_operator(name, coils):
    n = 24
    t = make_trajectory("golden-radial", n, acceleration=2)
    maps = birdcage_coil_maps(coils, (n, n)) if coils > 1 else None
    op = NonCartesianFourier(t.traj, (n, n), coil_maps=maps, dcf=t.dcf, real_input=coils == 1)
    x = torch.from_numpy(np.stack([_phantom(n, 0), _phantom(n, 1)]))[:, None]
    x = x if coils == 1 else x.to(torch.complex64)
    y = op(x)
    assert y.shape == (2, coils, t.num_samples)
    model = build(name, **SMALL[name], image_channels=1 if coils == 1 else 2)
    out = model(y, op)
    assert out.shape == (2, 1, n, n) and out.dtype == x.dtype
    assert bool(torch.isfinite(torch.view_as_real(out) if out.is_complex() else out).all())
    loss = (out - x).abs().pow(2).mean()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


def _samples(n=32, coils=1, count=2):
    t = make_trajectory("golden-radial", n, acceleration=2)
    maps = birdcage_coil_maps(coils, (n, n)) if coils > 1 else None
    return t, [simulate_noncartesian(_phantom(n, i), t, maps, fname="phantom", slice_index=i)
               for i in range(count)]


def test_factory_builds_the_operator_of_a_noncartesian_batch():
    t, samples = _samples(coils=2)
    s = samples[0]
    assert s.kspace.shape == (2, t.num_samples) and s.trajectory.shape == (t.num_samples, 2)
    assert s.metadata.trajectory_type == "radial" and not s.is_cartesian
    batch = collate_samples(samples)
    assert batch.trajectory.shape == (2, t.num_samples, 2) and batch.mask.shape == (2, 1,
                                                                                  t.num_samples)
    factory = KSpaceOperatorFactory()
    op = factory.for_batch(batch)
    assert isinstance(op, NonCartesianFourier)
    # the samples share trajectory, DCF and (birdcage) maps: stored once, any batch size
    assert op.traj.shape[0] == 1 and op.dcf.shape[0] == 1 and op.batch_size is None
    assert tuple(op.coil_maps.shape) == (1, 2, 32, 32)
    y = factory.measurements(batch)
    ref = NonCartesianFourier(t.traj, (32, 32), coil_maps=batch.coil_maps,
                              dcf=t.dcf)(batch.image)
    assert torch.allclose(y, ref, atol=1e-5)
    one = factory.for_batch(batch, [1])
    assert one.traj.shape[0] == 1 and torch.allclose(factory.measurements(batch, [1]), y[1:], atol=0)
    with pytest.raises(ValueError, match=r"a non-Cartesian batch needs image_shape"):
        factory(batch.mask, trajectory=batch.trajectory)


def test_reconstruct_samples_and_baselines_on_noncartesian_samples():
    t, samples = _samples(coils=3)
    truth = np.stack([_phantom(32, i) for i in range(2)])
    grid = reconstruct_samples(samples, method="zero-filled", progress=False)
    sense = reconstruct_samples(samples, method="sense", progress=False)
    assert grid.reconstruction.shape == (2, 32, 32) and grid.info["slices"] == 2
    assert np.allclose(grid.zero_filled, grid.reconstruction, atol=1e-6)
    p_grid, p_sense = psnr(truth, grid.reconstruction, 1.0), psnr(truth, sense.reconstruction, 1.0)
    assert p_sense > p_grid + 5 and p_sense > 35, (p_grid, p_sense)
    assert sense.metrics["network"]["psnr"] == pytest.approx(p_sense, abs=0.5)
    model = build("ista_net_plus", **SMALL["ista_net_plus"], image_channels=2)
    net = reconstruct_samples(samples, model, progress=False, batch_size=1)
    assert net.reconstruction.shape == (2, 32, 32) and np.isfinite(net.reconstruction).all()
    op = KSpaceOperatorFactory().for_batch(collate_samples(samples))
    y = KSpaceOperatorFactory().measurements(collate_samples(samples))
    l1 = run_baseline("l1-wavelet", y, op, max_iter=30).numpy()
    assert psnr(truth, l1, 1.0) > p_grid + 5


def _png_folder(path, n=32, count=4):
    path.mkdir()
    for i in range(count):
        Image.fromarray((_phantom(n, i) * 255).astype(np.uint8)).save(path / f"im{i}.png")
    return path


@pytest.mark.parametrize("coils", [1, 2])
def test_engine_trains_on_simulated_noncartesian_kspace(tmp_path, coils):
    data = _png_folder(tmp_path / "images")
    proto = tmp_path / "nc.toml"
    proto.write_text(f"""
name = "nc"
[data]
kind = "images"
train = "{data}"
[operator]
kind = "noncartesian"
trajectory = "golden-radial"
acceleration = 4.0
coils = {coils}
real_input = {"true" if coils == 1 else "false"}
[model]
name = "ista_net_plus"
config = {{ num_phases = 2, channels = 4 }}
[training]
epochs = 1
batch_size = 2
lr = 1e-3
""")
    run = tmp_path / "run"
    assert main(["train", str(proto), "--run-dir", str(run), "--no-progress"]) == 0
    ck = load_checkpoint(run / "last.safetensors")
    op = ck.op
    assert isinstance(op, NonCartesianFourier) and op.num_coils == coils
    assert op.num_samples == 13 * 64 and op.real_input == (coils == 1)   # ceil(pi/2*32/4) spokes
    fresh = build_operator(load_protocol(proto)["operator"], image_shape=(32, 32))
    assert torch.equal(fresh.traj, op.traj) and torch.allclose(fresh.dcf, op.dcf)
    x = torch.from_numpy(_phantom(32, 9))[None, None]
    x = x if coils == 1 else x.to(torch.complex64)
    with torch.no_grad():
        out = ck.model(op(x), op)
    assert out.shape == (1, 1, 32, 32)


def test_engine_errors_name_the_operator_keys(tmp_path):
    cfg = {"kind": "noncartesian", "trajectory": "zigzag", "acceleration": 4.0, "readout": 0,
           "dcf": "auto", "coils": 1, "real_input": True}
    with pytest.raises(Exception, match=r"operator.trajectory = 'zigzag'.*trajectory file not "
                                        r"found"):
        build_operator(cfg, image_shape=(16, 16))
    with pytest.raises(Exception, match=r"operator.coils must be >= 1, got 0"):
        build_operator({**cfg, "trajectory": "radial", "coils": 0}, image_shape=(16, 16))
    with pytest.raises(Exception, match=r"needs the image size of the data"):
        build_operator({**cfg, "trajectory": "radial"})
