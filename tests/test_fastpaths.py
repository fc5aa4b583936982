"""Fast paths agree with the plain fp32 path (numerically; no timings here)."""
from __future__ import annotations

import copy
import warnings

import pytest
import torch

from mri_unfold.fastpath import (FastPath, Fp32Operator, accelerate, autocast_dtype,
                                 compile_with_fallback, set_grad_checkpoint)
from mri_unfold.masks.split import SplitSettings, split_locations
from mri_unfold.models import build
from mri_unfold.operators import (GaussianBlockCS, LearnedBlockCS, MultiCoilFourier,
                                  SingleCoilFourier)
from mri_unfold.operators.block_cs import cheapest_normal_form


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _ops():
    maps = torch.randn(3, 16, 16, dtype=torch.complex64, generator=_gen(1))
    mask = torch.rand(16, 16, generator=_gen(2)) < 0.4
    mask[7:9, 7:9] = True
    theta, _ = split_locations(mask, SplitSettings(0.4), _gen(5))   # an SSDU Θ operator
    return {"block_cs": (GaussianBlockCS(0.25, block_size=8, seed=0), torch.float32),
            "multi_coil": (MultiCoilFourier(mask, maps), torch.complex64),
            "ssdu_theta": (MultiCoilFourier(theta, maps), torch.complex64)}


def _problem(op_name):
    op, dtype = _ops()[op_name]
    x = torch.randn(2, 1, 16, 16, dtype=dtype, generator=_gen(3))
    return op, op(x)


MODELS = {"madun": dict(num_stages=3, channels=6, seed=0),
          "ista_net_plus": dict(num_phases=3, channels=6, seed=0),
          "fista_net": dict(num_phases=3, channels=6, seed=0)}


def _model(name, op):
    return build(name, **MODELS[name], image_channels=2 if op.complex_domain else 1).eval()


# ------------------------------------------------------------------ block-CS normal forms
def test_cheapest_normal_form_is_chosen_by_m():
    assert cheapest_normal_form(545, 1089) == "gram"        # 50%: 1089² < 2·545·1089
    assert cheapest_normal_form(544, 1089) == "two_step"
    assert cheapest_normal_form(272, 1089) == "two_step"    # 25%
    assert GaussianBlockCS(0.6, block_size=8, seed=0).resolved_normal_form() == "gram"
    assert GaussianBlockCS(0.5, block_size=8, seed=0).resolved_normal_form() == "two_step"
    assert LearnedBlockCS(0.6, block_size=8, seed=0).resolved_normal_form() == "two_step"


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 2e-5), (torch.float64, 1e-12)])
def test_gram_and_two_step_normal_agree(dtype, tol):
    op = GaussianBlockCS(0.6, block_size=8, seed=3)
    x = torch.randn(2, 1, 16, 24, dtype=dtype, generator=_gen(4))
    out = {}
    for form in ("gram", "two_step", "auto"):
        op.normal_form = form
        out[form] = op.normal(x)
        assert out[form].dtype == dtype and out[form].shape == (2, 1, 16, 24)
    assert (out["gram"] - out["two_step"]).abs().max() <= tol
    assert torch.equal(out["auto"], out["gram"])


def test_gram_cache_follows_phi_changes():
    op = GaussianBlockCS(0.6, block_size=4, seed=0)
    op.normal_form = "gram"
    x = torch.randn(1, 1, 8, 8, generator=_gen(5))
    first = op.normal(x)
    with torch.no_grad():
        op.phi.mul_(2.0)  # in-place change: Φ^TΦ scales by 4
    assert (op.normal(x) - 4 * first).abs().max() <= 1e-5
    op.normal_form = "cheap"
    with pytest.raises(ValueError, match=r"normal_form must be one of \('auto', 'gram', "
                                         r"'two_step'\), got 'cheap'"):
        op.normal(x)


# ------------------------------------------------------------------ operators in fp32
def test_fp32_operator_keeps_phi_products_in_fp32_under_autocast():
    op = GaussianBlockCS(0.25, block_size=8, seed=0)
    x = torch.randn(1, 1, 16, 16, generator=_gen(6))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        unguarded = op.normal(x)
        guarded = Fp32Operator(op).normal(x)
        from_bf16 = Fp32Operator(op).normal(x.bfloat16())
    assert unguarded.dtype == torch.bfloat16  # why the guard exists
    assert guarded.dtype == torch.float32
    assert torch.equal(guarded, op.normal(x))
    assert torch.equal(from_bf16, op.normal(x.bfloat16().float()))


def test_fp32_operator_delegates_attributes_and_fourier():
    maps = torch.randn(4, 8, 8, dtype=torch.complex64, generator=_gen(7))
    op = MultiCoilFourier(torch.ones(8, 8, dtype=torch.bool), maps)
    w = Fp32Operator(Fp32Operator(op))
    assert w.op is op and w.num_coils == 4 and w.complex_domain and w.block_size is None
    sc = SingleCoilFourier(torch.rand(8, 8, generator=_gen(8)) < 0.5, real_input=True)
    x = torch.randn(1, 1, 8, 8, generator=_gen(9)).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = Fp32Operator(sc).normal(x)
    assert out.dtype == torch.float32 and torch.equal(out, sc.normal(x.float()))


# ------------------------------------------------------------------ accelerate()
@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("op_name", ["block_cs", "multi_coil", "ssdu_theta"])
def test_fast_paths_agree_with_plain(name, op_name):
    op, y = _problem(op_name)
    model = _model(name, op)
    with torch.no_grad():
        ref = model(y, op)
    scale = ref.abs().max().item()
    cases = [(FastPath(inference_mode=True), 0.0),
             (FastPath(channels_last=True), 1e-5),
             (FastPath(inference_mode=True, autocast="bf16"), 0.03 * scale)]
    for path, tol in cases:
        fast = accelerate(copy.deepcopy(model), path)
        with torch.no_grad():
            out, aux = fast(y, op, return_aux=True)
        assert out.dtype == ref.dtype and out.shape == ref.shape, path.describe()
        assert all(p.dtype == ref.dtype for p in aux["phases"])
        err = (out - ref).abs().max().item()
        assert err <= tol, (path.describe(), err, tol)


def test_compiled_path_agrees():
    op, y = _problem("block_cs")
    model = _model("madun", op)
    with torch.no_grad():
        ref = model(y, op)
        fast = accelerate(copy.deepcopy(model), compile="aot_eager", inference_mode=True)
        assert torch.equal(fast(y, op), ref)
    assert fast._call.compiled


def test_inductor_paths_agree_with_plain_madun():
    """The real inductor compilation (the benchmark's fastest paths), fp32 and bf16, on a
    tiny MADUN (~20-40 s of compilation on CPU)."""
    op, y = _problem("block_cs")
    model = build("madun", num_stages=2, channels=4, seed=0, image_channels=1).eval()
    with torch.no_grad():
        ref = model(y, op)
    scale = ref.abs().max().item()
    for path, tol in ((FastPath(inference_mode=True, compile=True), 1e-5),
                      (FastPath(inference_mode=True, autocast="bf16", compile=True),
                       0.03 * scale)):
        fast = accelerate(copy.deepcopy(model), path)
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # a fallback would be a failure
            out = fast(y, op)
        assert fast._call.compiled, path.describe()
        assert out.dtype == torch.float32 and out.shape == (2, 1, 16, 16)
        err = (out - ref).abs().max().item()
        assert err <= tol, (path.describe(), err, tol)
        if path.autocast:
            assert err > 0  # really ran in bf16


@pytest.mark.parametrize("bf16", [False, True])
@pytest.mark.parametrize("op_name", ["block_cs", "multi_coil", "ssdu_theta"])
def test_models_trace_into_one_graph_without_breaks(op_name, bf16):
    """torch.compile sees each model over each operator as one graph (a graph break, e.g.
    from a Python-side cache check in an operator, silently costs most of the speed-up);
    also under bf16 autocast with the operator behind Fp32Operator."""
    op, y = _problem(op_name)
    net_op = Fp32Operator(op) if bf16 else op
    for name in sorted(MODELS):
        model = _model(name, op)
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            ex = torch._dynamo.explain(model)(y, net_op)
        assert (ex.graph_count, ex.graph_break_count) == (1, 0), \
            (name, [str(b.reason)[:120] for b in ex.break_reasons])


def test_bf16_really_runs_the_cnn_in_bf16():
    op, y = _problem("block_cs")
    model = _model("madun", op)
    seen = []
    model.stages[0].rb1.conv1.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    accelerate(model, autocast="bf16", inference_mode=True)(y, op)
    assert seen == [torch.bfloat16]


def test_inference_mode_output_has_no_autograd():
    op, y = _problem("block_cs")
    out = accelerate(_model("madun", op), inference_mode=True)(y, op)
    assert out.is_inference() and not out.requires_grad


def test_channels_last_converts_weights_and_activations():
    op, y = _problem("block_cs")
    model = _model("madun", op)
    fast = accelerate(model, channels_last=True)
    w = model.stages[1].memory.conv_h.weight
    assert w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
    seen = []
    model.stages[1].rb1.conv1.register_forward_hook(
        lambda m, i, o: seen.append(o.is_contiguous(memory_format=torch.channels_last)))
    with torch.no_grad():
        fast(y, op)
    assert seen == [True]


def test_grad_checkpoint_gives_the_same_gradients():
    op, y = _problem("block_cs")
    grads = []
    for ckpt in (False, True):
        model = _model("madun", op).train()
        fast = accelerate(model, grad_checkpoint=ckpt)
        fast(y, op).square().mean().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
        assert model.grad_checkpoint is ckpt
    assert (grads[0] - grads[1]).abs().max() <= 1e-6
    with pytest.raises(ValueError, match="Linear has no per-stage gradient checkpointing"):
        set_grad_checkpoint(torch.nn.Linear(2, 2))
    assert set_grad_checkpoint(build("ista_net_plus", num_phases=1, channels=2)).grad_checkpoint


def test_compile_falls_back_with_a_warning():
    op, y = _problem("block_cs")
    model = _model("ista_net_plus", op)

    def broken_backend(gm, example_inputs):
        raise RuntimeError("no compiler here")

    fn = compile_with_fallback(model, backend=broken_backend)
    with torch.no_grad(), pytest.warns(RuntimeWarning, match="torch.compile unavailable or "
                                                             "failed .*using the eager model"):
        out = fn(y, op)
    assert not fn.compiled
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(fn(y, op), out)  # no second warning
        assert torch.equal(model(y, op), out)


def test_bad_switches():
    with pytest.raises(ValueError, match=r"FastPath.autocast must be one of \(None, 'bf16', "
                                         r"'fp16'\), got 'int8'"):
        FastPath(autocast="int8")
    with pytest.raises(ValueError, match="autocast='fp16' needs a CUDA device, got cpu"):
        autocast_dtype("fp16", "cpu")
    assert autocast_dtype("bf16", "cpu") == torch.bfloat16 and autocast_dtype(None, "cpu") is None
    assert FastPath().describe() == "plain"
    assert FastPath(inference_mode=True, autocast="bf16", compile=True).describe() == \
        "inference_mode+bf16+compile"
