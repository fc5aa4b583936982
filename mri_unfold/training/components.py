"""Building blocks of a run from its protocol: model, optimizer, LR schedule, precision,
gradient checkpointing.  Kept apart from the loop so tests can use them one by one."""
from __future__ import annotations

import math
from pathlib import Path

import torch

from .. import checkpoints as ckpt
from ..device import seeded
from ..errors import UserError
from ..fastpath import set_grad_checkpoint
from ..losses import build_loss as _build_loss
from ..models import build, model_options
from ..precision import autocast_for, needs_cuda


def build_model(model_cfg: dict, op=None) -> torch.nn.Module:
    """Build ``model.name`` with ``model.config`` for the operator ``op``.

    The weights are initialised from ``model.seed`` (passed as the model's ``seed`` option
    when it has one and ``model.config`` does not set it; the global RNG is forked around the
    construction either way) and every weight is created here: ``image_channels`` is taken
    from ``op`` (2 for complex-domain operators, else 1) unless ``model.config`` gives it.

    Raises:
        UserError: unknown model name or config key (message from the model registry).
    """
    conf = dict(model_cfg["config"])
    try:
        options = model_options(model_cfg["name"])
        if "seed" in options:
            conf.setdefault("seed", model_cfg["seed"])
        if op is not None and "image_channels" in options:
            conf.setdefault("image_channels", 2 if op.complex_domain else 1)
        with seeded(model_cfg["seed"]):
            return build(model_cfg["name"], **conf)
    except ValueError as e:
        raise UserError(f"model: {e}") from e


def init_weights(model: torch.nn.Module, model_cfg: dict, path: str) -> None:
    """``training.init_from``: copy the weights of the checkpoint ``path`` into ``model``
    (a warm start, e.g. fine-tuning from a neighbouring sampling ratio).  Only the network
    weights are taken; the operator, optimizer and counters are the new run's.

    Raises:
        UserError: unreadable checkpoint, or one of another architecture / configuration
            (every ``model.config`` key but ``seed`` must agree).
    """
    src = ckpt.load_checkpoint(path)
    mine = {k: v for k, v in getattr(model, "config", {}).items() if k != "seed"}
    theirs = {k: v for k, v in src.model_config.items() if k != "seed"}
    if src.arch != model_cfg["name"] or mine != theirs:
        raise UserError(f"training.init_from: {path} holds {src.arch!r} {theirs}, the protocol "
                        f"builds {model_cfg['name']!r} {mine}")
    model.load_state_dict(src.model.state_dict())


def enable_grad_checkpoint(model: torch.nn.Module) -> str:
    """Turn on per-stage gradient checkpointing through the model's own switch
    (attribute ``grad_checkpoint``: the ISTA and MADUN families,
    :func:`mri_unfold.fastpath.set_grad_checkpoint`).

    Returns:
        ``"native"``.
    Raises:
        UserError: the model has no ``grad_checkpoint`` switch.
    """
    try:
        set_grad_checkpoint(model, True)
    except ValueError as e:
        raise UserError(f"training.grad_checkpoint: {e}") from e
    return "native"


#: ``training.optimizer`` -> keyword arguments of :class:`torch.optim.Adam` (one update rule,
#: three implementations: per-parameter loop, multi-tensor ``foreach``, single ``fused`` kernel)
OPTIMIZERS = {"adam": {}, "adam_foreach": {"foreach": True}, "adam_fused": {"fused": True}}


def build_optimizer(params, tcfg: dict, lr: float) -> torch.optim.Optimizer:
    """Adam over ``params`` with ``training.weight_decay`` and the implementation of
    ``training.optimizer`` (the optimizer state_dict is the same for all three)."""
    return torch.optim.Adam(params, lr=lr, weight_decay=tcfg["weight_decay"],
                            **OPTIMIZERS[tcfg["optimizer"]])


def lr_factor(schedule: str, tcfg: dict, epochs: int):
    """Multiplicative LR factor as a function of the epoch within a stage."""
    g = tcfg["gamma"]
    if schedule == "constant":
        return lambda e: 1.0
    if schedule == "step":
        return lambda e: g ** (e // max(1, tcfg["step_size"]))
    if schedule == "multistep":
        ms = sorted(int(m) for m in tcfg["milestones"])
        return lambda e: g ** sum(1 for m in ms if e >= m)
    if schedule == "cosine":
        floor = tcfg["min_lr"] / tcfg["lr"]
        return lambda e: floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(e, epochs) /
                                                                   max(1, epochs)))
    raise UserError(f"training.schedule: unknown {schedule!r}")


def build_scheduler(opt: torch.optim.Optimizer, tcfg: dict, epochs: int):
    """Per-epoch LambdaLR for ``training.schedule`` (its state_dict is plain numbers)."""
    return torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(tcfg["schedule"], tcfg, epochs))


def autocast_context(precision: str, device: torch.device):
    """``torch.autocast`` for ``bf16``/``fp16`` (fp16 needs CUDA), a null context for fp32."""
    if needs_cuda(precision, device):
        raise UserError(f"training.precision = 'fp16' needs CUDA; use 'bf16' on CPU (the "
                        f"device is {device})")
    return autocast_for(precision, device)


def check_run_settings(cfg: dict, device: torch.device) -> None:
    """What would otherwise fail only during the run, checked before anything is built or a
    run folder is created: a precision the device cannot run, a missing evaluation set.

    Raises:
        UserError / FileNotFoundError naming the setting.
    """
    autocast_context(cfg["training"]["precision"], device)
    ev = cfg["evaluation"]
    if ev["protocol"] != "none" and ev["every"] > 0 and ev["sets"]:
        first = Path(ev["sets"][0])  # the set validated on during training
        if not first.exists():
            raise FileNotFoundError(f"evaluation.sets: {first}: evaluation set not found")


def make_scaler(precision: str, device: torch.device):
    """A GradScaler for fp16 on CUDA, else None."""
    if precision == "fp16" and device.type == "cuda":
        return torch.amp.GradScaler("cuda")
    return None


def build_loss(tcfg: dict):
    """``mri_unfold.losses.build_loss(training.loss, **training.loss_options)``."""
    try:
        return _build_loss(tcfg["loss"], **tcfg["loss_options"])
    except (ValueError, TypeError) as e:
        raise UserError(f"training.loss: {e}") from e
