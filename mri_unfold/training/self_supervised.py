"""Self-supervised training from undersampled k-space alone: ``training.objective = "ssdu"``.

SSDU (Yaman et al., MRM 2020): every step splits each sample's measured locations ``Ω`` into
``Θ`` and ``Λ`` (:func:`mri_unfold.masks.split.split_locations`: ratio ρ = ``|Λ|/|Ω|``,
uniform or Gaussian, the ACS region kept in ``Θ``, conjugate pairs together for real-valued
images).  The network reconstructs from the ``Θ`` samples with the ``Θ`` operator,
``x = f(y_Θ, Φ_Θ)``, and the loss compares its k-space ``Φ_Λ x`` with the measured ``y_Λ``
(:func:`mri_unfold.losses.kspace_loss`: the paper's normalised L1–L2, or L2, L1), plus an
optional weight on the ISTA-Net symmetry residuals.  ``masks_per_sample`` > 1 draws several
splits of every sample per step (multi-mask SSDU).  The ``Θ`` and ``Λ`` operators are the
operators of the batch with their masks restricted (Cartesian masks, or the sample points of
a non-Cartesian trajectory), built by the same factory as every k-space operator.

Nothing here reads a reference image: batches may carry none, or NaN ones.  Validation
(:func:`heldout_validation`) holds out a fixed, seeded ``Λ`` of every validation sample and
reports the k-space loss there (lower is better); where the samples carry references, the
PSNR/SSIM of the full-``Ω`` reconstruction is reported beside it.

Splits are drawn from a generator seeded by the run seed and the step, so a resumed run draws
the same splits as an uninterrupted one.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from .. import metrics
from ..data.samples import SampleBatch, collate_samples
from ..errors import UserError
from ..image_ops import center_crop
from ..losses import KSPACE_LOSSES, kspace_loss, symmetry_term
from ..masks.split import DISTRIBUTIONS, SplitSettings, split_locations
from ..operators import Fp32Operator, KSpaceOperatorFactory
from .tasks import KSpaceTask, Task

__all__ = ["OBJECTIVES", "SSDU_DEFAULTS", "SSDUConfig", "HeldOut", "SelfSupervisedTask",
           "split_batch", "heldout_loss", "heldout_validation", "parse_acs"]

#: ``training.objective`` values.
OBJECTIVES = ("supervised", "ssdu")

#: ``training.ssdu`` keys: ``{key: (type, default)}`` (the protocol schema uses these).
SSDU_DEFAULTS = {
    "ratio": (float, 0.4),             # |Λ| / |Ω|
    "distribution": (str, "uniform"),  # uniform | gaussian
    "gaussian_std": (float, 0.25),     # of the k-space extent per axis
    "acs": (str, "auto"),              # auto | none | "HxW" block kept in Θ
    "masks_per_sample": (int, 1),      # splits of each sample per step (multi-mask SSDU)
    "loss": (str, "l1l2"),             # l1l2 | l2 | l1 (normalised, on Λ)
    "symmetry_weight": (float, 0.0),   # γ on the ISTA-Net symmetry residuals
}


def parse_acs(text: str):
    """``"auto"``, ``"none"`` or ``"HxW"`` -> the :class:`SplitSettings` ``acs`` value.

    Raises:
        UserError: anything else.
    """
    t = str(text).strip().lower()
    if t in ("auto", "none"):
        return t
    parts = t.split("x")
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return int(parts[0]), int(parts[1])
    raise UserError(f"ssdu acs = {text!r}: expected 'auto', 'none' or a block 'HxW' (e.g. '4x4')")


@dataclass(frozen=True)
class SSDUConfig:
    """The SSDU settings (:data:`SSDU_DEFAULTS`) as one object."""

    split: SplitSettings
    masks_per_sample: int = 1
    loss: str = "l1l2"
    symmetry_weight: float = 0.0

    @classmethod
    def from_table(cls, table: dict, real_images: bool, where: str = "training.ssdu"):
        """Validated settings from a protocol's ``training.ssdu`` table.

        Raises:
            UserError: a value out of range, naming the key.
        """
        t = {k: table.get(k, d) for k, (_, d) in SSDU_DEFAULTS.items()}
        if t["distribution"] not in DISTRIBUTIONS:
            raise UserError(f"{where}.distribution = {t['distribution']!r} is not one of "
                            f"{', '.join(DISTRIBUTIONS)}")
        if t["loss"] not in KSPACE_LOSSES:
            raise UserError(f"{where}.loss = {t['loss']!r} is not one of "
                            f"{', '.join(KSPACE_LOSSES)}")
        if not 0.0 < t["ratio"] < 1.0:
            raise UserError(f"{where}.ratio must be in (0, 1), got {t['ratio']}")
        if not t["gaussian_std"] > 0:
            raise UserError(f"{where}.gaussian_std must be > 0, got {t['gaussian_std']}")
        if t["masks_per_sample"] < 1:
            raise UserError(f"{where}.masks_per_sample must be >= 1, got "
                            f"{t['masks_per_sample']}")
        if not t["symmetry_weight"] >= 0:
            raise UserError(f"{where}.symmetry_weight must be >= 0, got {t['symmetry_weight']}")
        split = SplitSettings(t["ratio"], t["distribution"], t["gaussian_std"],
                              parse_acs(t["acs"]), hermitian=real_images)
        return cls(split, t["masks_per_sample"], t["loss"], t["symmetry_weight"])


@dataclass
class HeldOut:
    """The loss side of a split: ``op`` the ``Λ`` operator, ``y`` the measured values there
    (in ``op``'s range: ``(N, C, H, W)`` zero outside ``Λ``, or ``(N, C, K)``)."""

    op: torch.nn.Module
    y: torch.Tensor


def _restricted(batch: SampleBatch, mask: torch.Tensor) -> SampleBatch:
    """``batch`` with its sampling restricted to ``mask`` (``(N, 1, H, W)`` / ``(N, 1, K)``
    bool): Cartesian k-space outside the mask set to exactly 0."""
    m = mask.to(batch.mask.dtype)
    k = batch.kspace
    if batch.trajectory is None:
        k = torch.where(mask, k, torch.zeros((), dtype=k.dtype, device=k.device))
    return dataclasses.replace(batch, mask=m, kspace=k)


def _repeat(batch: SampleBatch, reps: int) -> SampleBatch:
    if reps == 1:
        return batch
    idx = torch.arange(len(batch)).repeat_interleave(reps)

    def pick(t):
        return None if t is None else t[idx.to(t.device)]

    return dataclasses.replace(
        batch, kspace=pick(batch.kspace), mask=pick(batch.mask), target=pick(batch.target),
        coil_maps=pick(batch.coil_maps), image=pick(batch.image),
        trajectory=pick(batch.trajectory), dcf=pick(batch.dcf),
        metadata=[m for m in batch.metadata for _ in range(reps)])


def split_batch(batch: SampleBatch, settings: SplitSettings, generator: torch.Generator, *,
                layout: str = "centered", reps: int = 1) -> tuple[SampleBatch, SampleBatch]:
    """``(batch_Θ, batch_Λ)``: every sample's ``Ω`` split ``reps`` times (module doc); the
    two batches have ``reps · N`` samples, sample ``i · reps + r`` the ``r``-th split of
    sample ``i``.

    Raises:
        UserError: a sample whose mask cannot be split (naming it).
    """
    big = _repeat(batch, reps)
    omega = big.mask > 0
    thetas, lams = [], []
    for i in range(len(big)):
        traj = None if big.trajectory is None else big.trajectory[i]
        th, la = split_locations(omega[i, 0], settings, generator, layout=layout, traj=traj,
                                 image_shape=big.image_shape,
                                 where=f"{big.metadata[i].fname} slice {big.metadata[i].slice}")
        thetas.append(th)
        lams.append(la)
    theta = torch.stack(thetas).unsqueeze(1).to(omega.device)
    lam = torch.stack(lams).unsqueeze(1).to(omega.device)
    return _restricted(big, theta), _restricted(big, lam)


def heldout_loss(model, factory: KSpaceOperatorFactory, b_theta: SampleBatch,
                 b_lam: SampleBatch, kind: str = "l1l2", device=None) -> torch.Tensor:
    """The k-space loss on ``Λ`` of the network's reconstruction from ``Θ`` (a scalar); the
    operators run in fp32/complex64 even under autocast."""
    op_t = Fp32Operator(factory.for_batch(b_theta).to(device))
    x = model(factory.measurements(b_theta).to(device), op_t)
    x = x.to(torch.complex64) if x.is_complex() else x.float()
    held = HeldOut(factory.for_batch(b_lam).to(device), factory.measurements(b_lam).to(device))
    with torch.autocast(device_type=torch.device(x.device).type, enabled=False):
        return kspace_loss(held.op(x), held.y, kind)


class SelfSupervisedTask(Task):
    """SSDU training batches (module doc) around a :class:`~.tasks.KSpaceTask`.

    ``prepare(batch, device, step)`` -> ``(y_Θ, Φ_Θ, HeldOut(Φ_Λ, y_Λ))``;
    ``loss_inputs`` maps the reconstruction to ``Φ_Λ x``; :meth:`loss` is the k-space loss.
    """

    def __init__(self, inner: KSpaceTask, settings: SSDUConfig, seed: int):
        super().__init__(inner.op, inner.operator_cfg)
        self.settings, self.seed = settings, int(seed)

    def generator(self, step: int) -> torch.Generator:
        """The split generator of ``step`` (private; reproducible on resume)."""
        return torch.Generator().manual_seed(self.seed * 1_000_003 + int(step) + 17)

    def prepare(self, batch: SampleBatch, device=None, step: int = 0):
        if not isinstance(batch, SampleBatch):
            raise UserError("training.objective = 'ssdu' learns from measured k-space; this data "
                            "source yields images (use a k-space data source)")
        b_t, b_l = split_batch(batch, self.settings.split, self.generator(step),
                               layout=self.op.layout, reps=self.settings.masks_per_sample)
        if device is not None:
            b_t, b_l = b_t.to(device), b_l.to(device)
        held = HeldOut(self.op.for_batch(b_l), self.op.measurements(b_l))
        return self.op.measurements(b_t), self.op.for_batch(b_t), held

    def loss_inputs(self, x, target: HeldOut, aux):
        """``(Φ_Λ x, y_Λ, aux)``: the loss is computed in k-space on ``Λ``."""
        return target.op(x.to(torch.complex64) if x.is_complex() else x.float()), target.y, aux

    def loss(self, pred: torch.Tensor, target: torch.Tensor, aux: dict | None) -> torch.Tensor:
        """:func:`~mri_unfold.losses.kspace_loss` plus ``symmetry_weight`` times the ISTA-Net
        symmetry term (when the model returns one)."""
        out = kspace_loss(pred, target, self.settings.loss)
        if self.settings.symmetry_weight and aux and aux.get("sym"):
            out = out + self.settings.symmetry_weight * symmetry_term(aux["sym"])
        return out


@torch.no_grad()
def heldout_validation(model, factory: KSpaceOperatorFactory, dataset, settings: SSDUConfig,
                       seed: int, device, max_images: int = 0) -> dict:
    """Validation without ground truth (module doc).

    Returns:
        ``{"kspace_loss": mean, "images": n}`` plus ``"psnr"``/``"ssim"`` means when every
        sample carries a finite reference (magnitude of the full-``Ω`` reconstruction,
        cropped, against ``target``; data range the target's maximum).
    """
    was = model.training
    model.eval()
    n = len(dataset) if not max_images else min(max_images, len(dataset))
    losses, scores = [], []
    try:
        for i in range(n):
            batch = collate_samples([dataset[i]]).to(device)
            g = torch.Generator().manual_seed(seed * 7919 + i)
            b_t, b_l = split_batch(batch, settings.split, g, layout=factory.layout)
            losses.append(float(heldout_loss(model, factory, b_t, b_l, settings.loss, device)))
            tgt = batch.target
            if tgt is not None and bool(torch.isfinite(tgt).all()):
                x = model(factory.measurements(batch), factory.for_batch(batch).to(device))
                rec = center_crop(x.abs() if x.is_complex() else x, tuple(tgt.shape[-2:]))
                t, r = tgt[0, 0].double().cpu().numpy(), rec[0, 0].double().cpu().numpy()
                scores.append((metrics.psnr(t, r), metrics.ssim(t, r)))
    finally:
        model.train(was)
    out = {"kspace_loss": float(np.mean(losses)), "images": n}
    if scores and len(scores) == n:
        out["psnr"] = float(np.mean([s[0] for s in scores]))
        out["ssim"] = float(np.mean([s[1] for s in scores]))
    return out
