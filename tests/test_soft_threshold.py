"""The models' soft threshold: the authors' values and gradients, fewer passes."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mri_unfold.models.common import soft_threshold


def _authors(x, t):
    return torch.mul(torch.sign(x), F.relu(torch.abs(x) - t))


@pytest.mark.parametrize("thr", [0.01, -0.004])  # released checkpoints hold negative θ
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_values_and_gradients_equal_the_authors_form(dtype, thr):
    g = torch.Generator().manual_seed(0)
    x0 = (torch.randn(3, 8, 20, 20, generator=g) * 0.05).to(dtype)
    x0[0, 0, 0, :3] = torch.tensor([0.01, -0.01, 0.0], dtype=dtype)  # on the kinks
    w = torch.randn(x0.shape, generator=g)
    outs, grads = [], []
    for fn in (_authors, soft_threshold):
        x = x0.clone().requires_grad_()
        t = torch.tensor([thr], requires_grad=True)
        out = fn(x, t)
        outs.append(out)
        grads.append(torch.autograd.grad((out * w).sum(), [x, t]))
    assert outs[0].dtype == outs[1].dtype == torch.promote_types(dtype, torch.float32)
    assert torch.equal(outs[0], outs[1])
    assert torch.equal(grads[0][0], grads[1][0]) and grads[1][0].dtype == dtype
    assert grads[1][1].shape == (1,)
    assert torch.allclose(grads[0][1], grads[1][1], rtol=1e-5)


def test_double_backward_and_bad_threshold():
    x = torch.randn(2, 4, 5, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64,
                    requires_grad=True)
    for value in (0.3, -0.3):
        t = torch.tensor([value], dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(soft_threshold, (x, t))
    with pytest.raises(ValueError, match=r"one-element threshold, got shape \(2,\)"):
        soft_threshold(x, torch.ones(2))
