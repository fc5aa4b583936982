"""The operator contract (mri_unfold.operators.check_operator) over every registered operator:
adding an operator is registering it with examples (mri_unfold.operators.register_operator)."""
from __future__ import annotations

import inspect

import pytest
import torch

import mri_unfold.operators as operators
from mri_unfold.operators import (
    LinearOperator,
    OperatorContractError,
    check_operator,
    operator_examples,
    registered_operators,
)

EXAMPLES = operator_examples()


@pytest.mark.parametrize("example", [ex for _, ex in EXAMPLES], ids=[i for i, _ in EXAMPLES])
def test_registered_operator_passes_the_contract(example):
    op = example.build()
    report = check_operator(op, domain_shape=example.domain_shape)
    assert report.passed and sorted(report.errors) == ["adjoint", "adjoint_ax", "linearity",
                                                       "normal"]
    assert all(err <= 1e-10 for err in report.errors.values()), report.errors


def _public_operator_classes():
    seen, todo = set(), [LinearOperator]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if sub.__module__.startswith("mri_unfold.operators") and not sub.__name__.startswith("_") \
                    and not inspect.isabstract(sub):
                seen.add(sub)
    return seen


def test_every_operator_class_is_registered_with_examples():
    registered = {e.cls: e for e in registered_operators().values() if e.cls is not None}
    classes = _public_operator_classes()
    assert {c.__name__ for c in classes} >= {
        "GaussianBlockCS", "LearnedBlockCS", "OverlapBlockCS", "SingleCoilFourier",
        "MultiCoilFourier", "SamplingMask", "FFT2", "CoilExpansion", "RealToComplex",
        "Identity", "Fp32Operator", "Composed", "Sum", "Scaled", "Adjoint", "Normal"}
    missing = sorted(c.__name__ for c in classes if c not in registered)
    assert not missing, f"operators without register_operator(...): {missing}"
    assert all(registered[c].examples for c in classes)
    # the named operators really have examples in the parametrised test
    ids = {i.split("/")[0] for i, _ in EXAMPLES}
    assert {"learned_block_cs", "overlap_block_cs", "fp32", "composed"} <= ids


class _Broken(LinearOperator):
    """2x with a wrong adjoint (3y), a wrong normal (5x) and a range declared complex although
    it is real."""

    domain_shape = range_shape = (1, 3, 3)
    complex_range = True

    def forward(self, x):
        return 2 * x

    def adjoint(self, y):
        return 3 * y.real

    def normal(self, x):
        return 5 * x


def test_check_operator_lists_every_failed_check():
    with pytest.raises(OperatorContractError) as info:
        check_operator(_Broken())
    msg = str(info.value)
    assert msg.startswith("_Broken fails the operator contract (input (2, 1, 3, 3)):")
    assert "declarations: forward(x) is torch.float64, declared complex" in msg
    assert "adjoint: relative error" in msg and "normal: relative error" in msg
    assert "adjoint_ax: relative error 5.000e-01" in msg  # |4 - 6| / 4
    assert isinstance(info.value, AssertionError)
    report = info.value.report
    assert report.errors["adjoint"] > 1e-3 and report.errors["linearity"] == 0
    assert not report.passed and len(report.failures) == 4


class _SlightlyScaledAdjoint(LinearOperator):
    """A single-coil Fourier operator whose adjoint is off by the factor 1 + 1e-7."""

    def __init__(self, n: int):
        super().__init__()
        from mri_unfold.operators import SingleCoilFourier

        mask = torch.rand(n, n, generator=torch.Generator().manual_seed(0)) < 0.5
        self.inner = SingleCoilFourier(mask.float())
        self.domain_shape, self.range_shape = self.inner.domain_shape, self.inner.range_shape
        self.complex_domain = self.complex_range = True

    def forward(self, x):
        return self.inner(x)

    def adjoint(self, y):
        return (1 + 1e-7) * self.inner.adjoint(y)

    def normal(self, x):
        return self.adjoint(self.forward(x))


def test_a_scaled_adjoint_fails_at_the_default_rtol():
    """The random dot-product test alone dilutes the scale error (about 1/sqrt(n)); the pair
    y = A x shows it undiluted."""
    with pytest.raises(OperatorContractError) as info:
        check_operator(_SlightlyScaledAdjoint(256))
    report = info.value.report
    assert report.errors["adjoint_ax"] == pytest.approx(1e-7, rel=1e-3)
    assert report.errors["adjoint"] < 1e-10  # the random y alone passes it (8.2e-11)
    assert report.failures == ["adjoint_ax: relative error 1.000e-07 > rtol 1.0e-10"]


class _Raises(LinearOperator):
    domain_shape = range_shape = (2,)

    def forward(self, x):
        return x

    def adjoint(self, y):
        raise RuntimeError("no adjoint yet")


def test_a_raising_operator_fails_with_the_exception_named():
    with pytest.raises(OperatorContractError, match=r"raised RuntimeError: no adjoint yet"):
        check_operator(_Raises())


def test_check_operator_uses_a_deep_float64_copy_and_a_private_generator():
    op = operators.SingleCoilFourier(torch.rand(4, 5, generator=torch.Generator().manual_seed(0))
                                     < 0.5)
    op_ms = operators.MultiCoilFourier(op.mask, torch.randn(2, 4, 5, dtype=torch.complex64))
    state = torch.random.get_rng_state()
    r1 = check_operator(op_ms)
    r2 = check_operator(op_ms, generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert r1.errors == r2.errors and r1.batch == 2 and r1.domain_shape == (1, 4, 5)
    assert op_ms.coil_maps_ri.dtype == torch.float32  # the operator itself is untouched


def test_check_operator_needs_concrete_domain_and_follows_batch_size():
    bcs = operators.GaussianBlockCS(0.25, 4, seed=0)
    with pytest.raises(ValueError, match=r"GaussianBlockCS declares the domain \(N, 1, \*, \*\); "
                                         r"give domain_shape="):
        check_operator(bcs)
    with pytest.raises(ValueError, match=r"domain_shape \(2, 4, 4\) does not fit the declared "
                                         r"domain \(N, 1, \*, \*\)"):
        check_operator(bcs, domain_shape=(2, 4, 4))
    per_sample = operators.SingleCoilFourier(torch.ones(3, 4, 5, dtype=torch.bool))
    assert check_operator(per_sample, batch=7).batch == 3
