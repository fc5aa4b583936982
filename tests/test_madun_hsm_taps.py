"""MADUN Table 1 rows (c) ∗HSM and (d) ◦HSM: where the short-term memory is taken.

Golden-style wiring tests: an independent functional reference of one PMM+HSM stage written
with ``F.conv2d`` on the state dict (no model code) must give the models' outputs, and
forward hooks show which tensor each stage hands to the next one as ``z``.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mri_unfold.models import available_models, build
from mri_unfold.models.common import from_cnn, to_cnn
from mri_unfold.models.madun import HSM_TAPS
from mri_unfold.operators import GaussianBlockCS, SingleCoilFourier

TAP_MODELS = {"rb2": "madun_hsm", "conv3": "madun_hsm_conv3", "rb1": "madun_hsm_rb1"}
CFG = dict(num_stages=3, channels=4, seed=3)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _rb(t, sd, p):
    h = F.relu(F.conv2d(t, sd[p + "conv1.weight"], sd[p + "conv1.bias"], padding=1))
    return t + F.conv2d(h, sd[p + "conv2.weight"], sd[p + "conv2.bias"], padding=1)


def reference(sd: dict, y, op, num_stages: int, tap: str):
    """PMM + HSM of Eq. 11 with the memory z(k) taken at ``tap``, from the raw weights."""
    pty = op.adjoint(y)
    x = pty
    z = F.conv2d(to_cnn(pty), sd["fe.weight"], sd["fe.bias"], padding=1)      # Conv0, Eq. 16
    for k in range(num_stages):
        p = f"stages.{k}."
        rho = sd[p + "rho"]
        r = x - rho * op.normal(x) + rho * pty                                  # GDM, Eq. 5
        f = F.conv2d(torch.cat([to_cnn(r), z], 1), sd[p + "conv_D.weight"], padding=1)  # Conv3
        s = _rb(f, sd, p + "rb1.")
        o = _rb(s, sd, p + "rb2.")
        x = r + from_cnn(F.conv2d(o, sd[p + "conv_G.weight"], padding=1), r.is_complex())
        z = {"rb2": o, "conv3": f, "rb1": s}[tap]
    return x


def _cases():
    img = torch.rand(2, 1, 16, 16, generator=_gen(1))
    block = GaussianBlockCS(ratio=0.25, block_size=8, seed=1)
    mask = torch.rand(16, 16, generator=_gen(2)) < 0.35
    single = SingleCoilFourier(mask)
    zc = torch.randn(2, 1, 16, 16, dtype=torch.complex64, generator=_gen(4))
    return {"block_cs": (block, block(img), 1), "single_complex": (single, single(zc), 2)}


def test_variants_are_registered_with_the_hsm_key_set():
    assert {"madun_hsm_conv3", "madun_hsm_rb1"} <= set(available_models())
    assert HSM_TAPS == ("rb2", "conv3", "rb1")
    shapes = {k: v.shape for k, v in build("madun_hsm", **CFG).state_dict().items()}
    for name in ("madun_hsm_conv3", "madun_hsm_rb1"):
        m = build(name, **CFG)
        assert {k: v.shape for k, v in m.state_dict().items()} == shapes
        assert m.HSM and m.MEMORY == "none"
        assert m.stages[0].conv_D.weight.shape == (4, 5, 3, 3)   # Conv3: C + I -> C
    # same seed -> same initial weights as madun_hsm (only the wiring differs)
    a, b = build("madun_hsm", **CFG).state_dict(), build("madun_hsm_rb1", **CFG).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("case", ["block_cs", "single_complex"])
@pytest.mark.parametrize("tap", HSM_TAPS)
def test_models_match_the_functional_reference(tap, case):
    op, y, ic = _cases()[case]
    model = build(TAP_MODELS[tap], **CFG, image_channels=ic).eval()
    sd = {k: v.detach() for k, v in model.state_dict().items()}
    with torch.no_grad():
        got = model(y, op)
        want = reference(sd, y, op, CFG["num_stages"], tap)
        others = [reference(sd, y, op, CFG["num_stages"], t) for t in HSM_TAPS if t != tap]
    assert got.dtype == want.dtype and got.shape == want.shape == (2, 1, 16, 16)
    assert (got - want).abs().max() <= 1e-6
    for other in others:  # the tap is what makes the difference (> 1e-4, far above rounding)
        assert (got - other).abs().max() > 1e-4


@pytest.mark.parametrize("tap,module", [("conv3", "conv_D"), ("rb1", "rb1"), ("rb2", "rb2")])
def test_next_stage_receives_the_tapped_tensor(tap, module):
    op, y, _ = _cases()["block_cs"]
    model = build(TAP_MODELS[tap], **CFG).eval()
    seen = {}
    for k, stage in enumerate(model.stages):
        getattr(stage, module).register_forward_hook(
            lambda m, i, o, k=k: seen.__setitem__(("out", k), o.detach().clone()))
        stage.conv_D.register_forward_hook(
            lambda m, i, o, k=k: seen.__setitem__(("in", k), i[0].detach().clone()))
    with torch.no_grad():
        model(y, op)
    for k in range(1, CFG["num_stages"]):
        memory_in = seen[("in", k)][:, 1:]          # channels after the image channel
        assert torch.equal(memory_in, seen[("out", k - 1)])


def test_one_stage_is_independent_of_the_tap_and_gradients_reach_everything():
    op, y, _ = _cases()["block_cs"]
    one = dict(CFG, num_stages=1)
    outs = [build(TAP_MODELS[t], **one).eval()(y, op).detach() for t in HSM_TAPS]
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])
    for name in ("madun_hsm_conv3", "madun_hsm_rb1"):
        model = build(name, **CFG).train()
        model(y, op).square().mean().backward()
        missing = [k for k, p in model.named_parameters()
                   if k != "stages.0.rho" and (p.grad is None or p.grad.abs().sum() == 0)]
        assert missing == []
