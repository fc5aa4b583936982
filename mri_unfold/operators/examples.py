"""Contract examples of the algebra's operators (composed, sum, scaled, adjoint, normal).

The concrete operators register their examples next to their classes; the algebra's
classes live in :mod:`.base`, below every concrete operator, so their examples — built from
concrete operators — are registered here.
"""
from __future__ import annotations

import torch

from .base import Adjoint, Composed, Normal, Scaled, Sum
from ..masks.split import SplitSettings, split_locations
from .block_cs import GaussianBlockCS
from .fourier import MultiCoilFourier, SingleCoilFourier
from .noncartesian import NonCartesianFourier
from .overlap_block_cs import OverlapBlockCS
from .parts import FFT2, CoilExpansion, Identity, RealToComplex, SamplingMask
from .registry import OperatorExample, register_operator

__all__: list[str] = []


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _mask(*shape: int, seed: int) -> torch.Tensor:
    return torch.rand(*shape, generator=_g(seed)) < 0.5


def _maps(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.complex128, generator=_g(seed))


def _sc(seed: int = 1, real: bool = False) -> SingleCoilFourier:
    return SingleCoilFourier(_mask(6, 7, seed=seed), real_input=real)


register_operator("composed", examples=(
    OperatorExample("mask_fft_embed", lambda: SamplingMask(_mask(5, 6, seed=1)) @ FFT2()
                    @ RealToComplex(), (1, 5, 6)),
    OperatorExample("mask_fft_coils_per_sample", lambda: SamplingMask(_mask(2, 5, 4, seed=2))
                    @ FFT2("unshifted") @ CoilExpansion(_maps(2, 3, 5, 4, seed=3))),
    OperatorExample("block_cs_after_overlap_adjoint", lambda: GaussianBlockCS(0.5, 4, seed=0)
                    @ OverlapBlockCS(GaussianBlockCS(0.25, 4, seed=1), 4).H, (4, 2, 3)),
    OperatorExample("fourier_after_identity", lambda: _sc(2) @ Identity((1, 6, 7), True)),
    ))(Composed)

register_operator("sum", examples=(
    OperatorExample("fourier_minus_fourier", lambda: _sc(3) - 0.5 * _sc(4)),
    OperatorExample("real_input_sum", lambda: _sc(5, real=True) + _sc(6, real=True)),
    OperatorExample("block_cs_sum", lambda: GaussianBlockCS(0.25, 8, seed=0)
                    + GaussianBlockCS(0.25, 8, seed=1), (1, 8, 16)),
    ))(Sum)

register_operator("scaled", examples=(
    OperatorExample("complex_scale_multi_coil", lambda: (0.3 - 2j) * MultiCoilFourier(
        _mask(1, 6, seed=7), _maps(2, 5, 6, seed=8))),
    OperatorExample("complex_scale_real_input", lambda: (1 + 1j) * _sc(9, real=True)),
    OperatorExample("negated_block_cs", lambda: -GaussianBlockCS(0.25, 5, seed=2), (1, 10, 5)),
    ))(Scaled)

register_operator("adjoint", examples=(
    OperatorExample("single_coil", lambda: _sc(10).H),
    OperatorExample("real_input", lambda: _sc(11, real=True).H),
    OperatorExample("block_cs", lambda: GaussianBlockCS(0.25, 8, seed=3).H, (16, 2, 1)),
    ))(Adjoint)

register_operator("normal", examples=(
    OperatorExample("multi_coil", lambda: MultiCoilFourier(_mask(5, 4, seed=12),
                                                           _maps(3, 5, 4, seed=13)).N, (1, 5, 4)),
    OperatorExample("block_cs_gram", lambda: GaussianBlockCS(0.75, 4, seed=4).N, (1, 8, 8)),
    OperatorExample("composed", lambda: (2.0 * _sc(14, real=True)).N),
    ))(Normal)


# ---------------------------------------------------------------------------- SSDU splits
def _split(mask: torch.Tensor, part: int, real: bool = False, traj=None, shape=None,
           seed: int = 0) -> torch.Tensor:
    """Θ (``part`` 0) or Λ (1) of a seeded SSDU split of ``mask`` (:mod:`..masks.split`)."""
    settings = SplitSettings(ratio=0.4, acs=(2, 2) if traj is None else "auto",
                             acs_radius=1.0, hermitian=real)
    return split_locations(mask, settings, _g(seed), traj=traj, image_shape=shape)[part]


def _radial_points(n: int = 60) -> torch.Tensor:
    """``(n, 2)`` points on 6 spokes through the centre, in radians (conjugate pairs)."""
    r = torch.linspace(-torch.pi, torch.pi * 0.9, n // 6, dtype=torch.float64)
    angles = torch.arange(6, dtype=torch.float64) * torch.pi / 6
    return torch.stack([torch.outer(torch.cos(angles), r).flatten(),
                        torch.outer(torch.sin(angles), r).flatten()], -1)


def _ssdu_multi_coil(part: int) -> MultiCoilFourier:
    m = torch.stack([_split(_mask(6, 7, seed=20 + i) | _centre(6, 7), part, seed=i)
                     for i in range(2)])
    return MultiCoilFourier(m, _maps(2, 3, 6, 7, seed=22))


def _centre(h: int, w: int) -> torch.Tensor:
    c = torch.zeros(h, w, dtype=torch.bool)
    c[h // 2 - 1:h // 2 + 1, w // 2 - 1:w // 2 + 1] = True
    return c


def _ssdu_points(part: int) -> NonCartesianFourier:
    traj = _radial_points()
    return NonCartesianFourier(traj, (8, 8), mask=_split(torch.ones(len(traj), dtype=torch.bool),
                                                         part, traj=traj, shape=(8, 8)))


# Θ- and Λ-restricted operators of self-supervised training: the batch's operators with the
# split masks (single-coil complex and real with conjugate pairs, multi-coil per sample,
# non-Cartesian sample points)
register_operator("ssdu_split", examples=(
    OperatorExample("single_coil_theta", lambda: SingleCoilFourier(
        _split(_mask(6, 7, seed=10) | _centre(6, 7), 0))),
    OperatorExample("single_coil_lambda", lambda: SingleCoilFourier(
        _split(_mask(6, 7, seed=10) | _centre(6, 7), 1))),
    OperatorExample("real_theta", lambda: SingleCoilFourier(
        _split(_mask(6, 8, seed=11) | _centre(6, 8), 0, real=True), real_input=True)),
    OperatorExample("real_lambda", lambda: SingleCoilFourier(
        _split(_mask(6, 8, seed=11) | _centre(6, 8), 1, real=True), real_input=True)),
    OperatorExample("multi_coil_theta", lambda: _ssdu_multi_coil(0)),
    OperatorExample("multi_coil_lambda", lambda: _ssdu_multi_coil(1)),
    OperatorExample("noncartesian_theta", lambda: _ssdu_points(0)),
    OperatorExample("noncartesian_lambda", lambda: _ssdu_points(1)),
    ))
