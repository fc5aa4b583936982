"""Import the authors' released checkpoints (ISTA-Net / ISTA-Net+ PyTorch, MADUN).

The released ``net_params_*.pkl`` files are plain state dicts saved from a
``torch.nn.DataParallel`` model (every key starts with ``module.``).  They are read with
``torch.load(..., weights_only=True)`` (no unpickling of arbitrary objects).

Authors' key layout (ISTA family): ``module.fcs.{k}.{lambda_step, soft_thr, conv_D,
conv1_forward, conv2_forward, conv1_backward, conv2_backward, conv_G}``.

Example:
    >>> from mri_unfold.models.official import load_official
    >>> model = load_official("model/CS_ISTA_Net_plus_layer_9_group_1_ratio_25_lr_0.0001/"
    ...                       "net_params_200.pkl")                      # doctest: +SKIP
    >>> model.config["blockwise"], model.config["init"]                 # doctest: +SKIP
    (True, 'linear')
"""
from __future__ import annotations

import re
from pathlib import Path

import torch

from ..errors import UserError
from .madun import convert_official_state_dict as convert_madun_state_dict
from .registry import build

#: authors' per-phase parameter name -> ours
ISTA_KEY_MAP = {
    "lambda_step": "step",
    "soft_thr": "threshold",
    "conv_D": "conv_d",
    "conv1_forward": "conv_f1",
    "conv2_forward": "conv_f2",
    "conv1_backward": "conv_g1",
    "conv2_backward": "conv_g2",
    "conv_G": "conv_out",
}
ISTA_ARCHS = ("ista_net", "ista_net_plus")
_PHASE_KEY = re.compile(r"^fcs\.(\d+)\.(\w+)$")


def strip_module_prefix(sd: dict) -> dict:
    """Remove DataParallel's ``module.`` prefix from every key that has it."""
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in sd.items()}


def infer_arch(sd: dict) -> str:
    """``"madun"`` (ConvLSTM / ``fe.`` keys), ``"ista_net_plus"`` (``conv_D``) or ``"ista_net"``."""
    keys = list(strip_module_prefix(sd))
    if any("ConvLSTM" in k or k.startswith("fe.") or ".fe." in k for k in keys):
        return "madun"
    if any(k.endswith(".conv_D") for k in keys):
        return "ista_net_plus"
    if any(k.endswith(".conv1_forward") for k in keys):
        return "ista_net"
    raise ValueError("cannot infer the architecture from the checkpoint keys (first keys: "
                     f"{keys[:4]}); pass arch= explicitly")


def convert_official_state_dict(sd: dict, arch: str | None = None) -> tuple[dict, dict]:
    """Map an authors' state dict to ours.

    Args:
        sd: authors' state dict (with or without ``module.`` prefixes).
        arch: ``"ista_net"``, ``"ista_net_plus"``, ``"madun"`` or ``None`` (inferred).
    Returns:
        ``(state_dict, config)`` — our float32 tensors keyed ``phases.{k}.{name}``, and the
        architecture config read from the shapes (``num_phases``, ``channels``,
        ``image_channels``).
    Raises:
        ValueError: unknown keys or arch.
    """
    arch = arch or infer_arch(sd)
    if arch == "madun":
        return convert_madun_state_dict(sd)
    if arch not in ISTA_ARCHS:
        raise ValueError(f"arch must be one of {ISTA_ARCHS + ('madun',)}, got {arch!r}")
    out, phases = {}, set()
    for key, value in strip_module_prefix(sd).items():
        m = _PHASE_KEY.match(key)
        if not m or m.group(2) not in ISTA_KEY_MAP:
            raise ValueError(f"unexpected key {key!r} in an official {arch} checkpoint")
        k, name = int(m.group(1)), m.group(2)
        phases.add(k)
        out[f"phases.{k}.{ISTA_KEY_MAP[name]}"] = torch.as_tensor(value).detach().float()
    if not phases or sorted(phases) != list(range(len(phases))):
        raise ValueError(f"official checkpoint phases are not numbered 0..N-1: {sorted(phases)}")
    first = out.get("phases.0.conv_d" if arch == "ista_net_plus" else "phases.0.conv_f1")
    if first is None:
        raise ValueError(f"checkpoint has no phases.0 input convolution for arch {arch!r}")
    config = dict(num_phases=len(phases), channels=int(first.shape[0]),
                  image_channels=int(first.shape[1]))
    return out, config


def official_task(path: str | Path) -> str:
    """``"mri"`` if the file or its folder name starts with ``MRI`` (e.g.
    ``MRI_CS_ISTA_Net_plus_...``), else ``"cs"`` (block CS of natural images)."""
    p = Path(path)
    names = [p.name, p.parent.name]
    return "mri" if any(n.upper().startswith("MRI") for n in names) else "cs"


def task_config(task: str) -> dict:
    """The authors' settings: CS -> ``blockwise=True, init="linear"`` (Qinit, 33x33 blocks);
    MRI -> whole image, ``init="adjoint"`` (real image domain)."""
    if task == "cs":
        return dict(blockwise=True, init="linear")
    if task == "mri":
        return dict(blockwise=False, init="adjoint")
    raise ValueError(f"task must be 'cs' or 'mri', got {task!r}")


def read_official(path: str | Path) -> dict:
    """``torch.load`` an official checkpoint safely (CPU, ``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - re-raised with the file named
        raise UserError(f"{path}: not a readable PyTorch state dict ({e})") from e
    if not isinstance(sd, dict) or not all(torch.is_tensor(v) for v in sd.values()):
        raise UserError(f"{path}: expected a state dict of tensors (authors' net_params_*.pkl)")
    return sd


def _lacks(source: str, key: str) -> ValueError:
    return ValueError(f"{source}: checkpoint lacks parameter {key!r}")


def _check_no_extra_keys(ours, sd: dict, source: str) -> None:
    extra = [k for k in sd if k not in ours]
    if extra:
        raise ValueError(f"{source}: unexpected checkpoint key {extra[0]!r} for this model")


def check_keys(model: torch.nn.Module, sd: dict, source: str) -> None:
    """Raise ``ValueError`` naming the first key of ``model`` missing from ``sd``, else the
    first key of ``sd`` the model does not have (shapes are not compared)."""
    ours = model.state_dict()
    missing = next((key for key in ours if key not in sd), None)
    if missing is not None:
        raise _lacks(source, missing)
    _check_no_extra_keys(ours, sd, source)


def check_shapes(model: torch.nn.Module, sd: dict, source: str) -> None:
    """Raise ``ValueError`` naming the first missing/unexpected/mismatching key."""
    ours = model.state_dict()
    for key, t in ours.items():
        if key not in sd:
            raise _lacks(source, key)
        if tuple(sd[key].shape) != tuple(t.shape):
            raise ValueError(f"{source}: shape mismatch for {key!r}: checkpoint "
                             f"{tuple(sd[key].shape)}, model {tuple(t.shape)}")
    _check_no_extra_keys(ours, sd, source)


def load_official(path: str | Path, arch: str | None = None, **config) -> torch.nn.Module:
    """Load an authors' checkpoint as a ready model (eval mode, CPU).

    Args:
        path: ``net_params_*.pkl``.
        arch: ``None`` (inferred from the keys) or a registered name.
        **config: overrides of the inferred config, e.g. ``task="mri"`` (instead of
            guessing from the file/folder name), ``blockwise=False``, ``init="adjoint"``.
    Returns:
        The model, in ``eval()`` mode, with ``model.config`` set.  Block-CS ISTA checkpoints
        use ``GaussianBlockCS.from_mat_files(phi, Qinit)``; MRI ones
        ``SingleCoilFourier(mask, layout="unshifted", real_input=True)``.
    Raises:
        FileNotFoundError / UserError (unreadable file) / ValueError (keys or shapes).
    """
    sd = read_official(path)
    arch = arch or infer_arch(sd)
    ours, cfg = convert_official_state_dict(sd, arch)
    task = config.pop("task", None) or official_task(path)
    if arch in ISTA_ARCHS:
        cfg.update(task_config(task))
    cfg.update(config)
    # key names do not depend on image_channels: check them first, so that weights of
    # another architecture (whose inferred channel count may be no valid one, e.g. ISTA-Net+
    # weights read as ISTA-Net) are reported by key
    probe = build(arch, **{**cfg, "image_channels": 1})
    check_keys(probe, ours, str(path))
    model = probe if cfg["image_channels"] == 1 else build(arch, **cfg)
    check_shapes(model, ours, str(path))
    model.load_state_dict(ours)
    return model.eval()


__all__ = ["load_official", "convert_official_state_dict", "infer_arch", "official_task",
           "task_config", "read_official", "check_keys", "check_shapes", "strip_module_prefix", "ISTA_KEY_MAP"]
