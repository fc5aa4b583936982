"""MADUN and its ablations: the authors' golden vector, key sets, shapes, gradients, seeds."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mri_unfold.models import available_models, build, load_official, resolve_config
from mri_unfold.models.madun import RHO_INIT, convert_official_state_dict
from mri_unfold.models.madun_blocks import ConvLSTMCell
from mri_unfold.operators import GaussianBlockCS, MultiCoilFourier, SingleCoilFourier

VARIANTS = ("madun", "madun_pmm", "madun_hsm", "madun_clm", "madun_plus", "madun_concat",
            "madun_hsm_conv3", "madun_hsm_rb1")
SMALL = dict(num_stages=2, channels=4, seed=0)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _block_op():
    return GaussianBlockCS(ratio=0.25, block_size=8, seed=1)  # phi (16, 64)


def _mask(h=16, w=16):
    return torch.rand(h, w, generator=_gen(5)) < 0.4


def _ops():
    maps = torch.randn(3, 16, 16, dtype=torch.complex64, generator=_gen(6))
    return {
        "block_cs": (_block_op(), torch.float32),
        "single_complex": (SingleCoilFourier(_mask()), torch.complex64),
        "single_real": (SingleCoilFourier(_mask(), real_input=True), torch.float32),
        "multi_coil": (MultiCoilFourier(_mask(), maps), torch.complex64),
    }


def _measure(op, dtype, n=2, seed=7):
    x = torch.randn(n, 1, 16, 16, dtype=dtype, generator=_gen(seed))
    return op(x)


# ---------------------------------------------------------------- golden vector (authors' code)
@pytest.fixture(scope="module")
def golden(golden_dir):
    return torch.load(golden_dir / "madun_cs_seed20211020.pt", weights_only=True)


def test_golden_vector_matches_authors_release(golden):
    sd, cfg = convert_official_state_dict(golden["state_dict"])
    assert cfg == {"num_stages": golden["layers"], "channels": golden["channels"],
                   "image_channels": 1} == {"num_stages": 3, "channels": 32, "image_channels": 1}
    model = build("madun", **cfg).eval()
    model.load_state_dict(sd)  # strict
    op = GaussianBlockCS.from_matrix(golden["Phi"])
    assert (op(golden["image"]) - golden["y"]).abs().max() <= 1e-5
    with torch.no_grad():
        x, aux = model(golden["y"], op, return_aux=True)
    assert x.shape == golden["x_out"].shape == (1, 1, 66, 99)
    assert (x - golden["x_out"]).abs().max().item() <= 1e-5
    assert aux["sym"] == [] and len(aux["phases"]) == 3 and aux["phases"][-1] is x
    # a legacy config (image_channels=None, the removed lazy form) resolved from the weights
    # builds a model that loads the same weights
    legacy = resolve_config("madun", {"num_stages": 3, "channels": 32, "image_channels": None}, sd)
    assert legacy["image_channels"] == 1
    resolved = build("madun", **legacy)
    resolved.load_state_dict(sd)
    with torch.no_grad():
        assert torch.equal(resolved(golden["y"], op), x)


def test_converter_fuses_gates_and_maps_keys(golden):
    src = golden["state_dict"]
    sd, _ = convert_official_state_dict(src)
    bare, _ = convert_official_state_dict({k[len("module."):]: v for k, v in src.items()})
    assert sd.keys() == bare.keys() and all(torch.equal(sd[k], bare[k]) for k in sd)
    assert sd["stages.1.memory.conv_x.weight"].shape == (128, 32, 3, 3)
    for g, gate in enumerate("fioj"):
        rows = slice(32 * g, 32 * (g + 1))
        assert torch.equal(sd["stages.1.memory.conv_x.weight"][rows],
                           src[f"module.fcs.1.ConvLSTM.conv_x{gate}.weight"])
        assert torch.equal(sd["stages.2.memory.conv_h.bias"][rows],
                           src[f"module.fcs.2.ConvLSTM.conv_h{gate}.bias"])
    assert "stages.0.memory.conv_h.weight" not in sd  # never used by the release
    assert torch.equal(sd["stages.2.rho"], src["module.fcs.2.lambda_step"])
    assert torch.equal(sd["stages.0.conv_D.weight"], src["module.fcs.0.conv_D"])
    assert torch.equal(sd["fe.bias"], src["module.fe.bias"])
    n_src = sum(v.numel() for v in src.values())
    assert sum(v.numel() for v in sd.values()) == n_src - 4 * (32 * 32 * 9 + 32)  # fcs.0 conv_h{f,i,o,j}


def test_converter_errors_name_the_key(golden):
    src = dict(golden["state_dict"])
    bad = dict(src)
    bad["module.fcs.1.RB2.conv1.weight"] = torch.zeros(32, 31, 3, 3)
    with pytest.raises(ValueError, match=r"'fcs\.1\.RB2\.conv1\.weight' has shape "
                                         r"\(32, 31, 3, 3\), expected \(32, 32, 3, 3\)"):
        convert_official_state_dict(bad)
    missing = {k: v for k, v in src.items() if k != "module.fcs.2.ConvLSTM.conv_ho.bias"}
    with pytest.raises(ValueError, match=r"missing key 'fcs\.2\.ConvLSTM\.conv_ho\.bias'"):
        convert_official_state_dict(missing)
    with pytest.raises(ValueError, match=r"unexpected key\(s\) \['extra'\]"):
        convert_official_state_dict({**src, "extra": torch.zeros(1)})
    with pytest.raises(ValueError, match="not an official MADUN state_dict"):
        convert_official_state_dict({"fcs.0.conv1.weight": torch.zeros(1)})


# ---------------------------------------------------------------- architecture
def test_registered_and_rho_initialised_to_release_value():
    assert set(VARIANTS) <= set(available_models())
    for name in VARIANTS:
        m = build(name, **SMALL, image_channels=1)
        assert m.arch == name
        assert [s.rho.item() for s in m.stages] == [RHO_INIT] * 2 == [0.5, 0.5]


def _keys(name, **kw):
    m = build(name, **{**SMALL, "image_channels": 1, **kw})
    return {k: tuple(v.shape) for k, v in m.state_dict().items()}


def test_key_sets_differ_exactly_where_the_paper_says():
    c = SMALL["channels"]
    base = {}
    for k in range(2):
        p = f"stages.{k}."
        base[p + "rho"] = (1,)
        base[p + "conv_G.weight"] = (1, c, 3, 3)
        for rb in ("rb1", "rb2"):
            for cv in ("conv1", "conv2"):
                base[f"{p}{rb}.{cv}.weight"], base[f"{p}{rb}.{cv}.bias"] = (c, c, 3, 3), (c,)
    conv1 = {f"stages.{k}.conv_D.weight": (c, 1, 3, 3) for k in range(2)}  # Conv1 of PMM
    conv3 = {f"stages.{k}.conv_D.weight": (c, c + 1, 3, 3) for k in range(2)}  # Conv3 of HSM
    fe = {"fe.weight": (c, 1, 3, 3), "fe.bias": (c,)}  # Conv0
    lstm = {"stages.0.memory.conv_x.weight": (4 * c, c, 3, 3), "stages.0.memory.conv_x.bias": (4 * c,),
            "stages.1.memory.conv_x.weight": (4 * c, c, 3, 3), "stages.1.memory.conv_x.bias": (4 * c,),
            "stages.1.memory.conv_h.weight": (4 * c, c, 3, 3), "stages.1.memory.conv_h.bias": (4 * c,)}
    concat = {f"stages.{k}.memory.conv.{p}": s for k in range(2)
              for p, s in (("weight", (c, 2 * c, 3, 3)), ("bias", (c,)))}
    assert _keys("madun_pmm") == {**base, **conv1}
    assert _keys("madun_hsm") == {**base, **conv3, **fe}
    assert _keys("madun_clm") == {**base, **conv1, **lstm}
    assert _keys("madun") == {**base, **conv3, **fe, **lstm}
    assert _keys("madun_plus") == {**base, **conv1}
    assert _keys("madun_concat") == {**base, **conv1, **concat}
    assert _keys("madun", image_channels=2)["stages.0.conv_D.weight"] == (c, c + 2, 3, 3)
    assert _keys("madun", image_channels=2)["stages.1.conv_G.weight"] == (2, c, 3, 3)


@pytest.mark.parametrize("name", VARIANTS)
def test_every_parameter_exists_after_construction_and_config_resolves(name):
    # the lazy head (image_channels=None, fe/conv_D/conv_G created at the first call or the
    # load, the removed `materialize`) was removed by issue 10
    model = build(name, **SMALL, image_channels=2)
    assert model.stages[1].conv_G.weight.shape == (2, 4, 3, 3)
    assert (model.fe is not None) == model.HSM and model.config["image_channels"] == 2
    assert all(p.abs().sum() > 0 for k, p in model.named_parameters() if "conv" in k)
    again = build(name, **model.config)  # config round-trip: bit-identical weights
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters()))
    sd = model.state_dict()
    assert resolve_config(name, {**SMALL, "image_channels": None}, sd) == {**SMALL,
                                                                          "image_channels": 2}
    with pytest.raises(ValueError, match=r"cannot determine image_channels of a '\w+' checkpoint: "
                                         r".*'stages\.0\.conv_G\.weight' is missing"):
        resolve_config(name, {**SMALL, "image_channels": None},
                       {k: v for k, v in sd.items() if "conv_G" not in k})


def test_plus_memory_is_the_only_difference_from_pmm():
    op, dt = _ops()["block_cs"]
    y = _measure(op, dt)
    pmm, plus = build("madun_pmm", **SMALL, image_channels=1), build("madun_plus", **SMALL)
    plus.load_state_dict(pmm.state_dict())  # same key set (default image_channels=1)
    with torch.no_grad():
        a, aux_a = pmm(y, op, return_aux=True)
        b, aux_b = plus(y, op, return_aux=True)
    # stage 1 has no previous memory (h = s): identical; stage 2 adds h(1)
    assert torch.equal(aux_a["phases"][0], aux_b["phases"][0])
    assert (a - b).abs().max() > 1e-4


def test_convlstm_cell_release_equations():
    c = 3
    s, h0, c0 = torch.randn(3, 1, c, 5, 5, generator=_gen(2))
    first, later = ConvLSTMCell(c, _gen(0), first=True), ConvLSTMCell(c, _gen(1), first=False)
    assert first.conv_h is None and later.conv_h.weight.shape == (4 * c, c, 3, 3)
    with torch.no_grad():
        gf, gi, go, gj = F.conv2d(s, first.conv_x.weight, first.conv_x.bias, padding=1).split(c, 1)
        h, (h_, cell) = first(s, None)
        want_c = torch.sigmoid(gi) * torch.tanh(gj)  # no forget gate
        torch.testing.assert_close(cell, want_c, rtol=0, atol=1e-6)
        torch.testing.assert_close(h, torch.sigmoid(go) * want_c, rtol=0, atol=1e-6)  # no tanh
        assert h_ is h
        g = (F.conv2d(s, later.conv_x.weight, later.conv_x.bias, padding=1)
             + F.conv2d(h0, later.conv_h.weight, later.conv_h.bias, padding=1))
        gf, gi, go, gj = g.split(c, 1)
        h, (_, cell) = later(s, (h0, c0))
        want_c = torch.sigmoid(gf) * c0 + torch.sigmoid(gi) * torch.tanh(gj)
        torch.testing.assert_close(cell, want_c, rtol=0, atol=1e-6)
        torch.testing.assert_close(h, torch.sigmoid(go) * torch.tanh(want_c), rtol=0, atol=1e-6)


# ---------------------------------------------------------------- every variant x operator
@pytest.mark.parametrize("op_name", ["block_cs", "single_complex", "single_real", "multi_coil"])
def test_shapes_for_every_variant_and_operator(op_name):
    op, dt = _ops()[op_name]
    y = _measure(op, dt)
    for name in VARIANTS:
        model = build(name, **SMALL, image_channels=2 if dt.is_complex else 1)
        with torch.no_grad():
            x, aux = model(y, op, return_aux=True)
        assert x.shape == (2, 1, 16, 16) and x.dtype == dt, (name, op_name)
        assert model.image_channels == (2 if dt.is_complex else 1)
        assert len(aux["phases"]) == 2 and aux["sym"] == []
        assert torch.isfinite(torch.view_as_real(x) if x.is_complex() else x).all()


@pytest.mark.parametrize("name", VARIANTS)
def test_gradients_reach_every_parameter(name):
    # multi-coil: Φ Φ^H != I, so the first gradient step is not a no-op (see below)
    op, dt = _ops()["multi_coil"]
    y = _measure(op, dt)
    model = build(name, **SMALL, image_channels=2)
    model(y, op).abs().square().mean().backward()
    for key, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, key


def test_first_gradient_step_is_identity_when_rows_are_orthonormal():
    # x(0) = Φ^H y and Φ Φ^H = I  =>  Φ^H Φ x(0) = Φ^H y: r(1) = x(0) whatever ρ(1) is
    op, dt = _ops()["single_complex"]  # (real_input=True is not: Re(.) breaks Φ Φ^H = I)
    y = _measure(op, dt)
    model = build("madun_pmm", **SMALL, image_channels=2)
    model(y, op).abs().square().mean().backward()
    assert model.stages[0].rho.grad.abs().item() < 1e-7
    assert model.stages[1].rho.grad.abs().item() > 1e-4


def test_deterministic_seeds_and_global_rng_untouched():
    op, dt = _ops()["single_real"]
    y = _measure(op, dt)
    state = torch.get_rng_state()
    a, b = build("madun", **SMALL), build("madun", **SMALL, image_channels=1)  # default vs given
    with torch.no_grad():
        xa, xb = a(y, op), b(y, op)
    c = build("madun", **{**SMALL, "seed": 1}, image_channels=1)
    build("madun_concat", num_stages=2, channels=4)(y, op)  # seed=None: private generator
    assert torch.equal(torch.get_rng_state(), state)
    assert a.state_dict().keys() == b.state_dict().keys()
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    assert torch.equal(xa, xb)
    assert not torch.equal(c.stages[0].rb1.conv1.weight, a.stages[0].rb1.conv1.weight)
    assert not torch.equal(c.stages[0].conv_D.weight, a.stages[0].conv_D.weight)


def test_linear_init_uses_qinit():
    op = _block_op()
    y = _measure(op, torch.float32)
    model = build("madun", **SMALL, image_channels=1)
    lin = build("madun", **SMALL, image_channels=1, init="linear")
    with torch.no_grad():
        ref = model(y, op)
        op.set_qinit(op.phi.T)  # Q = Φ^T: linear init == adjoint init (up to rounding)
        torch.testing.assert_close(lin(y, op), ref, rtol=0, atol=1e-5)
        op.set_qinit(2 * op.phi.T)
        assert (lin(y, op) - ref).abs().max() > 1e-3


def test_grad_checkpoint_and_float64_agree():
    op, dt = _ops()["multi_coil"]
    y = _measure(op, dt)
    outs = []
    for ckpt in (False, True):
        m = build("madun", **SMALL, image_channels=2)
        m.grad_checkpoint = ckpt
        x = m(y, op)
        x.abs().sum().backward()
        outs.append((x.detach(), m.stages[0].rb1.conv1.weight.grad.clone()))
    assert torch.equal(outs[0][0], outs[1][0])
    torch.testing.assert_close(outs[0][1], outs[1][1], rtol=1e-5, atol=1e-6)
    m64 = build("madun_hsm", **SMALL, image_channels=2).double()  # the head follows .double()
    x64 = m64(y.to(torch.complex128), op)
    assert x64.dtype == torch.complex128 and m64.fe.weight.dtype == torch.float64


def test_bad_config_and_mismatched_operator():
    for kw, msg in [(dict(num_stages=0), "num_stages must be a positive integer, got 0"),
                    (dict(channels="32"), "channels must be a positive integer, got '32'"),
                    (dict(image_channels=3), "image_channels must be 1 .* got 3"),
                    (dict(image_channels=None), "image_channels must be 1 .* got None"),
                    (dict(init="zero"), r"init must be one of \('adjoint', 'linear'\), got 'zero'"),
                    (dict(seed=-1), "seed must be None or a non-negative integer, got -1"),
                    (dict(stages=3), r"unknown config key\(s\) \['stages'\] for model 'madun'")]:
        with pytest.raises(ValueError, match=msg):
            build("madun", **kw)
    op, dt = _ops()["single_complex"]
    model = build("madun_clm", **SMALL, image_channels=1)
    with pytest.raises(ValueError, match="image_channels=1 but SingleCoilFourier has a complex "
                                         r"image domain \(needs image_channels=2\)"):
        model(_measure(op, dt), op)
    with pytest.raises(ValueError, match="no linear initialiser"):
        build("madun", **SMALL, init="linear")(_measure(_block_op(), torch.float32), _block_op())


def test_load_official_dispatches_madun_checkpoints(golden, tmp_path):
    path = tmp_path / "net_params_1.pkl"
    torch.save(golden["state_dict"], path)
    model = load_official(path)
    assert model.arch == "madun" and not model.training
    with torch.no_grad():
        x = model(golden["y"], GaussianBlockCS.from_matrix(golden["Phi"]))
    assert (x - golden["x_out"]).abs().max().item() <= 1e-5
