"""Model checkpoints: our own format, written atomically, read by training, evaluation,
reconstruction and the CLI alike (this module sits below all of them).

One ``.safetensors`` file holds

* tensors ``model/<name>`` (the model's ``state_dict``) and ``operator/<name>`` (the tensors
  of a fixed operator: Φ, Qinit, a learned Φ, a mask ...; none for k-space models, whose
  operator comes with the data);
* string metadata ``format = "mri-unfold"``, ``version``, ``arch`` (registered model name),
  ``model_config`` (JSON: ``build(arch, **model_config)`` rebuilds the network),
  ``operator`` (JSON: the protocol's operator table; :func:`~mri_unfold.operators.build_operator`
  rebuilds Φ from it and the stored tensors), ``protocol`` (JSON, the full protocol when
  trained here), ``info`` (JSON: epoch, step, metrics, source) and ``sha256``: the digest
  of every tensor (name, dtype, shape, bytes) and of the metadata above.

Loading verifies: the digest (a mismatch means a corrupt or modified file and is refused; a
file without one — older versions, other tools — loads with a one-line
:class:`IntegrityNote` warning), that every weight is finite, and that the model the
metadata describes fits in memory before it is built (:mod:`mri_unfold.memory`).

Checkpoints written by earlier versions load unchanged: lazily built models
(``image_channels: null``) get their channel count from the stored weights
(:func:`mri_unfold.models.resolve_config`), and the operator kind ``fastmri`` is the k-space
kind (:class:`~mri_unfold.operators.KSpaceOperatorFactory`).  A file of a newer format
version is refused with a message naming both versions.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from .atomic import atomic_write_bytes
from .errors import UserError
from .memory import require_memory
from .models import build, resolve_config
from .models.zoo import resolve_weights
from .operators import build_operator

__all__ = ["FORMAT", "VERSION", "Checkpoint", "save_checkpoint", "write_safetensors", "read_checkpoint_file",
           "read_checkpoint_info", "load_checkpoint", "load_model", "unwrap", "digest",
           "IntegrityNote"]

#: Metadata entries covered by the digest (with every tensor).
_DIGESTED = ("format", "version", "arch", "model_config", "operator", "protocol", "info")


class IntegrityNote(UserWarning):
    """A checkpoint was loaded without an integrity check (it has no SHA-256 digest)."""


def digest(tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> str:
    """SHA-256 (hex) of the tensors (sorted by name: name, dtype, shape, raw bytes) and of
    the metadata entries :data:`_DIGESTED`."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    for key in _DIGESTED:
        h.update(f"{key}={meta.get(key, '')}|".encode())
    return h.hexdigest()

FORMAT = "mri-unfold"
VERSION = "1"


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain model inside DDP / DataParallel / compile wrappers."""
    return getattr(model, "module", model)


def _operator_tensors(op) -> dict[str, torch.Tensor]:
    state = op.state_dict() if isinstance(op, torch.nn.Module) else {}
    return {k: v.detach() for k, v in state.items() if v is not None}


def save_checkpoint(path: str | Path, model: torch.nn.Module, op, operator_cfg: dict,
                    protocol: dict | None = None, info: dict | None = None) -> Path:
    """Write a model checkpoint (see module doc) atomically.

    Args:
        model: a registered model (``model.arch``, ``model.config``), possibly DDP-wrapped.
        op: its operator (tensors saved under ``operator/``), or a k-space operator factory
            (nothing saved).
        operator_cfg: the operator table (``kind`` + settings) that rebuilds ``op``.
    """
    model = unwrap(model)
    path = Path(path)
    tensors = {f"model/{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors.update({f"operator/{k}": v.cpu().contiguous()
                    for k, v in _operator_tensors(op).items()})
    if isinstance(getattr(op, "layout", None), str):  # the k-space layout of a stored mask
        operator_cfg = dict(operator_cfg, _resolved_layout=op.layout)
    meta = {"format": FORMAT, "version": VERSION,
            "arch": str(getattr(model, "arch", type(model).__name__)),
            "model_config": json.dumps(getattr(model, "config", {})),
            "operator": json.dumps(operator_cfg),
            "protocol": json.dumps(protocol or {}),
            "info": json.dumps(info or {})}
    meta["sha256"] = digest(tensors, meta)
    return write_safetensors(path, tensors, meta)


def write_safetensors(path: str | Path, tensors: dict[str, torch.Tensor],
                      meta: dict[str, str]) -> Path:
    """Write a ``.safetensors`` file atomically (serialised in memory, then one write through
    :func:`mri_unfold.atomic.atomic_write_bytes`: no temporary file of the library's own is
    left behind by a kill, and a full disk is an error naming ``path``)."""
    return atomic_write_bytes(path, save({k: v.contiguous() for k, v in tensors.items()},
                                         metadata=meta))


@dataclass
class Checkpoint:
    """A loaded model checkpoint.

    Attributes:
        model: the network, in eval mode.
        op: the rebuilt operator (a :class:`~mri_unfold.operators.LinearOperator`), or the
            :class:`~mri_unfold.operators.KSpaceOperatorFactory` of a k-space model.
        arch / model_config / operator_cfg / protocol / info: the stored metadata.
    """

    model: torch.nn.Module
    op: object
    arch: str
    model_config: dict
    operator_cfg: dict
    protocol: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    @property
    def complex_model(self) -> bool:
        """Whether the network works on complex images (2 CNN channels)."""
        return int(self.model_config.get("image_channels", 1)) == 2


def read_checkpoint_file(path: str | Path) -> tuple[dict, dict]:
    """``(tensors, metadata)`` of a checkpoint file, validated.

    Raises:
        FileNotFoundError / UserError naming the file (not a checkpoint, another format, a
        newer format version).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint file not found")
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(f"{path}: not an mri-unfold checkpoint (.safetensors) ({e}); authors' "
                        ".pkl files are converted with 'mri-unfold import-official'") from e
    if meta.get("format") != FORMAT:
        raise UserError(f"{path}: not an mri-unfold checkpoint (metadata format is "
                        f"{meta.get('format')!r})")
    version = meta.get("version", "")
    if not version.isdigit() or int(version) > int(VERSION):
        raise UserError(f"{path}: checkpoint format version {version!r} is newer than this "
                        f"mri-unfold reads (version {VERSION}); upgrade mri-unfold")
    _verify(path, tensors, meta)
    return tensors, meta


def _verify(path: Path, tensors: dict, meta: dict) -> None:
    """The digest and finite weights (module doc)."""
    stored = meta.get("sha256")
    if stored is None:
        warnings.warn(f"{path} has no SHA-256 digest (written by an older mri-unfold or another "
                      "tool): its integrity is not verified", IntegrityNote, stacklevel=3)
    elif stored != digest(tensors, meta):
        raise UserError(f"{path}: the checkpoint does not match its SHA-256 digest (corrupt or "
                        "modified file); refusing to load it")
    for name, t in tensors.items():
        if name.startswith("model/") and not (t.is_floating_point() or t.is_complex()):
            raise UserError(f"{path}: tensor {name!r} has data type {t.dtype}; network weights "
                            "are floating-point (a modified file?)")
        if t.is_floating_point() or t.is_complex():
            bad = int((~torch.isfinite(t)).sum())
            if bad:
                raise UserError(f"{path}: tensor {name!r} has {bad} non-finite values (NaN/Inf); "
                                "the weights are unusable")


def _check_model_size(path: Path, arch: str, cfg: dict) -> None:
    """Build the described model on the meta device (no memory) and refuse it when its
    weights would not fit in memory."""
    with torch.device("meta"):
        probe = build(arch, **cfg)
    nbytes = sum(p.numel() * p.element_size() for p in probe.parameters())
    require_memory(2 * nbytes, f"{path}: the {arch!r} model of this checkpoint ({cfg})")


def read_checkpoint_info(path: str | Path) -> dict:
    """The ``info`` metadata (step, epoch, metrics, source) of a checkpoint, without loading
    or verifying its tensors.

    Raises:
        UserError: not a readable mri-unfold checkpoint (names the file).
    """
    path = Path(path)
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(f"{path}: not an mri-unfold checkpoint (.safetensors) ({e})") from e
    return _json(meta, "info", path)


def _json(meta: dict, key: str, path: Path) -> dict:
    try:
        value = json.loads(meta.get(key) or "{}")
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: checkpoint metadata {key!r} is not valid JSON ({e})") from e
    if not isinstance(value, dict):
        raise UserError(f"{path}: checkpoint metadata {key!r} must be a JSON object")
    return value


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu",
                    expect_arch: str | None = None) -> Checkpoint:
    """Rebuild model (eval mode) and operator from a checkpoint file, or from a bundled
    model given by its zoo name (:func:`mri_unfold.models.zoo.resolve_weights`).

    Args:
        expect_arch: if given, the checkpoint must hold this architecture.
    Raises:
        UserError: not a checkpoint, another architecture, weights not matching the arch,
            an operator that cannot be rebuilt.
    """
    path = resolve_weights(path)  # a file, or the name of a bundled model
    tensors, meta = read_checkpoint_file(path)
    arch = meta.get("arch")
    if not arch:
        raise UserError(f"{path}: checkpoint metadata has no 'arch' (model name)")
    if expect_arch is not None and arch != expect_arch:
        raise UserError(f"{path}: checkpoint is for architecture {arch!r}, expected "
                        f"{expect_arch!r}")
    sd = {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}
    try:
        cfg = resolve_config(arch, _json(meta, "model_config", path), sd)
        _check_model_size(path, arch, cfg)
        model = build(arch, **cfg)
    except (ValueError, TypeError) as e:  # a config the architecture does not take
        if isinstance(e, UserError):
            raise
        raise UserError(f"{path}: cannot rebuild model: {e}") from e
    try:
        model.load_state_dict(sd)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise UserError(f"{path}: weights do not fit architecture {arch!r}: "
                        f"{' '.join(first[:2])}") from e
    op_cfg = _json(meta, "operator", path)
    op_t = {k[len("operator/"):]: v for k, v in tensors.items() if k.startswith("operator/")}
    op = None
    if op_cfg:
        try:
            op = build_operator(op_cfg, tensors=op_t)
        except KeyError as e:
            raise UserError(f"{path}: cannot rebuild the stored operator {op_cfg.get('kind')!r}: "
                            f"tensor operator/{e.args[0]} is missing") from e
        except (ValueError, TypeError, RuntimeError, IndexError) as e:
            if isinstance(e, UserError):
                raise UserError(f"{path}: {e}") from e
            raise UserError(f"{path}: cannot rebuild the stored operator "
                            f"{op_cfg.get('kind')!r}: {e}") from e
    model.to(device).eval()
    if isinstance(op, torch.nn.Module):
        op = op.to(device)
    return Checkpoint(model=model, op=op, arch=arch, model_config=cfg, operator_cfg=op_cfg,
                      protocol=_json(meta, "protocol", path), info=_json(meta, "info", path))


def load_model(path: str | Path, device: str | torch.device = "cpu"):
    """``(model, meta)`` — the model in eval mode and a dict with ``arch``, ``model_config``,
    ``operator`` (config), ``op`` (the rebuilt operator or factory), ``protocol``, ``info``."""
    ck = load_checkpoint(path, device=device)
    return ck.model, {"arch": ck.arch, "model_config": ck.model_config,
                      "operator": ck.operator_cfg, "op": ck.op, "protocol": ck.protocol,
                      "info": ck.info}
