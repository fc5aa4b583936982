"""ISTA-Net / ISTA-Net+ / FISTA-Net: shapes per operator, gradients, blockwise, seeds,
FISTA momentum definition; ``resolve_config`` and the legacy (``image_channels: null``)
checkpoint fixtures of every family."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from mri_unfold.models import build, model_options, resolve_config
from mri_unfold.models.common import image_channels_for
from mri_unfold.models.ista import fista_momenta
from mri_unfold.operators import GaussianBlockCS, LinearOperator
from mri_unfold.operators.fourier import MultiCoilFourier, SingleCoilFourier
from mri_unfold.operators.learned_block_cs import LearnedBlockCS

ARCHS = ("ista_net", "ista_net_plus", "fista_net")
SMALL = dict(num_phases=2, channels=4, seed=0)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _operators():
    g = _gen(1)
    mask = torch.rand(16, 12, generator=g) < 0.4
    maps = torch.randn(3, 16, 12, dtype=torch.complex64, generator=g)
    return {
        "block_cs": (GaussianBlockCS(ratio=0.25, block_size=8, seed=0), torch.rand(2, 1, 16, 24, generator=g)),
        "single_real": (SingleCoilFourier(mask, layout="unshifted", real_input=True),
                        torch.rand(2, 1, 16, 12, generator=g)),
        "single_complex": (SingleCoilFourier(mask), torch.randn(2, 1, 16, 12, dtype=torch.complex64, generator=g)),
        "multi_coil": (MultiCoilFourier(mask, maps), torch.randn(2, 1, 16, 12, dtype=torch.complex64, generator=g)),
    }


OPS = _operators()


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("opname", sorted(OPS))
def test_shapes_and_aux_for_every_operator(arch, opname):
    op, x = OPS[opname]
    ic = 2 if op.complex_domain else 1
    model = build(arch, image_channels=ic, **SMALL)
    y = op(x)
    with torch.no_grad():
        out, aux = model(y, op, return_aux=True)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert model.image_channels == ic
    sym_ch = 4 if arch == "ista_net_plus" else ic
    assert [tuple(s.shape) for s in aux["sym"]] == [(2, sym_ch, x.shape[-2], x.shape[-1])] * 2
    assert all(not s.is_complex() for s in aux["sym"])
    assert len(aux["phases"]) == 2 and torch.equal(aux["phases"][-1], out)


@pytest.mark.parametrize("arch", ARCHS)
def test_gradients_reach_every_parameter(arch):
    # not a masked single-coil operator: there Φ^HΦ Φ^H y = Φ^H y, so phase 0's step has
    # no effect with init="adjoint" (a true zero gradient)
    op, x = OPS["multi_coil"]
    model = build(arch, num_phases=3, channels=4, image_channels=2, seed=0)
    out, aux = model(op(x), op, return_aux=True)
    loss = (out - x).abs().pow(2).mean() + sum(s.pow(2).mean() for s in aux["sym"])
    loss.backward()
    names = [n for n, _ in model.named_parameters()]
    assert len(names) == {"ista_net": 18, "ista_net_plus": 24, "fista_net": 20}[arch]
    for n, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, n


def test_parameter_names_and_initial_values():
    model = build("ista_net_plus", num_phases=2, channels=32, image_channels=1, seed=3)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items() if k.startswith("phases.0.")}
    assert shapes == {"phases.0.step": (1,), "phases.0.threshold": (1,),
                      "phases.0.conv_d": (32, 1, 3, 3), "phases.0.conv_f1": (32, 32, 3, 3),
                      "phases.0.conv_f2": (32, 32, 3, 3), "phases.0.conv_g1": (32, 32, 3, 3),
                      "phases.0.conv_g2": (32, 32, 3, 3), "phases.0.conv_out": (1, 32, 3, 3)}
    assert model.phases[1].step.item() == 0.5
    assert model.phases[1].threshold.item() == pytest.approx(0.01)
    # xavier normal: std = sqrt(2 / (fan_in + fan_out)) = sqrt(2 / (288 + 288)) for 32x32x3x3
    w = torch.cat([p.conv_f1.flatten() for p in model.phases])
    assert w.std().item() == pytest.approx((2 / 576) ** 0.5, rel=0.05)


def test_seed_is_deterministic_and_leaves_global_rng_alone():
    state = torch.get_rng_state()
    a = build("ista_net", image_channels=1, **SMALL)
    b = build("ista_net", image_channels=1, **SMALL)
    assert torch.equal(torch.get_rng_state(), state)
    c = build("ista_net", image_channels=1, num_phases=2, channels=4, seed=1)
    for (k, va), vb, vc in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values()):
        assert torch.equal(va, vb), k
    assert not torch.equal(a.phases[0].conv_f1, c.phases[0].conv_f1)
    op, x = OPS["block_cs"]
    with torch.no_grad():
        assert torch.equal(a(op(x), op), b(op(x), op))


def test_seed_none_draws_from_global_rng_without_reseeding():
    torch.manual_seed(123)
    a = build("ista_net", num_phases=1, channels=4, image_channels=1)
    b = build("ista_net", num_phases=1, channels=4, image_channels=1)
    assert not torch.equal(a.phases[0].conv_f1, b.phases[0].conv_f1)
    torch.manual_seed(123)
    c = build("ista_net", num_phases=1, channels=4, image_channels=1)
    assert torch.equal(a.phases[0].conv_f1, c.phases[0].conv_f1)


@pytest.mark.parametrize("arch", ARCHS)
def test_every_parameter_exists_after_construction(arch):
    # the lazy form (image_channels=None, weights created at the first call) was removed by
    # issue 10: models build all their weights at construction
    op, x = OPS["multi_coil"]
    model = build(arch, image_channels=2, **SMALL)
    n_params = {"ista_net": 12, "ista_net_plus": 16, "fista_net": 13}[arch]
    assert len(list(model.parameters())) == n_params
    first = model.phases[0].conv_d if arch == "ista_net_plus" else model.phases[0].conv_f1
    assert first.shape == (4, 2, 3, 3)
    assert model.config["image_channels"] == 2 and build(arch, **SMALL).image_channels == 1
    other = build(arch, **model.config)  # the config round-trips: same weights
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), other.parameters()))
    with torch.no_grad():
        out = model(op(x), op)
    assert [p.shape for p in model.parameters()] == [p.shape for p in other.parameters()]
    other.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.equal(other(op(x), op), out)
    with pytest.raises(ValueError, match="image_channels must be 1 .*got None.*resolve_config"):
        build(arch, image_channels=None)
    for bad in (0, 3, True, "2"):
        with pytest.raises(ValueError, match=r"image_channels must be 1 \(real\) or 2"):
            build(arch, image_channels=bad)


def test_resolve_config_reads_image_channels_from_the_weights():
    sd = build("ista_net_plus", image_channels=2, **SMALL).state_dict()
    stored = dict(SMALL, image_channels=None, init="adjoint", blockwise=False)
    resolved = resolve_config("ista_net_plus", stored, sd)
    assert resolved == {**stored, "image_channels": 2} and stored["image_channels"] is None
    given = {**SMALL, "image_channels": 2}
    assert resolve_config("ista_net_plus", given, sd) == given
    assert resolve_config("ista_net_plus", SMALL, sd) == given  # a config without the key
    fista = build("fista_net", image_channels=1, **SMALL).state_dict()
    assert resolve_config("fista_net", stored, fista)["image_channels"] == 1
    with pytest.raises(ValueError, match=r"cannot determine image_channels of a 'ista_net_plus' "
                                         r"checkpoint: .*'phases\.0\.conv_d' is missing"):
        resolve_config("ista_net_plus", stored, {"phases.0.conv_f1": sd["phases.0.conv_f1"]})
    with pytest.raises(ValueError, match=r"'phases\.0\.conv_f1' has shape \(4, 4, 3, 3\)"):
        resolve_config("ista_net", stored, sd)  # ISTA-Net+ weights: conv_f1 takes C channels
    with pytest.raises(ValueError, match=r"config says image_channels=1 but weight "
                                         r"'phases\.0\.conv_d' of shape \(4, 2, 3, 3\) has 2"):
        resolve_config("ista_net_plus", {**stored, "image_channels": 1}, sd)
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        resolve_config("resnet", stored, sd)


# ---------------------------------------------------------------------- legacy checkpoints
LEGACY = Path(__file__).parent / "data" / "legacy_v1"
LEGACY_CASES = sorted(json.loads((LEGACY / "cases.json").read_text())) if LEGACY.is_dir() else []


def _legacy_operator(name: str, kind: str, tensors: dict, io: dict):
    """The operator a legacy fixture was written with (``<name>.io.pt`` holds ``y``/``x``)."""
    if kind in ("block_cs", "learned_block_cs"):
        cls = GaussianBlockCS if kind == "block_cs" else LearnedBlockCS
        return cls.from_matrix(tensors["operator/phi"], qinit=tensors.get("operator/qinit"))
    if kind == "single_coil":
        return SingleCoilFourier(tensors["operator/mask"], layout="centered", real_input=True)
    assert kind == "fastmri", kind
    # the fastMRI fixtures share the one mask/maps file the fixture writer saved
    op_file = LEGACY / f"{name}.op.pt"
    if not op_file.is_file():
        op_file = LEGACY / "fastmri_ista_net_plus.op.pt"
    saved = torch.load(op_file, map_location="cpu", weights_only=True)
    mask = saved["mask"]
    n, coils, h, w = io["y"].shape
    if coils == 1:
        return SingleCoilFourier(mask[None, None])
    return MultiCoilFourier(mask[None, None].expand(n, 1, h, w),
                            saved["maps"][None].expand(n, coils, h, w))


@pytest.mark.parametrize("name", LEGACY_CASES)
def test_legacy_checkpoint_resolves_builds_and_reproduces(name):
    with safe_open(str(LEGACY / f"{name}.safetensors"), "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    arch, stored = meta["arch"], json.loads(meta["model_config"])
    state = {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}
    io = torch.load(LEGACY / f"{name}.io.pt", map_location="cpu", weights_only=True)
    op = _legacy_operator(name, json.loads(meta["operator"])["kind"], tensors, io)
    config = resolve_config(arch, stored, state)
    assert config == {**stored, "image_channels": image_channels_for(op)}
    model = build(arch, **config).eval()
    model.load_state_dict(state)  # strict
    with torch.no_grad():
        x = model(io["y"], op)
    assert x.dtype == io["x"].dtype and x.shape == io["x"].shape
    assert (x - io["x"]).abs().max().item() <= 1e-6


def test_legacy_fixtures_present():
    assert {"block_cs_ista_net_plus", "fastmri_madun_single"} <= set(LEGACY_CASES)


def test_blockwise_single_block_identical_multi_block_differs():
    op = GaussianBlockCS(ratio=0.25, block_size=8, seed=0)
    g = _gen(2)
    one = torch.rand(3, 1, 8, 8, generator=g)
    many = torch.rand(1, 1, 16, 16, generator=g)
    for arch in ARCHS:
        a = build(arch, image_channels=1, blockwise=False, **SMALL)
        b = build(arch, image_channels=1, blockwise=True, **SMALL)
        with torch.no_grad():
            assert torch.equal(a(op(one), op), b(op(one), op)), arch
            diff = (a(op(many), op) - b(op(many), op)).abs().max()
        assert diff > 1e-4, arch


def test_blockwise_matches_per_block_reconstruction():
    op = GaussianBlockCS(ratio=0.25, block_size=8, seed=0)
    x = torch.rand(1, 1, 16, 8, generator=_gen(3))
    m = build("ista_net_plus", image_channels=1, blockwise=True, **SMALL)
    with torch.no_grad():
        whole = m(op(x), op)
        top, bottom = m(op(x[..., :8, :]), op), m(op(x[..., 8:, :]), op)
    torch.testing.assert_close(whole, torch.cat([top, bottom], dim=-2), rtol=0, atol=1e-6)


def test_model_options_list_the_config_keys():
    assert model_options("fista_net") == ["num_phases", "channels", "image_channels", "init",
                                          "blockwise", "seed", "momentum_init"]
    assert set(model_options("ista_net")) == set(build("ista_net").config)
    with pytest.raises(ValueError, match="unknown model 'resnet'; valid models: "):
        model_options("resnet")


def test_errors():
    with pytest.raises(ValueError, match=r"unknown config key\(s\) \['phases'\].*num_phases"):
        build("ista_net", phases=3)
    with pytest.raises(ValueError, match="init must be one of"):
        build("ista_net", init="zeros")
    with pytest.raises(ValueError, match="num_phases must be a positive integer"):
        build("fista_net", num_phases=0)
    with pytest.raises(ValueError, match="momentum_init must be 'fista' or a number"):
        build("fista_net", momentum_init="nesterov")
    op, x = OPS["single_real"]
    with pytest.raises(ValueError, match="blockwise=True needs a block-based operator; "
                                         "SingleCoilFourier has block_size=None"):
        build("ista_net", blockwise=True, **SMALL)(op(x), op)
    cop, cx = OPS["single_complex"]
    with pytest.raises(ValueError, match="model expects 1-channel images but the operator gives 2"):
        build("ista_net", image_channels=1, **SMALL)(cop(cx), cop)
    with pytest.raises(ValueError, match="no linear initialiser"):
        build("ista_net", init="linear", **SMALL)(op(x), op)


# ---------------------------------------------------------------------- FISTA-Net
def test_fista_momentum_schedule():
    assert fista_momenta(4) == pytest.approx([0.0, 0.28176, 0.43404, 0.53106], abs=1e-5)
    m = build("fista_net", num_phases=4, channels=2, image_channels=1, seed=0)
    assert not hasattr(m.phases[0], "momentum")
    assert [m.phases[k].momentum.item() for k in (1, 2, 3)] == pytest.approx(fista_momenta(4)[1:])
    m2 = build("fista_net", num_phases=3, channels=2, image_channels=1, momentum_init=0.25)
    assert m2.phases[2].momentum.item() == 0.25


def test_fista_with_zero_momentum_equals_ista_net():
    op, x = OPS["block_cs"]
    ista = build("ista_net", num_phases=3, channels=4, image_channels=1, seed=5)
    fista = build("fista_net", num_phases=3, channels=4, image_channels=1, momentum_init=0.0)
    missing = fista.load_state_dict(ista.state_dict(), strict=False).missing_keys
    assert missing == ["phases.1.momentum", "phases.2.momentum"]
    with torch.no_grad():
        torch.testing.assert_close(fista(op(x), op), ista(op(x), op), rtol=0, atol=0)
        fista.phases[2].momentum.fill_(0.5)
        assert (fista(op(x), op) - ista(op(x), op)).abs().max() > 1e-4


class _Scale(LinearOperator):
    """Φ x = a x (a scalar), for hand-checked arithmetic."""

    def __init__(self, a):
        super().__init__()
        self.a = a

    def forward(self, x):
        return self.a * x

    def adjoint(self, y):
        return self.a * y


def _identity_prox(phase):
    """Weights making the ISTA-Net prox the identity: F = (relu(r), relu(-r)), θ = 0,
    G recombines relu(r) − relu(−r) = r (channels = 2)."""
    with torch.no_grad():
        for w in (phase.conv_f1, phase.conv_f2, phase.conv_g1, phase.conv_g2):
            w.zero_()
        phase.conv_f1[0, 0, 1, 1], phase.conv_f1[1, 0, 1, 1] = 1.0, -1.0
        for c in (0, 1):
            phase.conv_f2[c, c, 1, 1] = phase.conv_g1[c, c, 1, 1] = 1.0
        phase.conv_g2[0, 0, 1, 1], phase.conv_g2[0, 1, 1, 1] = 1.0, -1.0
        phase.threshold.zero_()


def test_fista_definition_on_hand_checked_example():
    # Φ = 2, y = 1.5, ρ0 = 0.1, ρ1 = 0.2, μ1 = 0.5, identity prox:
    # x0 = Φᵀy = 3;  x1 = 3 − 0.1·4·3 + 0.1·2·1.5 = 2.1
    # z1 = 2.1 + 0.5·(2.1 − 3) = 1.65;  x2 = 1.65 − 0.2·4·1.65 + 0.2·3 = 0.93
    m = build("fista_net", num_phases=2, channels=2, image_channels=1, seed=0)
    for p in m.phases:
        _identity_prox(p)
    with torch.no_grad():
        m.phases[0].step.fill_(0.1)
        m.phases[1].step.fill_(0.2)
        m.phases[1].momentum.fill_(0.5)
        out, aux = m(torch.full((1, 1, 2, 3), 1.5), _Scale(2.0), return_aux=True)
    torch.testing.assert_close(aux["phases"][0], torch.full((1, 1, 2, 3), 2.1))
    torch.testing.assert_close(out, torch.full((1, 1, 2, 3), 0.93))
    assert all(s.abs().max() == 0 for s in aux["sym"])


def _saved_tensor_count(model, op, y) -> int:
    n = [0]

    def pack(t):
        n[0] += 1
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(y, op, return_aux=True)
    return n[0]


@pytest.mark.parametrize("arch", ["ista_net_plus", "fista_net"])
@pytest.mark.parametrize("opname", ["block_cs", "multi_coil"])
def test_grad_checkpoint_switch_gives_the_plain_gradients(arch, opname):
    op, x = OPS[opname]
    y = op(x)
    blockwise = opname == "block_cs"
    results = []
    for ckpt in (False, True):
        model = build(arch, num_phases=3, channels=4, image_channels=image_channels_for(op),
                      seed=0, blockwise=blockwise).train()
        assert model.grad_checkpoint is False  # off by default
        model.grad_checkpoint = ckpt
        out, aux = model(y, op, return_aux=True)
        loss = (out - x).abs().pow(2).mean() + sum(s.pow(2).mean() for s in aux["sym"])
        loss.backward()
        grads = torch.cat([p.grad.flatten() for p in model.parameters()])
        results.append((loss.detach(), grads, _saved_tensor_count(model, op, y)))
    (l0, g0, saved0), (l1, g1, saved1) = results
    assert torch.equal(l0, l1)
    assert g0.abs().max() > 0 and (g0 - g1).abs().max() <= 1e-6
    assert saved1 < saved0 / 2  # activations of the phases are recomputed, not kept
    with torch.no_grad():  # inference: the switch changes nothing
        assert torch.equal(model(y, op), build(arch, num_phases=3, channels=4, seed=0,
                                               image_channels=image_channels_for(op),
                                               blockwise=blockwise).train()(y, op))
