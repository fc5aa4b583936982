"""Splitting the measured k-space locations for self-supervised learning (SSDU, ZS-SSL).

Self-supervised training from undersampled data (Yaman et al., MRM 2020, "SSDU") divides the
measured locations ``Ω`` of a scan into two disjoint sets: ``Θ``, used for data consistency
inside the network, and ``Λ``, whose measured values the network's output must predict (the
loss).  Zero-shot, scan-specific training (ZS-SSL, Yaman et al., ICLR 2022) first holds out a
third subset ``Γ`` of ``Ω`` that decides when to stop.  Every split here is one call of
:func:`split_locations` with a private generator:

* ``ratio`` ρ = ``|Λ| / |Ω|`` (the paper's default 0.4);
* ``distribution``: ``"uniform"`` over the candidates, or ``"gaussian"``: candidates weighted by
  a Gaussian centred at k = 0 with standard deviation ``gaussian_std`` of the k-space extent
  per axis (the paper's choice: a quarter);
* the **ACS region** always stays in ``Θ``: ``acs = "auto"`` is the fully sampled centred
  rectangle of ``Ω`` (Cartesian; the calibration lines of a 1-D mask, the calibration block of
  a 2-D mask) or, for non-Cartesian points, the samples with ``|k|`` within ``acs_radius``
  Nyquist units of the centre; ``(h, w)`` gives a centred block; ``"none"`` keeps nothing;
* ``hermitian``: for real-valued images the samples at ``k`` and ``−k`` carry the same
  information (``y(−k) = conj y(k)``), so they are held out *together* — otherwise the loss
  could be met through the other half of each pair and the network would learn nothing.

Locations: a Cartesian mask ``(H, W)`` bool (``layout`` ``"centered"`` or ``"unshifted"``), or
``(K,)`` bool sample points with their trajectory ``(K, 2)`` in radians (``[-π, π)``).  The
result is a pair of bool tensors of the input's shape, ``Θ ∪ Λ = Ω`` and ``Θ ∩ Λ = ∅``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import InvalidValue, UserError

__all__ = ["SplitSettings", "split_locations", "acs_region", "hermitian_partner",
           "MIN_HELD_OUT", "DISTRIBUTIONS"]

DISTRIBUTIONS = ("uniform", "gaussian")
#: The fewest measured locations outside the ACS region a split can hold out from.
MIN_HELD_OUT = 8


@dataclass(frozen=True)
class SplitSettings:
    """How to split ``Ω`` (module doc).

    Attributes:
        ratio: ``|Λ| / |Ω|`` in ``(0, 1)``.
        distribution: ``"uniform"`` or ``"gaussian"``.
        gaussian_std: the Gaussian's standard deviation as a fraction of the k-space extent.
        acs: ``"auto"``, ``"none"`` or a centred block ``(h, w)`` kept in ``Θ`` (Cartesian).
        acs_radius: non-Cartesian ACS radius in Nyquist units (``|k| <= acs_radius · 2π/N``).
        hermitian: split conjugate-symmetric pairs together (real-valued images).
    """

    ratio: float = 0.4
    distribution: str = "uniform"
    gaussian_std: float = 0.25
    acs: str | tuple[int, int] = "auto"
    acs_radius: float = 2.0
    hermitian: bool = False

    def __post_init__(self):
        if not (isinstance(self.ratio, (int, float)) and 0.0 < float(self.ratio) < 1.0):
            raise InvalidValue(f"split ratio must be in (0, 1), got {self.ratio!r}")
        if self.distribution not in DISTRIBUTIONS:
            raise InvalidValue(f"split distribution must be one of {', '.join(DISTRIBUTIONS)}, "
                               f"got {self.distribution!r}")
        if not (math.isfinite(self.gaussian_std) and self.gaussian_std > 0):
            raise InvalidValue(f"gaussian_std must be > 0, got {self.gaussian_std!r}")
        if not (math.isfinite(self.acs_radius) and self.acs_radius >= 0):
            raise InvalidValue(f"acs_radius must be >= 0, got {self.acs_radius!r}")
        acs = self.acs
        if isinstance(acs, str):
            if acs not in ("auto", "none"):
                raise InvalidValue(f"acs must be 'auto', 'none' or a block (h, w), got {acs!r}")
        elif not (isinstance(acs, (tuple, list)) and len(acs) == 2
                  and all(isinstance(a, int) and a >= 0 for a in acs)):
            raise InvalidValue(f"acs must be 'auto', 'none' or a block (h, w) of ints >= 0, "
                               f"got {acs!r}")

    def with_ratio(self, ratio: float) -> "SplitSettings":
        """The same settings with another ``ratio`` (e.g. for the held-out set ``Γ``)."""
        return SplitSettings(ratio, self.distribution, self.gaussian_std, self.acs,
                             self.acs_radius, self.hermitian)


def _centre(n: int, layout: str) -> int:
    return n // 2 if layout == "centered" else 0


def _frequencies(n: int, layout: str) -> torch.Tensor:
    """Signed frequency index of every position along an axis of length ``n``."""
    i = torch.arange(n)
    if layout == "centered":
        return i - n // 2
    return torch.where(i < (n + 1) // 2, i, i - n)


def hermitian_partner(shape: tuple[int, int], layout: str) -> torch.Tensor:
    """``(H, W)`` int64: the flat index of the location of ``−k`` for every location ``k``."""
    h, w = shape
    pi = (2 * _centre(h, layout) - torch.arange(h)) % h
    pj = (2 * _centre(w, layout) - torch.arange(w)) % w
    return (pi[:, None] * w + pj[None, :]).long()


def _cartesian_acs(omega: torch.Tensor, acs, layout: str) -> torch.Tensor:
    """The ACS block of an ``(H, W)`` bool mask (module doc)."""
    h, w = omega.shape
    out = torch.zeros_like(omega)
    if acs == "none":
        return out
    ch, cw = _centre(h, layout), _centre(w, layout)
    fy, fx = _frequencies(h, layout), _frequencies(w, layout)
    if acs != "auto":
        bh, bw = acs
        rows = (fy >= -(bh // 2)) & (fy < bh - bh // 2)
        cols = (fx >= -(bw // 2)) & (fx < bw - bw // 2)
        return rows[:, None] & cols[None, :] & omega
    if not bool(omega[ch, cw]):
        return out
    # the largest centred rectangle inside Ω: for each row half-extent a, the widest column
    # half-extent b(a) whose columns are measured on all those rows; keep the largest area
    best, best_area = None, 0
    for a in range(0, int(fy.abs().max()) + 1):
        rows = fy.abs() <= a
        broken = fx.abs()[~omega[rows].all(0)]
        b = int(broken.min()) - 1 if broken.numel() else int(fx.abs().max())
        if b < 0:
            break
        area = int(rows.sum()) * int((fx.abs() <= b).sum())
        if area > best_area:
            best, best_area = (a, b), area
    a, b = best
    rows, cols = fy.abs() <= a, fx.abs() <= b
    # an even-sized calibration block has one more line on the negative side (fastMRI's
    # centre window): extend by that line where it is measured too
    for axis in (0, 1):
        more_rows = rows | (fy == -(a + 1)) if axis == 0 else rows
        more_cols = cols | (fx == -(b + 1)) if axis == 1 else cols
        if bool(omega[more_rows][:, more_cols].all()):
            rows, cols = more_rows, more_cols
    return rows[:, None] & cols[None, :]


def acs_region(omega: torch.Tensor, settings: SplitSettings, *, layout: str = "centered",
               traj: torch.Tensor | None = None, image_shape: tuple[int, int] | None = None
               ) -> torch.Tensor:
    """The locations of ``omega`` that always stay in ``Θ`` (module doc), same shape, bool."""
    if traj is None:
        return _cartesian_acs(omega.bool(), settings.acs, layout)
    if settings.acs == "none" or settings.acs_radius == 0:
        return torch.zeros_like(omega, dtype=torch.bool)
    n = max(image_shape) if image_shape else 1
    radius = settings.acs_radius * 2 * math.pi / n
    return omega.bool() & (traj.double().norm(dim=-1) <= radius)


def _weights(settings: SplitSettings, shape, layout: str, traj) -> torch.Tensor:
    """Selection weight of every location (flattened), float64."""
    if traj is not None:
        k = traj.double()
        if settings.distribution == "uniform":
            return torch.ones(k.shape[0], dtype=torch.float64)
        s = settings.gaussian_std * 2 * math.pi
        return torch.exp(-0.5 * (k / s).pow(2).sum(-1))
    h, w = shape
    if settings.distribution == "uniform":
        return torch.ones(h * w, dtype=torch.float64)
    fy = _frequencies(h, layout).double() / (settings.gaussian_std * h)
    fx = _frequencies(w, layout).double() / (settings.gaussian_std * w)
    return torch.exp(-0.5 * (fy[:, None].pow(2) + fx[None, :].pow(2))).flatten()


def _point_partners(traj: torch.Tensor) -> torch.Tensor:
    """``(K,)`` index of the sample at ``−k`` for every sample (itself where there is none),
    matched on coordinates rounded to 1e-6 rad."""
    key = torch.round(traj.double() * 1e6).long()
    table = {(int(a), int(b)): i for i, (a, b) in enumerate(key.tolist())}
    return torch.tensor([table.get((-a, -b), i) for i, (a, b) in enumerate(key.tolist())],
                        dtype=torch.long)


def split_locations(omega: torch.Tensor, settings: SplitSettings,
                    generator: torch.Generator, *, layout: str = "centered",
                    traj: torch.Tensor | None = None,
                    image_shape: tuple[int, int] | None = None,
                    where: str = "the mask") -> tuple[torch.Tensor, torch.Tensor]:
    """Split the measured locations ``omega`` into ``(Θ, Λ)`` (module doc).

    Args:
        omega: ``(H, W)`` Cartesian mask or ``(K,)`` sample mask; bool or 0/1.
        settings: :class:`SplitSettings`.
        generator: a private ``torch.Generator`` (the global RNG is never used).
        layout: the Cartesian k-space layout.
        traj: ``(K, 2)`` sample coordinates in radians (non-Cartesian).
        image_shape: the image ``(H, W)`` (non-Cartesian ACS radius).
        where: what ``omega`` is, for error messages.
    Returns:
        ``(theta, lam)``: bool tensors shaped like ``omega``.
    Raises:
        UserError: every measured location is in the ACS region, or fewer than
            :data:`MIN_HELD_OUT` locations (pairs, when ``hermitian``) are left to hold out.
    """
    om = omega.detach().to("cpu").bool()
    if traj is None and om.ndim != 2:
        raise InvalidValue(f"{where}: a Cartesian split needs an (H, W) mask, got shape "
                           f"{tuple(om.shape)}")
    if traj is not None and (om.ndim != 1 or traj.shape != (om.shape[0], 2)):
        raise InvalidValue(f"{where}: a non-Cartesian split needs a (K,) mask and a (K, 2) "
                           f"trajectory, got {tuple(om.shape)} and {tuple(traj.shape)}")
    flat = om.flatten()
    acs = acs_region(om, settings, layout=layout,
                     traj=None if traj is None else traj.detach().cpu(),
                     image_shape=image_shape).flatten()
    measured = int(flat.sum())
    if measured == 0:
        raise UserError(f"{where}: no measured k-space locations to split")
    free = flat & ~acs
    if not bool(free.any()):
        raise UserError(f"{where}: all {measured} measured locations are in the ACS region "
                        "(a fully sampled or all-calibration mask); nothing can be held out "
                        "for self-supervision")
    idx = torch.arange(flat.numel())
    if settings.hermitian:
        partner = (_point_partners(traj.detach().cpu()) if traj is not None
                   else hermitian_partner(tuple(om.shape), layout).flatten())
        # a location can be held out if its conjugate partner is not measured, or is measured
        # and free too (then the pair goes together); one representative per pair
        rep = torch.minimum(idx, partner)
        ok = free & (free[partner] | ~flat[partner])
        candidates = torch.unique(rep[ok])
        other = partner[candidates]
        size = flat[candidates].long() + (flat[other] & (other != candidates)).long()
    else:
        rep, candidates = idx, free.nonzero()[:, 0]
        size = torch.ones_like(candidates)
    if candidates.numel() < MIN_HELD_OUT:
        raise UserError(f"{where}: only {candidates.numel()} measured "
                        f"{'locations (or conjugate pairs)' if settings.hermitian else 'locations'}"
                        f" outside the ACS region; at least {MIN_HELD_OUT} are needed to split "
                        "the measurements")
    w = _weights(settings, tuple(om.shape), layout, None if traj is None else traj.cpu())
    order = torch.multinomial(w[candidates].clamp_min(1e-300), candidates.numel(),
                              replacement=False, generator=generator)
    # classes in that order until ρ|Ω| locations are held out (at least one class, and at
    # least one free class left in Θ)
    need = settings.ratio * measured
    taken = int(torch.searchsorted(size[order].cumsum(0).double(), torch.tensor(need)).item()) + 1
    taken = min(max(taken, 1), candidates.numel() - 1)
    lam = torch.zeros_like(flat)
    lam[candidates[order[:taken]]] = True
    lam = (lam[rep] & flat).reshape(om.shape)
    theta = om & ~lam
    return theta.to(omega.device), lam.to(omega.device)
