"""LearnedBlockCS (trainable Φ) and OverlapBlockCS (overlapping blocks, overlap-add adjoint)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from mri_unfold.operators import (
    GaussianBlockCS,
    LearnedBlockCS,
    OverlapBlockCS,
    gaussian_orthonormal_matrix,
)


@torch.no_grad()
def _rel_adjoint_error(op, x_shape, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(x_shape, generator=g, dtype=dtype)
    y_shape = op(x).shape
    y = torch.randn(y_shape, generator=g, dtype=dtype)
    lhs = torch.vdot(op(x).reshape(-1), y.reshape(-1)).real
    rhs = torch.vdot(x.reshape(-1), op.adjoint(y).reshape(-1)).real
    return float(abs(lhs - rhs) / abs(lhs))


# ---------------------------------------------------------------- LearnedBlockCS
def test_learned_phi_is_a_parameter_initialised_orthonormal():
    op = LearnedBlockCS(0.04, seed=3)
    params = dict(op.named_parameters())
    assert list(params) == ["phi"] and isinstance(op.phi, torch.nn.Parameter)
    assert op.phi.requires_grad and tuple(op.phi.shape) == (43, 1089)
    assert "phi" not in dict(op.named_buffers())
    assert list(op.state_dict()) == ["phi"]
    ref = gaussian_orthonormal_matrix(43, 1089, seed=3)
    assert torch.equal(op.phi.detach(), ref)
    assert op.orthonormality_error() < 1e-5
    x = torch.rand(2, 1, 66, 33)
    assert torch.equal(op(x), GaussianBlockCS.from_matrix(ref)(x))


def test_learned_gradients_reach_phi():
    op = LearnedBlockCS(0.25, block_size=11, seed=0).double()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 1, 22, 22, generator=g, dtype=torch.float64)
    loss = (op(x) ** 2).sum()
    loss.backward()
    # d/dΦ Σ_b ||Φ x_b||² = 2 Σ_b (Φ x_b) x_b^T  (row-major blocks)
    xb = x.reshape(2, 2, 11, 2, 11).permute(0, 1, 3, 2, 4).reshape(-1, 121)
    expect = 2 * (xb @ op.phi.detach().T).T @ xb
    torch.testing.assert_close(op.phi.grad, expect, rtol=1e-12, atol=1e-12)
    # and through the adjoint (the MADUN initialisation Φ^T y)
    op.zero_grad()
    y = torch.randn(1, 30, 1, 1, generator=g, dtype=torch.float64)
    op.adjoint(y).sum().backward()
    torch.testing.assert_close(op.phi.grad, y.reshape(30, 1).expand(30, 121))


def test_learned_adjoint_and_training_step_and_checkpoint():
    op = LearnedBlockCS(0.25, block_size=11, seed=0)
    assert op.num_measurements == 30
    assert _rel_adjoint_error(op, (2, 1, 22, 33)) < 1e-10
    opt = torch.optim.SGD(op.parameters(), lr=0.1)
    x = torch.rand(4, 1, 11, 11, generator=torch.Generator().manual_seed(0))
    before = op.phi.detach().clone()
    ((op.adjoint(op(x)) - x) ** 2).mean().backward()
    opt.step()
    assert not torch.equal(before, op.phi.detach())
    assert _rel_adjoint_error(op, (1, 1, 11, 22)) < 1e-10  # still exact after training
    other = LearnedBlockCS(0.25, block_size=11, seed=9)
    other.load_state_dict(op.state_dict())
    assert torch.equal(other.phi, op.phi) and isinstance(other.phi, torch.nn.Parameter)


def test_learned_linear_init_needs_qinit():
    op = LearnedBlockCS(0.25, block_size=11, seed=0)
    y = torch.rand(1, 30, 2, 2)
    with pytest.raises(ValueError, match="LearnedBlockCS has no linear initialiser"):
        op.linear_init(y)
    q = torch.rand(121, 30, generator=torch.Generator().manual_seed(0))
    op.set_qinit(q)
    ref = GaussianBlockCS.from_matrix(op.phi, qinit=q)
    assert torch.equal(op.linear_init(y), ref.linear_init(y))
    assert "qinit" in op.state_dict() and not op.state_dict()["qinit"].requires_grad


def test_learned_from_matrix_keeps_given_phi():
    phi = gaussian_orthonormal_matrix(43, 1089, seed=4)
    op = LearnedBlockCS.from_matrix(phi.numpy())
    assert isinstance(op, LearnedBlockCS) and isinstance(op.phi, torch.nn.Parameter)
    assert torch.equal(op.phi.detach(), phi) and op.num_measurements == 43
    assert op.block_size == 33


# ---------------------------------------------------------------- OverlapBlockCS
@pytest.mark.parametrize("stride,nb", [(33, 3), (22, 4), (11, 7)])
def test_overlap_shapes_and_block_values(stride, nb):
    base = GaussianBlockCS(0.10, seed=1)
    op = OverlapBlockCS(base, stride)
    x = torch.rand(2, 1, 99, 99, generator=torch.Generator().manual_seed(stride))
    y = op(x)
    assert y.shape == (2, 109, nb, nb) and y.dtype == torch.float32
    assert op.adjoint(y).shape == (2, 1, 99, 99)
    phi = base.phi.double()
    for r, c in [(0, 0), (nb - 1, 1), (1, nb - 1)]:
        blk = x[1, 0, r * stride:r * stride + 33, c * stride:c * stride + 33].double()
        torch.testing.assert_close(y[1, :, r, c].double(), phi @ blk.reshape(-1),
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("stride", [1, 3, 4, 8])
def test_overlap_adjoint_linearity_normal_float64(stride):
    op = OverlapBlockCS(GaussianBlockCS(0.25, block_size=8, seed=0), stride)
    side = 8 + 3 * stride
    assert _rel_adjoint_error(op, (2, 1, side, side + stride)) < 1e-10
    g = torch.Generator().manual_seed(5)
    x1, x2 = (torch.randn(2, 1, side, side, generator=g, dtype=torch.float64) for _ in range(2))
    torch.testing.assert_close(op(2.5 * x1 - 0.5 * x2), 2.5 * op(x1) - 0.5 * op(x2),
                               rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(op.normal(x1), op.adjoint(op(x1)), rtol=0, atol=0)


def test_overlap_adjoint_counts_covering_blocks():
    op = OverlapBlockCS(torch.eye(16), stride=2)  # Φ = I, B = 4: Φ^TΦ = coverage count
    x = torch.ones(1, 1, 10, 8, dtype=torch.float64)
    cover_h = np.array([sum(s <= p < s + 4 for s in range(0, 7, 2)) for p in range(10)])
    cover_w = np.array([sum(s <= p < s + 4 for s in range(0, 5, 2)) for p in range(8)])
    np.testing.assert_array_equal(op.normal(x)[0, 0].numpy(), np.outer(cover_h, cover_w))
    assert cover_h.tolist() == [1, 1, 2, 2, 2, 2, 2, 2, 1, 1]


def test_overlap_stride_equal_block_is_gaussian_block_cs_exactly():
    base = GaussianBlockCS(0.25, seed=2)
    op = OverlapBlockCS(base, 33)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 66, 99, generator=g)
    y = torch.randn(2, 272, 2, 3, generator=g)
    assert torch.equal(op(x), base(x)) and torch.equal(op.adjoint(y), base.adjoint(y))
    xc = torch.randn(1, 1, 33, 66, generator=g, dtype=torch.complex64)
    assert torch.equal(op(xc), base(xc))
    assert torch.equal(op.adjoint(base(xc)), base.adjoint(base(xc)))


def test_overlap_linear_init_is_overlap_average():
    op = OverlapBlockCS(GaussianBlockCS.from_matrix(torch.eye(16), qinit=torch.eye(16)), 1)
    x = torch.rand(1, 1, 7, 9, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(op.linear_init(op(x)), x, rtol=0, atol=1e-6)
    plain = OverlapBlockCS(GaussianBlockCS(0.25, block_size=4), 2)
    with pytest.raises(ValueError, match="no linear initialiser"):
        plain.linear_init(torch.zeros(1, 4, 2, 2))


def test_overlap_shares_learned_phi_and_its_gradients():
    learned = LearnedBlockCS(0.10, seed=0)
    op = OverlapBlockCS(learned, 22)
    assert op.block_size is None and op.measure_block == 33 and op.stride == 22
    assert [n for n, _ in op.named_parameters()] == ["block_op.phi"]
    assert "block_op.phi" in op.state_dict()
    x = torch.rand(1, 1, 77, 55, generator=torch.Generator().manual_seed(0))
    op(x).sum().backward()
    assert learned.phi.grad is not None and float(learned.phi.grad.abs().sum()) > 0


def test_overlap_errors():
    base = GaussianBlockCS(0.10, seed=0)
    for bad in (0, 34, 2.5, True):
        with pytest.raises(ValueError, match=r"stride must be an integer in \[1, 33\]"):
            OverlapBlockCS(base, bad)
    op = OverlapBlockCS(base, 22)
    with pytest.raises(ValueError, match=r"image size \(100, 99\) does not fit 33x33 blocks "
                                         r"with stride 22: each side must be 33 \+ k\*22"):
        op(torch.zeros(1, 1, 100, 99))
    with pytest.raises(ValueError, match=r"expects images \(N, 1, H, W\)"):
        op(torch.zeros(1, 2, 99, 99))
    with pytest.raises(ValueError, match=r"expects measurements \(N, 109, nb_h, nb_w\)"):
        op.adjoint(torch.zeros(1, 108, 4, 4))
    with pytest.raises(ValueError, match="not a square block size"):
        OverlapBlockCS(torch.zeros(10, 1000), 1)


def test_madun_trains_a_learned_phi_through_overlapping_blocks():
    from mri_unfold.models import build

    op = OverlapBlockCS(LearnedBlockCS(0.25, block_size=11, seed=0), stride=5)
    net = build("madun", num_stages=2, channels=8, seed=0)
    x = torch.rand(2, 1, 21, 26, generator=torch.Generator().manual_seed(0))
    y = op(x)
    assert y.shape == (2, 30, 3, 4)
    out = net(y, op)
    assert out.shape == (2, 1, 21, 26)
    torch.nn.functional.l1_loss(out, x).backward()
    grad = op.block_op.phi.grad
    assert grad is not None and bool(torch.isfinite(grad).all()) and float(grad.abs().max()) > 0
