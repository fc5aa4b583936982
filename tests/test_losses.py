"""Losses: hand-computed values, the authors' train-script formula, errors."""
from __future__ import annotations

import doctest

import pytest
import torch

import mri_unfold.losses as losses
from mri_unfold.losses import build_loss, l1_loss, mse_symmetry_loss, per_phase_loss
from mri_unfold.models import build
from mri_unfold.operators import GaussianBlockCS


def test_hand_values():
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    t = torch.zeros_like(x)
    sym = [torch.ones(1, 3, 2, 2), torch.full((1, 3, 2, 2), 2.0)]
    assert l1_loss(x, t).item() == 2.5
    # mse = 30/4 = 7.5; sym term = 1 + 4 = 5
    assert mse_symmetry_loss(x, t, sym).item() == pytest.approx(7.5 + 0.01 * 5)
    assert mse_symmetry_loss(x, t, sym, gamma=0.1).item() == pytest.approx(8.0)
    assert per_phase_loss([x, 2 * x], t, sym).item() == pytest.approx(7.5 + 30.0 + 0.05)
    z = torch.tensor([[[[3 + 4j]]]])
    assert mse_symmetry_loss(z, torch.zeros_like(z), []).item() == 25.0
    assert l1_loss(z, torch.zeros_like(z)).item() == 5.0


def test_matches_authors_train_script_formula():
    op = GaussianBlockCS(ratio=0.25, block_size=11, seed=0)
    model = build("ista_net_plus", num_phases=3, channels=4, image_channels=1, seed=0)
    x = torch.rand(2, 1, 22, 11, generator=torch.Generator().manual_seed(0))
    out, aux = model(op(x), op, return_aux=True)
    # authors: loss_discrepancy = mean((x_output - batch_x)^2);
    # loss_constraint = sum_k mean(layers_sym[k]^2); loss_all = disc + 0.01 * constraint
    constraint = torch.mean(torch.pow(aux["sym"][0], 2))
    for k in range(2):
        constraint += torch.mean(torch.pow(aux["sym"][k + 1], 2))
    ref = torch.mean(torch.pow(out - x, 2)) + torch.mul(torch.tensor([0.01]), constraint)
    got = build_loss("mse_sym")(out, x, aux)
    torch.testing.assert_close(got, ref.squeeze(), rtol=1e-6, atol=0)
    got.backward()
    assert model.phases[0].conv_d.grad.abs().sum() > 0


def test_build_loss_dispatch_and_errors():
    x, t = torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)
    aux = {"sym": [torch.ones(1, 1, 2, 2)], "phases": [3 * x, x]}
    assert build_loss("l1")(x, t, None).item() == 1.0
    assert build_loss("mse_sym", gamma=0.5)(x, t, aux).item() == 1.5
    assert build_loss("per_phase")(x, t, aux).item() == pytest.approx(9 + 1 + 0.01)
    with pytest.raises(ValueError, match="unknown loss 'l2'; valid losses: l1, mse_sym, per_phase"):
        build_loss("l2")
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['gamma'\] for loss 'l1'"):
        build_loss("l1", gamma=1)
    with pytest.raises(ValueError, match=r"needs aux\['sym'\]: call the model with return_aux=True"):
        build_loss("mse_sym")(x, t, None)
    with pytest.raises(ValueError, match=r"reconstruction \(1, 1, 2, 2\) and target \(1, 1, 2, 3\)"):
        mse_symmetry_loss(x, torch.zeros(1, 1, 2, 3), [])


def test_docstring_example():
    assert doctest.testmod(losses).failed == 0
