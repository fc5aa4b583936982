"""Single-coil Cartesian MRI with a sampling mask learned jointly with the network (LOUPE).

After Bahadir, Wang, Dalca & Sabuncu, "Deep-learning-based optimization of the
under-sampling pattern in MRI" (IEEE TCI 2020), with the straight-through estimator of the
multi-coil extension (Zhang et al. 2020).  :class:`LearnedMaskFourier` is ``Φ = M F``
(``M F E`` with the real embedding ``E`` when ``real_input``), centred k-space layout,
where the mask ``M`` comes from trainable logits ``ℓ``:

* **logits** — ``(W,)`` one per k-space column (``dims=1``, Cartesian 1-D: a column is
  sampled on every row) or ``(H, W)`` one per point (``dims=2``); float32 parameter,
  initialised (seeded, private generator) so that the probabilities are uniform on (0, 1);
* **ACS** — a fixed, always sampled centre: ``round(cf·W)`` columns (1-D) or a
  ``round(cf·H) × round(cf·W)`` box (2-D), fastMRI's centred window; never learned;
* **probabilities** — ``p = σ(a ℓ)`` on the free (non-ACS) positions, ``a`` =
  ``prob_slope``; then **rescaled to the budget exactly**: with ``K`` samples in all
  (``round(ratio·W)`` columns or ``round(ratio·H·W)`` points), ``β = (K − n_acs) / n_free``
  and ``p̄ = mean p``: ``p' = p β / p̄`` when ``p̄ ≥ β``, else
  ``p' = 1 − (1 − p)(1 − β)/(1 − p̄)`` — ``mean p' = β``, so the expected number of
  samples is exactly ``K``;
* **binarised mask** (outside a training step; what ``forward``/``adjoint``/``normal``,
  :attr:`mask`, checkpoints and :meth:`binary_mask` use): the ACS plus the ``K − n_acs``
  free positions of largest ``p'`` (ties broken by position) — exactly ``K`` samples;
* **training step** (:meth:`training_step`, called by the training loop around each step):
  thresholds ``u ~ U(0, 1)`` drawn from a generator seeded by ``(seed, step)`` (the global
  RNG is never touched, and a resumed run draws the same masks), the hard sample
  ``h = 1[p' > u]`` and its relaxation ``s = σ(k (p' − u))`` with the slope ``k`` annealed
  geometrically from ``slope_start`` to ``slope_end`` over ``anneal_steps`` steps; the mask
  is ``h + s − stop_grad(s)``: its **values are exactly the binary sample** and its gradient
  is the relaxation's (straight-through estimator).

**The operator contract.**  At any fixed binary mask ``Φ`` is linear with the exact
adjoint ``F^H M`` (real part for ``real_input``): outside a step that mask is the binarised
one; inside a step every call uses the one sample of that step (recomputed from the
logits and the step's seed on each call, so it is the same sample), whose values are 0/1.
The registered contract examples cover both: the binarised mask, and an operator held at
a step's sample (:meth:`use_sample`).

Shapes: ``forward`` ``(N, 1, H, W)`` complex64/complex128 (float32/float64 with
``real_input``) -> ``(N, 1, H, W)`` complex k-space; ``adjoint`` the reverse.
"""
from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import nn

from ..errors import InvalidValue
from ..fft import fft2, ifft2
from ..masks.result import center_window, resolve_center_fraction
from .base import LinearOperator
from .parts import complex_dtype
from .registry import OperatorExample, register_operator

__all__ = ["LearnedMaskFourier", "rescale_to_budget", "annealed_slope"]

#: Multiplier separating the seeds of successive steps' thresholds.
_STEP_SEED = 1_000_003


def rescale_to_budget(p: torch.Tensor, beta: float) -> torch.Tensor:
    """LOUPE's rescaling of probabilities ``p`` (any shape, values in (0, 1)) to the mean
    ``beta`` in (0, 1) exactly, differentiably: scale down when ``mean p >= beta``, else
    scale ``1 − p`` down.  Returns a tensor of ``p``'s shape and dtype."""
    mean = p.mean()
    if float(mean.detach()) >= beta:
        return p * (beta / mean)
    return 1 - (1 - p) * ((1 - beta) / (1 - mean))


def annealed_slope(step: int, start: float, end: float, steps: int) -> float:
    """Geometric annealing: ``start`` at step 0, ``end`` from step ``steps`` on (``start``
    throughout when ``steps == 0``)."""
    if steps <= 0:
        return float(start)
    t = min(max(step, 0) / steps, 1.0)
    return float(start) * (float(end) / float(start)) ** t


@register_operator("learned_mask", examples=(
    OperatorExample("points_binarised", lambda: LearnedMaskFourier((12, 10), 0.3, seed=1)),
    OperatorExample("columns_binarised", lambda: LearnedMaskFourier(
        (9, 16), 0.25, dims=1, seed=2, real_input=True)),
    OperatorExample("points_step_sample", lambda: LearnedMaskFourier(
        (10, 11), 0.4, seed=3).use_sample(7)),
    OperatorExample("columns_step_sample_real", lambda: LearnedMaskFourier(
        (8, 12), 0.5, dims=1, seed=4, real_input=True).use_sample(2))))
class LearnedMaskFourier(LinearOperator):
    """``Φ = M F`` with a learned mask (module doc).

    Args:
        shape: k-space ``(H, W)``.
        ratio: sampling budget ``K / (H W)`` in (0, 1) (``1 / acceleration``).
        dims: 1 (one logit per column) or 2 (one per point).
        center_fraction: ACS fraction of each axis; ``None`` or 0: ``0.32 · ratio``
            (fastMRI's pairing, as :func:`mri_unfold.masks.make_mask`).
        seed: seeds the logits' initialisation and every step's thresholds.
        prob_slope: ``a`` in ``p = σ(a ℓ)``.
        slope_start, slope_end, anneal_steps: the relaxation's slope schedule.
        real_input: real images (``adjoint`` returns the real part), as
            :class:`~mri_unfold.operators.SingleCoilFourier`.
        acs: an explicit ``(rows, columns)`` ACS box instead of ``center_fraction`` (e.g.
            the 24 × 24 ky–kz block of a 3-D scan).

    Parameters: ``logits`` float32 ``(W,)`` or ``(H, W)``.  Buffers: ``acs`` bool
    ``(H, W)``.
    Raises:
        InvalidValue: ``dims`` not 1/2, ``ratio`` outside (0, 1), an ACS that leaves no
            free sample in the budget (or a budget that samples everything).
    """

    preserves_shape = True
    complex_range = True

    def __init__(self, shape, ratio: float, *, dims: int = 2, center_fraction=None,
                 seed: int = 0, prob_slope: float = 5.0, slope_start: float = 10.0,
                 slope_end: float = 200.0, anneal_steps: int = 0, real_input: bool = False,
                 acs=None):
        super().__init__()
        h, w = (int(s) for s in shape)
        if dims not in (1, 2):
            raise InvalidValue(f"learned mask: dims must be 1 (per column) or 2 (per point), "
                               f"got {dims!r}")
        if not 0 < ratio < 1:
            raise InvalidValue(f"learned mask: ratio must be in (0, 1), got {ratio!r}")
        if not (prob_slope > 0 and slope_start > 0 and slope_end > 0 and anneal_steps >= 0):
            raise InvalidValue("learned mask: prob_slope, slope_start and slope_end must be > 0"
                               f" and anneal_steps >= 0, got {prob_slope}, {slope_start}, "
                               f"{slope_end}, {anneal_steps}")
        self.dims, self.ratio, self.seed = int(dims), float(ratio), int(seed)
        self.prob_slope = float(prob_slope)
        self.schedule = (float(slope_start), float(slope_end), int(anneal_steps))
        self.real_input = bool(real_input)
        self.complex_domain = not self.real_input
        self.domain_shape = self.range_shape = (1, h, w)
        cf = resolve_center_fraction(center_fraction or None, self.ratio)
        box = acs
        acs = torch.zeros(h, w, dtype=torch.bool)
        cols = center_window(w, max(1, round(cf * w)) if box is None else int(box[-1]))
        if self.dims == 1:
            acs[:, cols] = True
        else:
            rows = max(1, round(cf * h)) if box is None else int(box[0])
            acs[center_window(h, rows), cols] = True
        self.register_buffer("acs", acs)
        units = w if self.dims == 1 else h * w
        acs_units = int(acs[0].sum()) if self.dims == 1 else int(acs.sum())
        self.budget = round(self.ratio * units)
        self.free_budget = self.budget - acs_units
        self.n_free = units - acs_units
        what = "columns" if self.dims == 1 else "points"
        if self.free_budget <= 0 or self.free_budget >= self.n_free:
            raise InvalidValue(f"learned mask {h}x{w} at ratio {self.ratio:g}: the budget of "
                               f"{self.budget} {what} leaves {self.free_budget} of {self.n_free} "
                               f"free {what} after the {acs_units} ACS {what}; choose another "
                               "ratio or center_fraction")
        g = torch.Generator().manual_seed(self.seed)
        u = torch.rand((w,) if self.dims == 1 else (h, w), generator=g) * 0.98 + 0.01
        self.logits = nn.Parameter(torch.logit(u) / self.prob_slope)
        self._step: int | None = None

    # ------------------------------------------------------------------ the mask
    def _free(self) -> torch.Tensor:
        """Bool ``(W,)`` or ``(H, W)``: the positions the logits decide."""
        return ~self.acs[0] if self.dims == 1 else ~self.acs

    def probabilities(self) -> torch.Tensor:
        """Rescaled sampling probabilities ``p'`` of the free positions, 1-D ``(n_free,)``
        in the logits' dtype (mean exactly ``free_budget / n_free``)."""
        free = self._free().to(self.logits.device)
        p = torch.sigmoid(self.prob_slope * self.logits[free])
        return rescale_to_budget(p, self.free_budget / self.n_free)

    def _expand(self, free_values: torch.Tensor) -> torch.Tensor:
        """``(n_free,)`` values -> the full ``(H, W)`` mask (ACS = 1), logits' dtype."""
        acs = self.acs.to(free_values.device)
        full = torch.zeros(acs.shape[1] if self.dims == 1 else acs.shape, dtype=free_values.dtype,
                           device=free_values.device)
        full = full.masked_scatter(self._free().to(full.device), free_values)
        full = full + (acs[0] if self.dims == 1 else acs).to(full.dtype)
        return full.expand(acs.shape) if self.dims == 1 else full

    def _kept(self, p: torch.Tensor) -> torch.Tensor:
        """Bool ``(n_free,)``: the ``free_budget`` free positions of largest ``p`` (ties by
        position)."""
        keep = torch.zeros_like(p, dtype=torch.bool)
        keep[torch.argsort(-p, stable=True)[: self.free_budget]] = True
        return keep

    def binarised(self) -> torch.Tensor:
        """The deterministic mask: bool ``(H, W)`` with exactly ``budget`` samples (rows ×
        columns for ``dims=1``)."""
        with torch.no_grad():
            p = self.probabilities()
            return self._expand(self._kept(p).to(p.dtype)) > 0.5

    def separation(self) -> float:
        """How decided the learned mask is, in ``[0, 1]``: the mean probability ``p'`` of the
        free positions the binarised mask keeps minus that of the positions it drops.  1: every
        kept probability is 1 and every dropped one 0 (a converged mask); at initialisation
        (uniform probabilities) about the free sampled fraction ``β`` (0.17 for 4x with an
        8 % centre): the binarised mask is then a uniform random mask."""
        with torch.no_grad():
            p = self.probabilities().double()
            keep = self._kept(p)
            if bool(keep.all()) or not bool(keep.any()):
                return 1.0
            return float(p[keep].mean() - p[~keep].mean())

    def sample(self, step: int) -> torch.Tensor:
        """The relaxed sample of training step ``step`` (module doc): float ``(H, W)`` in the
        logits' dtype, values exactly 0/1, gradient of the sigmoid relaxation."""
        p = self.probabilities()
        g = torch.Generator().manual_seed(self.seed * _STEP_SEED + int(step))
        u = torch.rand(p.shape, generator=g, dtype=torch.float64).to(p.device, p.dtype)
        hard = (p > u).to(p.dtype)
        soft = torch.sigmoid(annealed_slope(step, *self.schedule) * (p - u))
        return self._expand(hard + (soft - soft.detach()))

    layout = "centered"

    @property
    def mask(self) -> torch.Tensor:
        """The binarised bool ``(H, W)`` mask, centred layout (as ``SingleCoilFourier.mask``;
        baselines and ``recon`` read it)."""
        return self.binarised()

    def binary_mask(self) -> np.ndarray:
        """The binarised mask as ``float32`` 0/1 numpy ``(H, W)``, centred layout — what
        :func:`mri_unfold.masks.save_mask` writes and ``--mask-file`` reads."""
        return self.binarised().cpu().numpy().astype(np.float32)

    # ------------------------------------------------------------------ training steps
    def use_sample(self, step: int | None) -> "LearnedMaskFourier":
        """Hold the operator at step ``step``'s sample (``None``: the binarised mask)."""
        self._step = None if step is None else int(step)
        return self

    @contextlib.contextmanager
    def training_step(self, step: int):
        """The training loop's per-step hook: inside, every call uses step ``step``'s relaxed
        sample (slope annealed for ``step``); afterwards the binarised mask again."""
        before = self._step
        self.use_sample(step)
        try:
            yield self
        finally:
            self._step = before

    def current_mask(self, like: torch.Tensor) -> torch.Tensor:
        """The mask in use, ``(H, W)`` on ``like``'s device: float (relaxed sample, in
        ``like``'s real precision) inside a step, bool outside."""
        if self._step is None:
            return self._cached("_mask_cache", like.device, self.logits,
                                lambda: self.binarised().to(like.device))
        return self.sample(self._step).to(like.device, like.real.dtype)

    def masked(self, k: torch.Tensor) -> torch.Tensor:
        """``M ⊙ k`` for k-space ``(..., H, W)`` with the mask in use (:meth:`current_mask`):
        exact zeros outside a binary mask, the relaxed sample's values inside a step."""
        return self._masked(k)

    def _masked(self, k: torch.Tensor) -> torch.Tensor:
        m = self.current_mask(k)
        if m.dtype == torch.bool:
            return torch.where(m, k, torch.zeros((), dtype=k.dtype, device=k.device))
        return k * m

    # ------------------------------------------------------------------ Φ, Φ^H
    def _check_x(self, x: torch.Tensor) -> None:
        self.check_domain(x, "x")
        if self.real_input and x.is_complex():
            raise TypeError(f"LearnedMaskFourier(real_input=True) expects a real x (float32/"
                            f"float64) of shape (N, 1, H, W), got {x.dtype}")
        complex_dtype(x, "x")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``y = M F x``: ``(N, 1, H, W)`` image -> complex k-space of the same shape."""
        self._check_x(x)
        return self._masked(fft2(x, "centered"))

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """``F^H M y`` (its real part with ``real_input``)."""
        self.check_range(y, "y")
        complex_dtype(y, "y")
        x = ifft2(self._masked(y), "centered")
        return x.real.contiguous() if self.real_input else x

    def extra_repr(self) -> str:
        h, w = self.acs.shape
        return (f"shape=({h}, {w}), ratio={self.ratio:g}, dims={self.dims}, budget="
                f"{self.budget}, acs={int(self.acs.sum())} points, real_input={self.real_input}")

    # ------------------------------------------------------------------ checkpoints
    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "acs"
        if key in state_dict and not torch.equal(state_dict[key].bool().cpu(), self.acs.cpu()):
            raise InvalidValue(f"learned mask: the stored ACS ({int(state_dict[key].sum())} "
                               f"points) differs from this operator's ({int(self.acs.sum())}); "
                               "rebuild it with the stored operator settings")
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def learned_mask_from_config(cfg: dict, tensors=None, image_shape=None) -> LearnedMaskFourier:
    """``operator.kind = "learned_mask"``: ``ratio``, ``center_fraction`` (0: ``0.32·ratio``),
    ``seed``, ``real_input``, ``mask_dims``, ``mask_prob_slope``, ``mask_slope_start``,
    ``mask_slope_end``, ``mask_anneal_steps``, ``acs`` (``[rows, columns]``, instead of
    ``center_fraction``); the size from the training images or, when
    rebuilding from a checkpoint's ``tensors``, from the stored ACS."""
    if tensors is not None and "acs" in tensors:
        image_shape = tuple(tensors["acs"].shape)
    if image_shape is None:
        raise InvalidValue("operator.kind = 'learned_mask' needs the image size")
    op = LearnedMaskFourier(image_shape, cfg["ratio"], dims=cfg["mask_dims"],
                            center_fraction=cfg["center_fraction"], seed=cfg["seed"],
                            prob_slope=cfg["mask_prob_slope"],
                            slope_start=cfg["mask_slope_start"], slope_end=cfg["mask_slope_end"],
                            anneal_steps=cfg["mask_anneal_steps"], real_input=cfg["real_input"],
                            acs=tuple(cfg["acs"]) if cfg.get("acs") else None)
    if tensors is not None:
        op.load_state_dict({k: v for k, v in tensors.items() if k in ("logits", "acs")})
    return op


register_operator("learned_mask", from_config=learned_mask_from_config)
