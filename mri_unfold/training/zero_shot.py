"""Scan-specific zero-shot adaptation (ZS-SSL, Yaman et al., ICLR 2022): fine-tune a network
(or train a fresh one) on the one scan being reconstructed, from its measured k-space alone.

1. A fixed, seeded subset ``Γ`` of every slice's measured locations ``Ω`` is held out
   (``holdout``, the ACS region excluded, conjugate pairs together for real images).
2. Each step splits the rest, ``Ω \\ Γ``, into ``Θ`` and ``Λ`` (SSDU,
   :mod:`.self_supervised`; ``masks_per_step`` splits per slice), reconstructs from ``Θ`` and
   takes an Adam step on the k-space loss at ``Λ``.
3. Every ``val_every`` steps the network reconstructs from ``Ω \\ Γ`` and the loss at ``Γ``
   is the validation loss; the weights with the lowest one are kept, and adaptation stops
   after ``patience`` validations without a new best (or at ``max_steps`` / ``max_seconds``).
4. The reconstruction uses every measured location ``Ω`` with the kept weights.

Only ``kspace``, ``mask``, coil maps and trajectories of the samples are read, never a
reference.  Every random draw comes from generators seeded by ``seed``; the global RNG is
untouched, so the same settings and seed give the same weights.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from tqdm.auto import tqdm

from ..data.samples import KSpaceSample, SampleBatch, collate_samples
from ..errors import UserError
from ..losses import KSPACE_LOSSES, kspace_loss
from ..masks.split import SplitSettings
from ..operators import KSpaceOperatorFactory
from ..precision import autocast_for
from .self_supervised import heldout_loss, split_batch

__all__ = ["AdaptSettings", "AdaptResult", "adapt_to_scan", "validation_split", "ScanAdapter"]


@dataclass(frozen=True)
class AdaptSettings:
    """Zero-shot adaptation settings (module doc).

    Attributes:
        max_steps: optimizer steps at most.
        max_seconds: wall-clock budget (0 = none), checked after every step.
        lr: Adam learning rate.
        split: the ``Θ``/``Λ`` split (its ``hermitian`` is set from the model's domain).
        holdout: ``|Γ| / |Ω|``, the held-out validation fraction.
        masks_per_step: ``Θ``/``Λ`` splits of every slice per step.
        loss: :data:`~mri_unfold.losses.KSPACE_LOSSES`.
        val_every / patience: validation period (steps) and early-stopping patience
            (validations without a new best).
        batch_size: slices per step (all slices of a scan take turns).
        precision: ``"fp32"`` or ``"bf16"`` (autocast of the network).
        seed: seeds ``Γ`` and every split.
    """

    max_steps: int = 200
    max_seconds: float = 0.0
    lr: float = 1e-4
    split: SplitSettings = field(default_factory=lambda: SplitSettings(ratio=0.4))
    holdout: float = 0.2
    masks_per_step: int = 1
    loss: str = "l1l2"
    val_every: int = 10
    patience: int = 3
    batch_size: int = 4
    precision: str = "fp32"
    seed: int = 0

    def __post_init__(self):
        checks = [("max_steps", self.max_steps >= 1, ">= 1"),
                  ("max_seconds", math.isfinite(self.max_seconds) and self.max_seconds >= 0,
                   ">= 0"),
                  ("lr", math.isfinite(self.lr) and self.lr > 0, "> 0"),
                  ("holdout", 0 < self.holdout < 1, "in (0, 1)"),
                  ("masks_per_step", self.masks_per_step >= 1, ">= 1"),
                  ("val_every", self.val_every >= 1, ">= 1"),
                  ("patience", self.patience >= 1, ">= 1"),
                  ("batch_size", self.batch_size >= 1, ">= 1")]
        for name, ok, want in checks:
            if not ok:
                raise UserError(f"adaptation setting {name} must be {want}, got "
                                f"{getattr(self, name)!r}")
        if self.loss not in KSPACE_LOSSES:
            raise UserError(f"adaptation loss {self.loss!r} is not one of "
                            f"{', '.join(KSPACE_LOSSES)}")
        if self.precision not in ("fp32", "bf16"):
            raise UserError(f"adaptation precision must be fp32 or bf16, got {self.precision!r}")


@dataclass
class AdaptResult:
    """What :func:`adapt_to_scan` did.

    Attributes:
        model: the network with the kept (lowest validation loss) weights, in eval mode.
        history: one dict per validation: ``step``, ``seconds``, ``val_loss``, ``train_loss``
            (mean since the previous validation).
        best_step: the step of the kept weights (0 = the starting weights).
        steps: optimizer steps taken; ``stopped``: ``"patience"``, ``"max_steps"`` or
            ``"max_seconds"``.
        seconds: wall-clock time of the adaptation.
    """

    model: torch.nn.Module
    history: list[dict]
    best_step: int
    steps: int
    stopped: str
    seconds: float


def validation_split(samples: Sequence[KSpaceSample], settings: AdaptSettings,
                     hermitian: bool, layout: str = "centered"
                     ) -> tuple[SampleBatch, SampleBatch]:
    """``(batch of Ω \\ Γ, batch of Γ)`` for the slices ``samples``: the fixed held-out
    set of step 1 (module doc)."""
    split = dataclasses.replace(settings.split, ratio=settings.holdout, hermitian=hermitian)
    g = torch.Generator().manual_seed(settings.seed * 7919 + 1)
    return split_batch(collate_samples(list(samples)), split, g, layout=layout)


def _batches(n: int, size: int, generator: torch.Generator):
    """An endless stream of index lists: shuffled epochs of ``range(n)`` in chunks."""
    while True:
        order = torch.randperm(n, generator=generator).tolist()
        for i in range(0, n, size):
            yield order[i:i + size]


def adapt_to_scan(model: torch.nn.Module, samples: Sequence[KSpaceSample],
                  factory: KSpaceOperatorFactory, settings: AdaptSettings | None = None, *,
                  device=None, progress: bool = True, desc: str = "adapting",
                  monitor: Callable[[torch.nn.Module, int], dict] | None = None) -> AdaptResult:
    """Adapt ``model`` to the slices ``samples`` of one scan (module doc).

    Args:
        model: ``model(y, op)``; it is copied, the caller's network is left unchanged.
        samples: prepared :class:`~mri_unfold.data.KSpaceSample` slices of one shape
            (masked, normalised, coil maps for multi-coil data).
        factory: the operator factory (layout, real or complex images).
        settings: :class:`AdaptSettings` (defaults if None).
        device: where to train (default: the model's).
        progress: a tqdm bar over steps.
        monitor: called as ``monitor(model, step)`` at every validation; the dict it returns
            is added to that history entry (e.g. a PSNR against a reference, for studies:
            the adaptation itself never sees it).
    Returns:
        :class:`AdaptResult`.
    Raises:
        UserError: a mask that cannot be split (too few measured points, all ACS).
    """
    s = settings or AdaptSettings()
    if not samples:
        raise UserError("adaptation needs at least one slice")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    net = copy.deepcopy(model).to(device)
    hermitian = bool(factory.real_input)
    split = dataclasses.replace(s.split, hermitian=hermitian)
    train_b, val_b = validation_split(samples, s, hermitian, factory.layout)
    train_b, val_b = train_b.to(device), val_b.to(device)
    params = [p for p in net.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=s.lr)
    g = torch.Generator().manual_seed(s.seed * 1_000_003 + 5)
    stream = _batches(len(train_b), s.batch_size, torch.Generator().manual_seed(s.seed + 11))

    def validate(step: int, t0: float, train_losses: list) -> dict:
        net.eval()
        with torch.no_grad():
            val = float(heldout_loss(net, factory, train_b, val_b, s.loss, device))
        entry = {"step": step, "seconds": time.perf_counter() - t0, "val_loss": val,
                 "train_loss": sum(train_losses) / len(train_losses) if train_losses else None}
        if monitor is not None:
            entry.update(monitor(net, step))
        return entry

    t0 = time.perf_counter()
    history = [validate(0, t0, [])]
    best, best_step, best_state = history[0]["val_loss"], 0, copy.deepcopy(net.state_dict())
    since_best, step, stopped, recent = 0, 0, "max_steps", []
    bar = tqdm(total=s.max_steps, desc=desc, unit="step", disable=not progress, leave=False)
    try:
        while step < s.max_steps:
            idx = next(stream)
            b_t, b_l = split_batch(_pick(train_b, idx), split, g, layout=factory.layout,
                                   reps=s.masks_per_step)
            net.train()
            with autocast_for(s.precision, device):
                loss = heldout_loss(net, factory, b_t, b_l, s.loss, device)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            recent.append(float(loss.detach()))
            if not math.isfinite(recent[-1]):
                raise UserError(f"adaptation diverged at step {step} (loss {recent[-1]}); lower "
                                "the learning rate")
            bar.update(1)
            over_time = bool(s.max_seconds) and time.perf_counter() - t0 >= s.max_seconds
            if step % s.val_every == 0 or step == s.max_steps or over_time:
                entry = validate(step, t0, recent)
                recent = []
                history.append(entry)
                bar.set_postfix(val=f"{entry['val_loss']:.4g}", best=f"{best:.4g}")
                if entry["val_loss"] < best:
                    best, best_step, since_best = entry["val_loss"], step, 0
                    best_state = copy.deepcopy(net.state_dict())
                else:
                    since_best += 1
                    if since_best >= s.patience:
                        stopped = "patience"
                        break
            if over_time:
                stopped = "max_seconds"
                break
    finally:
        bar.close()
    net.load_state_dict(best_state)
    net.eval()
    return AdaptResult(net, history, best_step, step, stopped, time.perf_counter() - t0)


def _pick(batch: SampleBatch, idx: list[int]) -> SampleBatch:
    """The samples ``idx`` of ``batch`` (a new batch)."""
    if len(idx) == len(batch) and idx == list(range(len(batch))):
        return batch
    ix = torch.tensor(idx, device=batch.kspace.device)

    def pick(t):
        return None if t is None else t[ix.to(t.device)]

    return dataclasses.replace(batch, kspace=pick(batch.kspace), mask=pick(batch.mask),
                               target=pick(batch.target), coil_maps=pick(batch.coil_maps),
                               image=pick(batch.image), trajectory=pick(batch.trajectory),
                               dcf=pick(batch.dcf), metadata=[batch.metadata[i] for i in idx])


class ScanAdapter:
    """The ``adapt`` hook of :func:`mri_unfold.reconstruct.reconstruct_samples`: adapts the
    network to the scan being reconstructed before it is reconstructed.

    Args:
        settings: :class:`AdaptSettings`.
        per: ``"scan"`` (one network adapted to all slices) or ``"slice"`` (one per slice;
            the seed is the same for every slice).
        device / progress: where to train, and a progress bar per adaptation.
        monitor: passed to :func:`adapt_to_scan`.
        wrap: applied to every adapted network before it reconstructs (e.g. a precision /
            compile wrapper); the adaptation itself trains the plain network.

    After a call, :attr:`results` holds ``(slice indices, AdaptResult)`` per adaptation.
    """

    def __init__(self, settings: AdaptSettings | None = None, per: str = "scan", *,
                 device=None, progress: bool = True, monitor=None, wrap=None):
        if per not in ("scan", "slice"):
            raise UserError(f"adaptation per {per!r}: expected 'scan' or 'slice'")
        self.settings, self.per = settings or AdaptSettings(), per
        self.device, self.progress, self.monitor = device, progress, monitor
        self.wrap = wrap or (lambda m: m)
        self.results: list[tuple[list[int], AdaptResult]] = []

    def __call__(self, model, samples: Sequence[KSpaceSample],
                 factory: KSpaceOperatorFactory) -> list[tuple[list[int], torch.nn.Module]]:
        groups = ([list(range(len(samples)))] if self.per == "scan"
                  else [[i] for i in range(len(samples))])
        self.results = []
        for idx in groups:
            desc = "adapting" if len(groups) == 1 else f"adapting slice {idx[0]}"
            res = adapt_to_scan(model, [samples[i] for i in idx], factory, self.settings,
                                device=self.device, progress=self.progress, desc=desc,
                                monitor=self.monitor)
            self.results.append((idx, res))
        return [(idx, self.wrap(res.model)) for idx, res in self.results]

    def summary(self) -> dict:
        """Steps, kept step, stop reason and seconds of every adaptation (JSON-ready)."""
        return {"per": self.per, "adaptations": [
            {"slices": idx, "steps": r.steps, "best_step": r.best_step, "stopped": r.stopped,
             "seconds": round(r.seconds, 2), "val_loss_start": r.history[0]["val_loss"],
             "val_loss_best": min(h["val_loss"] for h in r.history)}
            for idx, r in self.results]}
