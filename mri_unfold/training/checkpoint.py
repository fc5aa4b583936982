"""Checkpoints: our own format, written atomically (temp file in the same folder + os.replace).

**Model checkpoint** — one ``.safetensors`` file:

* tensors ``model/<name>`` (the model's ``state_dict``) and ``operator/<name>`` (the
  operator's tensors: Φ, Qinit, a learned Φ, a mask ...);
* string metadata ``format = "mri-unfold"``, ``version``, ``arch`` (registered model name),
  ``model_config`` (JSON: ``build(arch, **model_config)`` rebuilds the network),
  ``operator`` (JSON: the protocol's operator table; ``build_task`` rebuilds Φ from it and
  the stored tensors), ``protocol`` (JSON, the full protocol when trained here) and
  ``info`` (JSON: epoch, step, metrics, source).

**Training state** — ``<name>.state.pt``: a ``torch.save`` of plain dicts/lists/numbers and
tensors only (loaded with ``weights_only=True``): model and operator weights, optimizer,
LR scheduler, grad scaler, RNG states (torch CPU/CUDA and the task's), stage/epoch/
batch/step counters and the best validation score.  It alone is enough to resume.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..atomic import atomic_output
from ..errors import UserError

FORMAT = "mri-unfold"
STATE_FORMAT = "mri-unfold-train-state"
VERSION = "1"


def atomic_torch_save(obj, path: str | Path) -> None:
    """``torch.save(obj, path)`` through :func:`mri_unfold.atomic.atomic_output`."""
    with atomic_output(path) as tmp:
        torch.save(obj, tmp)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain model inside DDP / DataParallel wrappers."""
    return getattr(model, "module", model)


def save_checkpoint(path: str | Path, model: torch.nn.Module, op: torch.nn.Module,
                    operator_cfg: dict, protocol: dict | None = None,
                    info: dict | None = None) -> Path:
    """Write a model checkpoint (see module doc) atomically.

    Args:
        model: a registered model (``model.arch``, ``model.config``), possibly DDP-wrapped.
        op: its operator (tensors saved under ``operator/``).
        operator_cfg: the operator table (``kind`` + settings) that rebuilds ``op``.
    """
    from safetensors.torch import save_file

    model = unwrap(model)
    path = Path(path)
    tensors = {f"model/{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors.update({f"operator/{k}": v.detach().cpu().contiguous()
                    for k, v in op.state_dict().items() if v is not None})
    meta = {"format": FORMAT, "version": VERSION,
            "arch": str(getattr(model, "arch", type(model).__name__)),
            "model_config": json.dumps(getattr(model, "config", {})),
            "operator": json.dumps(operator_cfg),
            "protocol": json.dumps(protocol or {}),
            "info": json.dumps(info or {})}
    with atomic_output(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


@dataclass
class Checkpoint:
    """A loaded model checkpoint."""

    model: torch.nn.Module
    op: torch.nn.Module
    arch: str
    model_config: dict
    operator_cfg: dict
    protocol: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    task: object = None


def read_checkpoint_file(path: str | Path) -> tuple[dict, dict]:
    """``(tensors, metadata)`` of a checkpoint file, validated.

    Raises:
        FileNotFoundError / UserError naming the file.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint file not found")
    try:
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(f"{path}: not an mri-unfold checkpoint (.safetensors) ({e}); authors' "
                        ".pkl files are converted with 'mri-unfold import-official'") from e
    if meta.get("format") != FORMAT:
        raise UserError(f"{path}: not an mri-unfold checkpoint (metadata format is "
                        f"{meta.get('format')!r})")
    return tensors, meta


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu",
                    expect_arch: str | None = None) -> Checkpoint:
    """Rebuild model (eval mode) and operator from a checkpoint file.

    Args:
        expect_arch: if given, the checkpoint must hold this architecture.
    Raises:
        UserError: not a checkpoint, another architecture, weights not matching the arch.
    """
    from ..models import build
    from .tasks import build_task

    tensors, meta = read_checkpoint_file(path)
    arch = meta["arch"]
    if expect_arch is not None and arch != expect_arch:
        raise UserError(f"{path}: checkpoint is for architecture {arch!r}, expected "
                        f"{expect_arch!r}")
    cfg = json.loads(meta.get("model_config", "{}"))
    try:
        model = build(arch, **cfg)
    except ValueError as e:
        raise UserError(f"{path}: cannot rebuild model: {e}") from e
    sd = {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}
    try:
        model.load_state_dict(sd)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise UserError(f"{path}: weights do not fit architecture {arch!r}: "
                        f"{' '.join(first[:2])}") from e
    op_cfg = json.loads(meta.get("operator", "{}"))
    op_t = {k[len("operator/"):]: v for k, v in tensors.items() if k.startswith("operator/")}
    task = build_task(op_cfg, tensors=op_t) if op_cfg else None
    model.to(device).eval()
    op = task.op.to(device) if task is not None else None
    return Checkpoint(model=model, op=op, arch=arch, model_config=cfg, operator_cfg=op_cfg,
                      protocol=json.loads(meta.get("protocol", "{}")),
                      info=json.loads(meta.get("info", "{}")), task=task)


def load_model(path: str | Path, device: str | torch.device = "cpu"):
    """``(model, meta)`` — the model in eval mode and a dict with ``arch``, ``model_config``,
    ``operator`` (config), ``op`` (the rebuilt operator or None), ``protocol``, ``info``."""
    ck = load_checkpoint(path, device=device)
    return ck.model, {"arch": ck.arch, "model_config": ck.model_config,
                      "operator": ck.operator_cfg, "op": ck.op, "protocol": ck.protocol,
                      "info": ck.info}


# ---------------------------------------------------------------------------- training state
def rng_state(task_gen: torch.Generator | None = None) -> dict:
    st = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    if task_gen is not None:
        st["task"] = task_gen.get_state()
    return st


def restore_rng(st: dict, task_gen: torch.Generator | None = None) -> None:
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])
    if task_gen is not None and "task" in st:
        task_gen.set_state(st["task"])


def save_train_state(path: str | Path, state: dict) -> None:
    """Atomically ``torch.save`` a tensors/plain-types-only training state."""
    atomic_torch_save({"format": STATE_FORMAT, "version": int(VERSION), **state}, path)


def load_train_state(path: str | Path) -> dict:
    """Load a training state with ``weights_only=True``.

    Raises:
        FileNotFoundError / UserError naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no training state to resume from")
    try:
        st = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - corrupt/foreign file, reported with its name
        raise UserError(f"{path}: unreadable training state ({type(e).__name__}: {e})") from e
    if not isinstance(st, dict) or st.get("format") != STATE_FORMAT:
        raise UserError(f"{path}: not an mri-unfold training state")
    return st
