"""``mri-unfold recon --adapt``: scan-specific zero-shot adaptation on the command line.

The options, their checks, the :class:`~mri_unfold.training.zero_shot.ScanAdapter` they
describe, a fresh network for ``--arch`` (training from scratch on the scan), and the
``--save-adapted`` checkpoints.  See ``docs/self_supervised.md``.
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch

from .. import checkpoints as ckpt
from ..errors import UserError
from ..masks.split import SplitSettings
from ..models import build, model_names
from ..operators import KSpaceOperatorFactory
from ..training.zero_shot import AdaptSettings, ScanAdapter

__all__ = ["add_adapt_options", "adapter", "check_adapt_args", "fresh_network", "describe",
           "adapted_outputs", "save_adapted"]

_D = AdaptSettings()


def add_adapt_options(p: argparse.ArgumentParser) -> None:
    """The ``--adapt`` group of options."""
    g = p.add_argument_group(
        "scan-specific adaptation (zero-shot self-supervised, from the measured k-space only)")
    g.add_argument("--adapt", action="store_true",
                   help="fine-tune the network on this scan before reconstructing it: a held-"
                        "out part of the measured k-space decides when to stop (ZS-SSL)")
    g.add_argument("--adapt-steps", type=int, metavar="N",
                   help=f"at most N optimizer steps (default {_D.max_steps})")
    g.add_argument("--adapt-seconds", type=float, metavar="S",
                   help="at most S seconds of adaptation (default: no limit)")
    g.add_argument("--adapt-per", choices=("scan", "slice"), default="scan",
                   help="one network for the whole scan (default) or one per slice")
    g.add_argument("--adapt-lr", type=float, metavar="LR",
                   help=f"Adam learning rate (default {_D.lr:g})")
    g.add_argument("--adapt-split", type=float, metavar="RHO",
                   help=f"fraction of the measured points held out for the loss at every step "
                        f"(default {_D.split.ratio:g})")
    g.add_argument("--adapt-holdout", type=float, metavar="F",
                   help=f"fraction held out for early stopping (default {_D.holdout:g})")
    g.add_argument("--adapt-masks", type=int, metavar="K",
                   help=f"splits per slice and step (default {_D.masks_per_step})")
    g.add_argument("--arch", metavar="NAME",
                   help="with --adapt and without --model: train a fresh NAME network (e.g. "
                        "ista_net_plus) on this scan from scratch, seeded by --seed")
    g.add_argument("--save-adapted", metavar="FILE",
                   help="also write the adapted weights as a checkpoint (.safetensors); one "
                        "file per slice with --adapt-per slice (FILE stem + _sliceNNN)")


_TUNING = ("adapt_steps", "adapt_seconds", "adapt_lr", "adapt_split", "adapt_holdout",
           "adapt_masks")


def check_adapt_args(args) -> None:
    """Refuse adaptation options that cannot apply.

    Raises:
        UserError: tuning options or ``--save-adapted`` without ``--adapt``, ``--arch``
            with ``--model`` or ``--method``, ``--adapt`` without a network.
    """
    given = [f"--{n.replace('_', '-')}" for n in _TUNING if getattr(args, n) is not None]
    if not args.adapt:
        extra = given + (["--arch"] if args.arch else []) + \
            (["--save-adapted"] if args.save_adapted else [])
        if extra:
            raise UserError(f"{', '.join(extra)} only apply with --adapt")
        return
    if args.arch and (args.model or args.method):
        raise UserError("--arch trains a fresh network; give it without --model/--method")
    if args.method:
        raise UserError(f"--adapt fine-tunes a network; --method {args.method} is a classical "
                        "method (give --model NAME|CKPT or --arch NAME)")
    if not (args.model or args.arch):
        raise UserError("--adapt needs a network: --model NAME|CKPT (fine-tune it) or --arch "
                        "NAME (train one from scratch)")
    if args.arch and args.arch not in model_names():
        raise UserError(f"--arch {args.arch!r} is not a registered architecture; valid: "
                        f"{', '.join(model_names())}")


def adapter(args, device, wrap=None) -> ScanAdapter | None:
    """The :class:`ScanAdapter` of the options (``None`` without ``--adapt``).

    Raises:
        UserError: an option out of range (naming it).
    """
    if not args.adapt:
        return None
    split = SplitSettings() if args.adapt_split is None else None
    try:
        if split is None:
            split = SplitSettings(ratio=args.adapt_split)
    except ValueError as e:
        raise UserError(f"--adapt-split: {e}") from e
    values = {"max_steps": args.adapt_steps, "max_seconds": args.adapt_seconds,
              "lr": args.adapt_lr, "holdout": args.adapt_holdout,
              "masks_per_step": args.adapt_masks}
    flags = {"max_steps": "--adapt-steps", "max_seconds": "--adapt-seconds",
             "lr": "--adapt-lr", "holdout": "--adapt-holdout", "masks_per_step": "--adapt-masks"}
    try:
        settings = dataclasses.replace(
            _D, split=dataclasses.replace(_D.split, ratio=split.ratio), seed=args.seed,
            precision="bf16" if args.precision == "bf16" else "fp32",
            batch_size=max(1, min(args.batch_size, _D.batch_size)),
            **{k: v for k, v in values.items() if v is not None})
    except UserError as e:
        msg = str(e)
        for key, flag in flags.items():
            msg = msg.replace(f"setting {key} ", f"{flag} ")
        raise UserError(msg) from None
    return ScanAdapter(settings, args.adapt_per, device=device, progress=not args.no_progress,
                       wrap=wrap)


def fresh_network(args, complex_images: bool, device) -> torch.nn.Module:
    """A new ``--arch`` network (default configuration, seeded by ``--seed``) for complex
    (2 CNN channels) or real images."""
    return build(args.arch, image_channels=2 if complex_images else 1,
                 seed=args.seed).to(device)


def adapted_outputs(args, slices: int | None = None) -> list[Path]:
    """The checkpoint files ``--save-adapted`` will write (before anything is computed:
    one for ``--adapt-per scan``; for ``slice``, ``slices`` files when known)."""
    if not args.save_adapted:
        return []
    path = Path(args.save_adapted)
    if not path.name.endswith(".safetensors"):
        raise UserError(f"--save-adapted {path}: a checkpoint is a .safetensors file")
    if args.adapt_per == "scan" or slices == 1:
        return [path]
    if slices is None:
        return []
    stem = path.name[: -len(".safetensors")]
    return [path.with_name(f"{stem}_slice{k:03d}.safetensors") for k in range(slices)]


def save_adapted(tmps, scan_adapter: ScanAdapter, ck, args, source: str) -> None:
    """Write every adapted network to its temporary path (in the caller's all-or-nothing
    group) as an mri-unfold checkpoint with the original operator settings (or a k-space
    operator for ``--arch``) and where and how it was adapted."""
    real = ck is not None and not ck.complex_model
    for tmp, (idx, res) in zip(tmps, scan_adapter.results):
        op = ck.op if ck is not None else KSpaceOperatorFactory(real_input=real)
        op_cfg = ck.operator_cfg if ck is not None else {"kind": "kspace",
                                                           "image_domain": "complex"}
        info = {"source": "mri-unfold recon --adapt", "adapted_to": source, "slices": idx,
                "from": args.model or f"fresh {args.arch} (seed {args.seed})",
                "steps": res.steps, "best_step": res.best_step, "stopped": res.stopped,
                "seconds": round(res.seconds, 2)}
        protocol = ck.protocol if ck is not None else {}
        ckpt.save_checkpoint(tmp, res.model, op, {k: v for k, v in op_cfg.items()
                                                  if not k.startswith("_")}, protocol, info)


def describe(scan_adapter: ScanAdapter) -> str:
    """One line per adaptation: steps, the kept step, why it stopped, seconds, and the
    held-out k-space loss at the start and at the kept step."""
    lines = []
    for idx, r in scan_adapter.results:
        where = "the scan" if len(idx) > 1 or len(scan_adapter.results) == 1 else \
            f"slice {idx[0]}"
        best = min(h["val_loss"] for h in r.history)
        lines.append(f"adapted to {where}: {r.steps} steps in {r.seconds:.1f} s (stopped: "
                     f"{r.stopped}), kept step {r.best_step}; held-out k-space loss "
                     f"{r.history[0]['val_loss']:.4f} -> {best:.4f}")
    return "\n".join(lines)
