"""Operator algebra (@, +, -, scalar *, .H, .N, Identity), declared shapes, MRI operators
from parts, batched per-sample masks and coil maps, legacy state dicts, the registry and the
config factory (build_operator, fit_qinit, kspace_operator)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import mri_unfold.fastpath
from mri_unfold.errors import UserError
from mri_unfold.operators import (
    FFT2,
    Adjoint,
    CoilExpansion,
    Composed,
    Fp32Operator,
    GaussianBlockCS,
    Identity,
    LearnedBlockCS,
    MultiCoilFourier,
    Normal,
    OperatorExample,
    RealToComplex,
    SamplingMask,
    Scaled,
    ShapeError,
    SingleCoilFourier,
    Sum,
    build_operator,
    compute_qinit,
    fit_qinit,
    kspace_operator,
    operator_kinds,
    register_operator,
    registered_operators,
)
from mri_unfold.operators import registry as registry_module

LEGACY = Path(__file__).parent / "data" / "legacy_v1"


def _g(seed):
    return torch.Generator().manual_seed(seed)


def _c(*shape, seed):
    return torch.randn(*shape, dtype=torch.complex128, generator=_g(seed))


def _mask(*shape, seed):
    return torch.rand(*shape, generator=_g(seed)) < 0.5


# ---------------------------------------------------------------- algebra
def test_composition_sum_scaling_act_as_written():
    a = MultiCoilFourier(_mask(6, 5, seed=0), _c(3, 6, 5, seed=1))
    b = CoilExpansion(_c(1, 6, 5, seed=2)).H  # (N, 1, H, W) -> (N, 1, H, W) complex
    x, y = _c(2, 1, 6, 5, seed=3), _c(2, 3, 6, 5, seed=4)
    ab = a @ b
    assert isinstance(ab, Composed) and ab.ops == (a, b)
    torch.testing.assert_close(ab(x), a(b(x)), rtol=0, atol=0)
    torch.testing.assert_close(ab.adjoint(y), b.adjoint(a.adjoint(y)), rtol=0, atol=0)
    s = a + (0.5 - 1j) * a - a
    assert isinstance(s, Sum) and len(s.ops) == 3
    torch.testing.assert_close(s(x), (0.5 - 1j) * a(x), rtol=0, atol=1e-12)
    torch.testing.assert_close(s.adjoint(y), (0.5 + 1j) * a.adjoint(y), rtol=0, atol=1e-12)
    torch.testing.assert_close((-a)(x), -a(x), rtol=0, atol=0)
    assert isinstance(3 * (2 * a), Scaled) and (3 * (2 * a)).scale == 6.0 and (a * 2).op is a


def test_adjoint_and_normal_operators():
    a = SingleCoilFourier(_mask(5, 7, seed=5), real_input=True)
    assert a.H.H is a and isinstance(a.H, Adjoint) and isinstance(a.N, Normal)
    n = a.N
    assert n.H is n and Identity().H.domain_shape is None
    assert (a.H.domain_shape, a.H.range_shape) == ((1, 5, 7), (1, 5, 7))
    assert (a.H.complex_domain, a.H.complex_range) == (True, False)
    x = torch.randn(2, 1, 5, 7, dtype=torch.float64, generator=_g(6))
    torch.testing.assert_close(a.N(x), a.normal(x), rtol=0, atol=0)
    torch.testing.assert_close(a.H(a(x)), a.adjoint(a(x)), rtol=0, atol=0)
    torch.testing.assert_close((2j * a).normal(x), 4 * a.normal(x), rtol=0, atol=1e-12)
    i = Identity((1, 5, 7), complex_domain=True)
    z = _c(2, 1, 5, 7, seed=7)
    assert i(z) is z and i.adjoint(z) is z


def test_composed_normal_reuses_the_outer_closed_form(monkeypatch):
    outer = MultiCoilFourier(_mask(1, 6, seed=8), _c(4, 6, 6, seed=9))
    inner = Identity((1, 6, 6), complex_domain=True)
    calls = []
    real_normal = MultiCoilFourier.normal
    monkeypatch.setattr(MultiCoilFourier, "normal",
                        lambda self, x: calls.append(1) or real_normal(self, x))
    x = _c(1, 1, 6, 6, seed=10)
    torch.testing.assert_close((outer @ inner).normal(x), outer.adjoint(outer(x)), rtol=0,
                               atol=1e-12)
    assert calls == [1]


def test_operator_application_and_products_are_type_errors():
    a = GaussianBlockCS(0.25, 4, seed=0)
    x = torch.zeros(1, 1, 4, 4)
    with pytest.raises(TypeError, match=r"GaussianBlockCS @ tensor: .* call.*A\(x\)"):
        a @ x
    with pytest.raises(TypeError, match=r"tensor @ GaussianBlockCS"):
        x @ a
    with pytest.raises(TypeError, match=r"scales by a number; compose operators with A @ B"):
        a * a
    with pytest.raises(TypeError, match=r"scales by a number"):
        x * a
    with pytest.raises(TypeError):
        a + 1
    with pytest.raises(TypeError, match="scale must be a real or complex number"):
        Scaled(True, a)


def test_combining_checks_shapes_spaces_and_batch_sizes():
    with pytest.raises(ShapeError, match=r"cannot compose SamplingMask and CoilExpansion: the "
                                         r"ranges \(N, \*, 7, 9\) and \(N, 3, 7, 8\) do not match"):
        SamplingMask(_mask(7, 9, seed=0)) @ FFT2() @ CoilExpansion(_c(3, 7, 8, seed=1))
    with pytest.raises(ShapeError, match=r"cannot compose GaussianBlockCS @ SingleCoilFourier: "
                                         r"the range of SingleCoilFourier is complex but the "
                                         r"domain of GaussianBlockCS is real"):
        GaussianBlockCS(0.25, 4) @ SingleCoilFourier(_mask(4, 4, seed=2))
    with pytest.raises(ShapeError, match=r"insert a RealToComplex embedding"):
        FFT2() @ Identity((1, 3, 3))
    FFT2() @ RealToComplex() @ Identity((1, 3, 3))  # the embedding makes it fit
    with pytest.raises(ShapeError, match=r"cannot add SingleCoilFourier and SingleCoilFourier: "
                                         r"the domains \(N, 1, 4, 5\) and \(N, 1, 4, 6\)"):
        SingleCoilFourier(_mask(4, 5, seed=3)) + SingleCoilFourier(_mask(4, 6, seed=4))
    with pytest.raises(ShapeError, match=r"real -> complex and complex -> complex maps"):
        SingleCoilFourier(_mask(4, 5, seed=3), real_input=True) + SingleCoilFourier(_mask(4, 5,
                                                                                          seed=3))
    with pytest.raises(ShapeError, match=r"different batch sizes \(SingleCoilFourier: 2, "
                                         r"SingleCoilFourier: 3\)"):
        SingleCoilFourier(_mask(2, 4, 5, seed=5)) + SingleCoilFourier(_mask(3, 4, 5, seed=6))
    with pytest.raises(ShapeError, match=r"cannot scale GaussianBlockCS by the complex number"):
        1j * GaussianBlockCS(0.25, 4)


# ---------------------------------------------------------------- declarations
def test_declared_domains_and_ranges():
    sc = SingleCoilFourier(_mask(7, 9, seed=0))
    assert (sc.domain_shape, sc.range_shape, sc.batch_size) == ((1, 7, 9), (1, 7, 9), None)
    assert (sc.complex_domain, sc.complex_range) == (True, True)
    real = SingleCoilFourier(_mask(1, 9, seed=0), real_input=True)
    assert real.domain_shape == (1, None, 9) and (real.complex_domain, real.complex_range) == \
        (False, True)
    mc = MultiCoilFourier(_mask(3, 6, 5, seed=1), _c(3, 4, 6, 5, seed=2))
    assert (mc.domain_shape, mc.range_shape, mc.batch_size) == ((1, 6, 5), (4, 6, 5), 3)
    bcs = GaussianBlockCS(0.25, 8)
    assert (bcs.domain_shape, bcs.range_shape) == ((1, None, None), (16, None, None))
    assert Fp32Operator(mc).range_shape == (4, 6, 5) and Fp32Operator(mc).batch_size == 3
    composed = GaussianBlockCS(0.5, 4) @ SingleCoilFourier(_mask(8, 8, seed=3), real_input=True).H \
        @ SingleCoilFourier(_mask(8, 8, seed=4))
    assert composed.domain_shape == (1, 8, 8) and composed.range_shape == (8, None, None)
    assert (composed.complex_domain, composed.complex_range) == (True, False)


def test_shape_errors_name_the_operator_and_both_shapes():
    sc = SingleCoilFourier(_mask(7, 9, seed=0))
    with pytest.raises(ShapeError, match=r"^SingleCoilFourier: x of shape \(2, 1, 7, 8\) does "
                                         r"not match the domain \(N, 1, 7, 9\)"):
        sc(torch.zeros(2, 1, 7, 8, dtype=torch.complex64))
    per_sample = MultiCoilFourier(_mask(7, 9, seed=0), _c(2, 3, 7, 9, seed=1))
    with pytest.raises(ShapeError, match=r"^MultiCoilFourier: y of shape \(3, 3, 7, 9\) does "
                                         r"not match the range \(2, 3, 7, 9\)"):
        per_sample.adjoint(torch.zeros(3, 3, 7, 9, dtype=torch.complex64))
    chain = SamplingMask(_mask(7, 9, seed=0)) @ FFT2()
    with pytest.raises(ShapeError, match=r"^SamplingMask @ FFT2: x of shape \(1, 1, 7, 8\) "
                                         r"does not match the domain \(N, \*, 7, 9\)"):
        chain(torch.zeros(1, 1, 7, 8, dtype=torch.complex64))
    with pytest.raises(ShapeError, match=r"GaussianBlockCS: image sides \(16, 12\) are not "
                                         r"multiples of the block size 8"):
        GaussianBlockCS(0.25, 8)(torch.zeros(1, 1, 16, 12))


# ---------------------------------------------------------------- MRI operators from parts
@pytest.mark.parametrize("layout", ["centered", "unshifted"])
def test_fourier_operators_equal_their_parts(layout):
    m, maps = _mask(2, 6, 7, seed=11), _c(2, 3, 6, 7, seed=12)
    x, xr, y = _c(2, 1, 6, 7, seed=13), _c(2, 1, 6, 7, seed=14).real, _c(2, 3, 6, 7, seed=15)
    pairs = [
        (SingleCoilFourier(m, layout), SamplingMask(m) @ FFT2(layout), x, y[:, :1]),
        (SingleCoilFourier(m, layout, real_input=True),
         SamplingMask(m) @ FFT2(layout) @ RealToComplex(), xr, y[:, :1]),
        (MultiCoilFourier(m, maps, layout),
         SamplingMask(m) @ FFT2(layout) @ CoilExpansion(maps), x, y)]
    for op, parts, xi, yi in pairs:
        assert op.domain_shape[1:] == parts.domain_shape[1:] == (6, 7)  # parts: any channels
        torch.testing.assert_close(op(xi), parts(xi), rtol=0, atol=1e-12)
        torch.testing.assert_close(op.adjoint(yi), parts.adjoint(yi), rtol=0, atol=1e-12)
        torch.testing.assert_close(op.normal(xi), parts.normal(xi), rtol=0, atol=1e-12)
    sc = pairs[0][0]
    assert [n for n, _ in sc.named_children()] == ["sampling", "fft"]
    assert sc.mask is sc.sampling.mask and sc.layout == layout


def test_per_sample_masks_and_maps_in_one_operator_equal_per_sample_operators():
    masks, maps = _mask(3, 6, 5, seed=20), _c(3, 4, 6, 5, seed=21)
    x, y = _c(3, 1, 6, 5, seed=22), _c(3, 4, 6, 5, seed=23)
    for mask in (masks, masks[:, None], masks.float().numpy()):
        op = kspace_operator(mask, maps)
        assert isinstance(op, MultiCoilFourier) and op.mask.shape == (3, 1, 6, 5)
        for i in range(3):
            one = MultiCoilFourier(masks[i], maps[i])
            torch.testing.assert_close(op(x)[i:i + 1], one(x[i:i + 1]), rtol=0, atol=0)
            torch.testing.assert_close(op.adjoint(y)[i:i + 1], one.adjoint(y[i:i + 1]),
                                       rtol=0, atol=1e-14)
            torch.testing.assert_close(op.normal(x)[i:i + 1], one.normal(x[i:i + 1]), rtol=0,
                                       atol=1e-14)
    sc = kspace_operator(masks, layout="unshifted", real_input=True)
    assert isinstance(sc, SingleCoilFourier) and sc.batch_size == 3 and sc.layout == "unshifted"
    with pytest.raises(ValueError, match="real_input=True is for single-coil data"):
        kspace_operator(masks, maps, real_input=True)
    with pytest.raises(ValueError, match=r"mask of shape \(3, 1, 6, 5\) does not broadcast to "
                                         r"the k-space shape \(2, 1, 6, 5\)"):
        kspace_operator(masks)(x[:2])


def test_accepted_mask_layouts():
    for mask, pattern, batch in [((6, 5), (None, 6, 5), None), ((1, 5), (None, None, 5), None),
                                 ((5,), (None, None, 5), None), ((3, 6, 5), (None, 6, 5), 3),
                                 ((1, 6, 5), (None, 6, 5), None),
                                 ((2, 4, 6, 5), (4, 6, 5), 2), ((1, 4, 1, 5), (4, None, 5), None)]:
        part = SamplingMask(torch.ones(mask, dtype=torch.bool))
        assert (part.domain_shape, part.batch_size) == (pattern, batch), mask
    with pytest.raises(ValueError, match=r"\(H, W\) shared, \(N, H, W\) per sample or "
                                         r"\(N\|1, C\|1, H, W\)"):
        SamplingMask(torch.ones(1, 1, 1, 6, 5))
    with pytest.raises(ValueError, match="has several coils; use MultiCoilFourier"):
        SingleCoilFourier(torch.ones(1, 3, 6, 5))


def test_masking_stays_exact_in_place_and_out_of_place():
    m = _mask(2, 6, 5, seed=30)
    x = _c(2, 1, 6, 5, seed=31)
    for k in (SingleCoilFourier(m)(x), SamplingMask(m)(torch.fft.fft2(x)),
              SamplingMask(m).apply_(torch.fft.fft2(x))):
        zero = ~m[:, None].expand_as(k)
        assert (k[zero] == 0).all() and not torch.signbit(k.real[zero]).any()
        assert not torch.signbit(k.imag[zero]).any()


# ---------------------------------------------------------------- state dicts, checkpoints
def test_state_dict_keeps_flat_legacy_keys_and_accepts_nested_ones():
    m, maps = _mask(6, 5, seed=40), _c(2, 6, 5, seed=41)
    mc = MultiCoilFourier(m, maps)
    assert list(mc.state_dict()) == ["mask", "coil_maps_ri"]
    assert [n for n, _ in mc.named_buffers()] == ["sampling.mask", "coils.maps_ri"]
    nested = {"sampling.mask": mc.mask, "coils.maps_ri": mc.coil_maps_ri}
    for sd in (mc.state_dict(), nested):
        twin = MultiCoilFourier(torch.zeros(6, 5), torch.zeros(2, 6, 5, dtype=torch.complex128))
        twin.load_state_dict(sd)
        assert torch.equal(twin.mask, m) and torch.equal(twin.coil_maps, mc.coil_maps)
    wrapped = Composed(SingleCoilFourier(m), Identity((1, 6, 5), True))
    assert list(wrapped.state_dict()) == ["0.mask"]
    wrapped.load_state_dict(wrapped.state_dict())


def _legacy(name):
    tensors = load_file(LEGACY / f"{name}.safetensors")
    return {k[len("operator/"):]: v for k, v in tensors.items() if k.startswith("operator/")}


def test_legacy_checkpoint_operators_rebuild():
    cases = json.loads((LEGACY / "cases.json").read_text())
    cfgs = {"block_cs_ista_net_plus": {"kind": "block_cs"},
            "learned_block_cs_madun": {"kind": "learned_block_cs", "ratio": 0.25,
                                       "block_size": 11, "seed": 0},
            "single_coil_real_fista_net": {"kind": "single_coil", "layout": "centered",
                                           "real_input": True}}
    for name, cfg in cfgs.items():
        tensors = _legacy(name)
        op = build_operator(cfg, tensors=tensors)
        x = torch.zeros(cases[name]["x"], dtype=torch.float32)
        assert tuple(op(x).shape) == tuple(cases[name]["y"]), name
        key = "mask" if "mask" in tensors else "phi"
        assert torch.equal(getattr(op, key).detach().to(tensors[key].dtype), tensors[key])
    mask = _legacy("single_coil_real_fista_net")["mask"]
    op = SingleCoilFourier(torch.zeros_like(mask), real_input=True)
    op.load_state_dict({"mask": mask})
    assert torch.equal(op.mask, mask.bool())


# ---------------------------------------------------------------- factory
def test_build_operator_kinds_and_errors(tmp_path):
    assert {"block_cs", "learned_block_cs", "single_coil"} <= set(operator_kinds())
    with pytest.raises(UserError, match=r"operator.kind = 'radial' is not a known operator; "
                                        r"valid kinds: .*block_cs.*single_coil"):
        build_operator({"kind": "radial"})
    base = {"kind": "block_cs", "ratio": 0.5, "block_size": 33, "seed": 0, "qinit": "none",
            "matrix_dir": str(tmp_path)}
    op = build_operator(dict(base, phi="gaussian"))
    assert isinstance(op, GaussianBlockCS) and op.num_measurements == 545
    (tmp_path / "phi_0_25_1089.mat").touch()
    (tmp_path / "phi_0_10_1089.mat").touch()
    with pytest.raises(UserError, match=r"operator.ratio = 0.5: no authors' matrix "
                                        r"phi_0_50_1089.mat in .* \(available ratios in %: 10, "
                                        r"25\); use operator.phi = \"gaussian\""):
        build_operator(dict(base, phi="authors"))
    with pytest.raises(FileNotFoundError, match=r"operator.phi = '.*nope.mat': no such file"):
        build_operator(dict(base, phi=str(tmp_path / "nope.mat")))
    learned = build_operator({"kind": "learned_block_cs", "ratio": 0.25, "block_size": 11,
                              "seed": 0})
    assert isinstance(learned, LearnedBlockCS)
    sc_cfg = {"kind": "single_coil", "mask": "radial", "layout": "centered", "ratio": 0.3,
              "seed": 0, "center_fraction": 0.0, "real_input": True}
    with pytest.raises(UserError, match=r"operator.mask = 'radial': a generated mask needs the "
                                        r"image size"):
        build_operator(sc_cfg)
    sc = build_operator(sc_cfg, image_shape=(24, 24))
    assert isinstance(sc, SingleCoilFourier) and sc.real_input and sc.layout == "centered"
    assert sc.domain_shape == (1, 24, 24)
    with pytest.raises(FileNotFoundError, match="no such mask file"):
        build_operator(dict(sc_cfg, mask=str(tmp_path / "m.npy")))


def test_fit_qinit_matches_compute_qinit_and_needs_enough_blocks():
    op = GaussianBlockCS(0.25, 4, seed=0)
    images = torch.rand(2, 1, 21, 18, generator=_g(50))
    q = fit_qinit(op, images)
    blocks = images[..., :20, :16].reshape(2, 5, 4, 4, 4).permute(0, 1, 3, 2, 4).reshape(-1, 16)
    torch.testing.assert_close(q, compute_qinit(op.phi, blocks), rtol=0, atol=0)
    assert op.qinit is q
    with pytest.raises(UserError, match=r"operator.qinit = 'compute' needs at least 8 training "
                                        r"blocks for M = 4, the data give 1"):
        fit_qinit(GaussianBlockCS(0.25, 4, seed=0), torch.rand(1, 1, 4, 4))


# ---------------------------------------------------------------- registry, precision
@pytest.fixture()
def scratch_registry(monkeypatch):
    monkeypatch.setattr(registry_module, "_REGISTRY", dict(registry_module._REGISTRY))


def test_register_operator_decorator_and_merging(scratch_registry):
    ex = OperatorExample("tiny", lambda: Identity((1, 2, 2)))

    @register_operator("scratch_identity", examples=[ex])
    class ScratchIdentity(Identity):
        pass

    entry = registered_operators()["scratch_identity"]
    assert entry.cls is ScratchIdentity and entry.examples == (ex,)
    register_operator("scratch_identity", from_config=lambda cfg, **kw: ScratchIdentity())
    assert "scratch_identity" in operator_kinds()
    assert isinstance(build_operator({"kind": "scratch_identity"}), ScratchIdentity)
    with pytest.raises(ValueError, match="already has registered examples"):
        register_operator("scratch_identity", examples=[ex])
    with pytest.raises(ValueError, match="already registered for ScratchIdentity"):
        register_operator("scratch_identity")(Identity)
    with pytest.raises(ValueError, match="example names repeat"):
        register_operator("scratch_two", examples=[ex, ex])


def test_fp32_operator_moved_and_reexported():
    assert mri_unfold.fastpath.Fp32Operator is Fp32Operator
    op = MultiCoilFourier(_mask(4, 4, seed=60), _c(2, 4, 4, seed=61))
    wrapped = Fp32Operator(Fp32Operator(op))
    assert wrapped.op is op and wrapped.mask is op.mask and wrapped.complex_domain
    x = _c(1, 1, 4, 4, seed=62).to(torch.complex64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert wrapped.normal(x).dtype == torch.complex64
    assert torch.equal(wrapped(x), op(x))


def test_numpy_masks_and_maps_from_files_still_work():
    m = np.random.default_rng(0).random((6, 5)) < 0.5
    op = MultiCoilFourier(m.astype(np.float32), np.ones((2, 6, 5), np.complex64))
    assert op.mask.dtype == torch.bool and op.coil_maps.dtype == torch.complex64


def test_docs_operators_examples_run(shared, scratch_registry):
    """Every ```python block of docs/operators.md runs (each in a fresh namespace)."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "operators.md").read_text()
    blocks = re.findall(r"```python\n(.*?)\n```", text, flags=re.S)
    assert len(blocks) >= 10
    for i, code in enumerate(blocks):
        exec(compile(code, f"docs/operators.md[{i}]", "exec"), {"__name__": f"doc_{i}"})
