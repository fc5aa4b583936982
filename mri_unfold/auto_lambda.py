"""Regularisation weights for the classical baselines chosen without ground truth.

The weight λ of L1-wavelet and TV (:mod:`mri_unfold.baselines`) depends on the scan: its
noise, its sparsity and its sampling.  ``lamda = "auto"`` picks it per scan by the held-out
k-space loss, the zero-shot rule of the networks (:mod:`mri_unfold.training.zero_shot`):

1. a seeded subset ``Γ`` (``holdout``, 20 %) of every slice's measured locations is held out
   (:func:`mri_unfold.masks.split.split_locations`: outside the calibration region,
   conjugate pairs together for real-valued images);
2. for every λ of :data:`LAMBDA_GRID` the method reconstructs from the rest, and the
   normalised L1–L2 distance between the solution's k-space at ``Γ`` and the measured
   samples there (:func:`mri_unfold.losses.kspace_loss`) is its loss;
3. the λ of the lowest loss is used with all the measurements.

λ is relative to a zero-filled peak of 1 (the baselines divide each slice by its zero-filled
maximum), so the grid fits any intensity scale.  For volumes, the choice is made on up to
:data:`MAX_SLICES` central slices and used for the whole scan.

Example:
    >>> from mri_unfold.auto_lambda import choose_lambda          # doctest: +SKIP
    >>> choice = choose_lambda("l1-wavelet", y, op)               # doctest: +SKIP
    >>> choice.lamda, choice.losses                               # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .baselines import baseline_images
from .errors import UserError
from .losses import kspace_loss
from .masks.split import SplitSettings, split_locations
from .operators import NonCartesianFourier, restricted, sampled_locations

__all__ = ["LAMBDA_GRID", "AUTO_METHODS", "MAX_SLICES", "LambdaChoice", "choose_lambda",
           "central_slices", "heldout_split"]

#: The candidates: half decades from 1e-5 to 1e-1 (relative to a zero-filled peak of 1).
LAMBDA_GRID = tuple(round(10 ** (e / 2), 8) for e in range(-10, -1))
#: Methods with a weight to choose.
AUTO_METHODS = ("l1-wavelet", "tv", "l1-wavelet-fista")
#: Slices of a volume the choice is made on.
MAX_SLICES = 3


@dataclass
class LambdaChoice:
    """The chosen ``lamda`` and the held-out loss of every candidate (``losses``)."""

    lamda: float
    losses: dict[float, float] = field(default_factory=dict)
    holdout: float = 0.2
    slices: list[int] = field(default_factory=list)


def central_slices(n: int, count: int = MAX_SLICES) -> list[int]:
    """Up to ``count`` slice indices around the middle of ``n`` slices."""
    count = min(count, n)
    start = (n - count) // 2
    return list(range(start, start + count))


def heldout_split(y: torch.Tensor, op, holdout: float = 0.2, seed: int = 0):
    """``(y_fit, op_fit, y_held, op_held)``: the measurements of ``op`` split into the fitted
    part ``Ω \\ Γ`` and the held-out part ``Γ`` (module doc), as measurements and operators.

    Raises:
        UserError: a slice whose locations cannot be split (too few, or all calibration).
    """
    n = y.shape[0]
    omega = sampled_locations(op, n).cpu()
    real = bool(getattr(op, "real_input", False))
    settings = SplitSettings(ratio=holdout, hermitian=real)
    g = torch.Generator().manual_seed(int(seed) * 7919 + 3)
    noncart = isinstance(op, NonCartesianFourier)
    held = []
    for i in range(n):
        traj = op.traj[min(i, op.traj.shape[0] - 1)].cpu() if noncart else None
        _, lam = split_locations(omega[i], settings, g, layout=getattr(op, "layout", "centered"),
                                 traj=traj, image_shape=getattr(op, "image_shape", None),
                                 where=f"slice {i}")
        held.append(lam)
    held = torch.stack(held).to(y.device)
    fit = omega.to(y.device) & ~held
    zero = torch.zeros((), dtype=y.dtype, device=y.device)
    y_fit = torch.where(fit.unsqueeze(1), y, zero)
    y_held = torch.where(held.unsqueeze(1), y, zero)
    return y_fit, restricted(op, fit), y_held, restricted(op, held)


def choose_lambda(method: str, y: torch.Tensor, op, *, grid=LAMBDA_GRID,
                  holdout: float = 0.2, seed: int = 0, max_iter: int | None = None
                  ) -> LambdaChoice:
    """Choose λ for ``method`` on the measurements ``y`` of ``op`` (module doc).

    Args:
        method: one of :data:`AUTO_METHODS`.
        y: ``(N, C, ...)`` measurements in ``op``'s range (the slices to decide on).
        op: their Cartesian or non-Cartesian Fourier operator.
        grid: the candidates; holdout: ``|Γ| / |Ω|``; seed: the split's seed;
        max_iter: the solver's iterations (its default if None).
    Returns:
        :class:`LambdaChoice`.
    Raises:
        UserError: an unknown method, an empty grid, measurements that cannot be split.
    """
    if method not in AUTO_METHODS:
        raise UserError(f"an automatic λ applies to {', '.join(AUTO_METHODS)}, not {method!r}")
    if not grid:
        raise UserError("the λ grid is empty")
    y_fit, op_fit, y_held, op_held = heldout_split(y, op, holdout, seed)
    losses = {}
    for lam in grid:
        opts = {"lamda": float(lam)}
        if max_iter:
            opts["max_iter"] = int(max_iter)
        x = baseline_images(method, y_fit, op_fit, **opts).unsqueeze(1)
        x = x.to(y.real.dtype) if not x.is_complex() else x.to(y.dtype)
        losses[float(lam)] = float(kspace_loss(op_held(x), y_held))
    best = min(losses, key=losses.get)
    return LambdaChoice(best, losses, holdout)
