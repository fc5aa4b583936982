"""Experiment protocols: one TOML file describes a whole training/evaluation run.

A protocol has the sections ``data``, ``operator``, ``model``, ``training`` (with an
optional ``training.finetune`` sub-table) and ``evaluation`` plus top-level ``name`` /
``description`` / ``seed``.  :data:`SCHEMA` lists every key with its type and default;
any key not in the schema is an error naming the key and the valid keys at that level.
Free-form tables (``model.config``, ``training.loss_options``) are passed on to
:func:`mri_unfold.models.build` / :func:`mri_unfold.losses.build_loss`, which validate them.

String values may use ``${shared}`` (the shared data root, :func:`shared_root`) and
``${protocol_dir}`` (the folder of the protocol file); they are expanded on load.
``--override key=value`` uses dotted keys and TOML-typed values (``training.lr=1e-3``,
``operator.phi="gaussian"``, ``evaluation.sets=["a", "b"]``; a bare word is a string).

Example:
    >>> cfg = load_protocol("protocols/tiny.toml", overrides=["training.epochs=2"])  # doctest: +SKIP
    >>> cfg["training"]["epochs"]  # doctest: +SKIP
    2
"""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from ..data.sources import get_source, source_kinds, sources_with_option
from ..errors import UserError
from ..evaluation import protocol_names
from ..losses import KSPACE_LOSSES
from ..masks.split import DISTRIBUTIONS
from ..operators import KSPACE_OPERATOR_KINDS
from ..operators.kspace_factory import IMAGE_DOMAINS
from ..precision import PRECISIONS
from ..shared_data import shared_root
from .config_ranges import check_name, check_ranges
from .overrides import apply_overrides, parse_override
from .protocol_text import diff_configs, read_toml, to_toml
from .self_supervised import OBJECTIVES, SSDU_DEFAULTS, SSDUConfig

REQUIRED = object()
#: marker for free-form tables (validated by their consumer)
FREE = "free-form table"

SCHEMA: dict[str, Any] = {
    "name": (str, ""),
    "description": (str, ""),
    "seed": (int, 0),
    "data": {                              # keys common to every data.kind; each registered
        "kind": (str, "patches"),          # source adds its own (mri_unfold.data.sources)
        "train": (str, REQUIRED),          # training file or folder
        "val": (str, ""),                  # validation set (default evaluation set)
        "max_images": (int, 0),            # first N images/volumes; 0 = all
        "num_workers": (int, 0),
    },
    "operator": {
        "kind": (str, "block_cs"),         # a registered task kind (see tasks.py)
        "ratio": (float, 0.25),
        "block_size": (int, 33),
        "phi": (str, "gaussian"),          # gaussian | authors | path to a .mat with `phi`
        "qinit": (str, "none"),            # none | authors | compute | path to .mat with `Qinit`
        "matrix_dir": (str, "${shared}/reference/ista_net_pytorch/sampling_matrix"),
        "seed": (int, 0),
        "mask": (str, "radial"),           # mask file (.mat/.npy/.npz) or a make_mask kind
        "layout": (str, "centered"),       # layout of a mask file: centered | unshifted
        "center_fraction": (float, 0.0),
        "real_input": (bool, True),
        "image_domain": (str, "complex"),  # k-space kinds: complex | real (single-coil) images
        # operator.kind = "noncartesian" (images measured along a simulated trajectory):
        "trajectory": (str, "golden-radial"),  # radial | golden-radial | spiral | a .npy/.h5 file
        "acceleration": (float, 8.0),      # relative to Nyquist (radial: pi/2 N spokes)
        "readout": (int, 0),               # samples per spoke; 0 = 2 N (2x oversampling)
        "dcf": (str, "auto"),              # auto | ramp | pipe-menon | none
        "coils": (int, 1),                 # > 1: simulated birdcage coil maps
        # operator.kind = "learned_mask" (LOUPE-style mask trained with the network):
        "mask_dims": (int, 2),             # 1 = one logit per k-space column, 2 = per point
        "mask_prob_slope": (float, 5.0),   # p = sigmoid(slope * logit)
        "mask_slope_start": (float, 10.0), # relaxation slope at step 0 ...
        "mask_slope_end": (float, 200.0),  # ... annealed geometrically to this
        "mask_anneal_steps": (int, 0),     # over this many steps (0 = slope_start throughout)
        # operator.kind = "learned_kspace_mask" (the mask learned on k-space batches):
        "acs": (list, []),                 # [rows, columns] fully sampled box (e.g. ky-kz ACS)
    },
    "model": {
        "name": (str, REQUIRED),
        "seed": (int, 0),                  # weight-initialisation seed (global RNG untouched)
        "config": FREE,
    },
    "training": {
        "epochs": (int, 1),
        "batch_size": (int, 64),           # global batch (split over DDP ranks)
        "lr": (float, 1e-4),
        "weight_decay": (float, 0.0),
        "schedule": (str, "constant"),     # constant | step | multistep | cosine
        "step_size": (int, 1),
        "milestones": (list, []),
        "gamma": (float, 0.1),
        "min_lr": (float, 0.0),
        "loss": (str, "l1"),
        "loss_options": FREE,
        "grad_clip": (float, 0.0),         # max gradient norm; 0 = off
        "precision": (str, "fp32"),        # fp32 | bf16 | fp16
        "grad_checkpoint": (bool, False),
        "compile": (bool, False),          # torch.compile the network (eager fallback + warning)
        "compile_mode": (str, "default"),  # torch.compile mode (with compile = true)
        "channels_last": (bool, False),    # model weights (and so activations) channels-last
        "optimizer": (str, "adam"),        # adam | adam_foreach | adam_fused (same update)
        "checkpoint_every": (int, 0),      # steps; 0 = at the end of every epoch
        "max_steps": (int, 0),             # stop after this many optimizer steps; 0 = no limit
        "max_seconds": (float, 0.0),       # stop after this much training wall clock; 0 = none
        "init_from": (str, ""),            # checkpoint whose weights start the run (fine-tune)
        "objective": (str, "supervised"),  # supervised | ssdu (self-supervised, k-space only)
        "ssdu": {k: v for k, v in SSDU_DEFAULTS.items()},  # training.objective = "ssdu"
        "deterministic": (bool, False),
        "log_every": (int, 1),
        "progress": (bool, True),
        "finetune": {                      # optional second stage (MADUN: 99x99 patches)
            "epochs": (int, 0),
            "patch_size": (int, 0),
            "lr": (float, 0.0),            # 0 = keep training.lr
            "batch_size": (int, 0),        # 0 = keep training.batch_size
        },
    },
    "evaluation": {
        "protocol": (str, "none"),         # none or a registered protocol (cs_ni, mri, fastmri)
        "sets": (list, []),
        "every": (int, 1),                 # epochs between validations (first set)
        "max_images": (int, 0),            # validation subset during training; 0 = all
        "metric": (str, "psnr"),           # best checkpoint is kept on this metric
    },
}

CHOICES = {
    ("operator", "phi"): None,  # free string, checked by the operator factory
    ("training", "schedule"): ("constant", "step", "multistep", "cosine"),
    ("training", "precision"): PRECISIONS,
    ("training", "compile_mode"): ("default", "reduce-overhead", "max-autotune",
                                   "max-autotune-no-cudagraphs"),
    ("training", "optimizer"): ("adam", "adam_foreach", "adam_fused"),
    ("training", "objective"): OBJECTIVES,
    ("training", "ssdu", "distribution"): DISTRIBUTIONS,
    ("training", "ssdu", "loss"): KSPACE_LOSSES,
    ("operator", "image_domain"): IMAGE_DOMAINS,
    ("evaluation", "metric"): ("psnr", "ssim"),
}

_VAR = re.compile(r"\$\{(\w+)\}")


def _where(path: tuple[str, ...]) -> str:
    return ".".join(path) if path else "top level"


def _check_type(value, typ, path, source):
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if typ is int and isinstance(value, bool) or not isinstance(value, typ):
        raise UserError(f"{source}: {'.'.join(path)} must be of type {typ.__name__}, got "
                        f"{type(value).__name__} {value!r}")
    return value


def _validate(table: dict, schema: dict, path: tuple[str, ...], source: str,
              choices: dict | None = None) -> dict:
    out: dict[str, Any] = {}
    for key in table:
        if key not in schema:
            raise UserError(f"{source}: unknown key {'.'.join(path + (key,))!r} in "
                            f"{_where(path)}; valid keys: {', '.join(schema)}")
    for key, spec in schema.items():
        p = path + (key,)
        if p == ("data",):
            sub = table.get(key, {})
            if not isinstance(sub, dict):
                raise UserError(f"{source}: data must be a table")
            out[key] = _validate_data(sub, source)
        elif isinstance(spec, dict):
            sub = table.get(key, {})
            if not isinstance(sub, dict):
                raise UserError(f"{source}: {'.'.join(p)} must be a table")
            out[key] = _validate(sub, spec, p, source)
        elif spec is FREE:
            sub = table.get(key, {})
            if not isinstance(sub, dict):
                raise UserError(f"{source}: {'.'.join(p)} must be a table")
            out[key] = copy.deepcopy(sub)
        else:
            typ, default = spec
            if key in table:
                out[key] = _check_type(table[key], typ, p, source)
            elif default is REQUIRED:
                raise UserError(f"{source}: missing required key {'.'.join(p)!r}")
            else:
                out[key] = copy.deepcopy(default)
            allowed = (choices or CHOICES).get(p)
            if allowed and out[key] not in allowed:
                raise UserError(f"{source}: {'.'.join(p)} = {out[key]!r} is not one of "
                                f"{', '.join(allowed)}")
    return out


def _validate_data(table: dict, source: str) -> dict:
    """The ``data`` table: the common keys of :data:`SCHEMA` plus the options of the
    registered source ``data.kind`` (validated by the source).  A key of another source is
    accepted only with that source's default value (as written in older run folders'
    ``protocol.toml``) and then dropped."""
    kind = _check_type(table.get("kind", SCHEMA["data"]["kind"][1]), str, ("data", "kind"),
                       source)
    if kind not in source_kinds():
        raise UserError(f"{source}: data.kind = {kind!r} is not one of "
                        f"{', '.join(source_kinds())}")
    src = get_source(kind)
    common = SCHEMA["data"]
    own = {k: v for k, v in src.options.items() if k not in common}
    kept = {}
    for key, value in table.items():
        if key in common or key in own:
            kept[key] = value
            continue
        owners = sources_with_option(key)
        if not owners:
            raise UserError(f"{source}: unknown key 'data.{key}' in data; valid keys: "
                            + "".join(f"{k}, " for k in own)
                            + (f"(for data.kind = {kind!r}), " if own else "")
                            + ", ".join(common))
        if any(value != get_source(o).options[key][1] for o in owners):
            raise UserError(f"{source}: data.{key} applies to data.kind = "
                            f"{', '.join(repr(o) for o in owners)} only (data.kind is "
                            f"{kind!r}); keys of data.kind = {kind!r}: "
                            + ", ".join([*common, *own]))
    choices = {("data", k): v for k, v in src.choices.items()}
    out = _validate(kept, {**common, **own}, ("data",), source, choices)
    src.check_options({k: out[k] for k in own}, source)
    return out


def _expand(value, variables: dict[str, str], source: str):
    if isinstance(value, str):
        def sub(m):
            name = m.group(1)
            if name not in variables:
                raise UserError(f"{source}: unknown variable ${{{name}}} in {value!r}; valid: "
                                + ", ".join("${" + v + "}" for v in variables))
            return variables[name]() if callable(variables[name]) else variables[name]
        return _VAR.sub(sub, value)
    if isinstance(value, list):
        return [_expand(v, variables, source) for v in value]
    if isinstance(value, dict):
        return {k: _expand(v, variables, source) for k, v in value.items()}
    return value


def _check_combination(cfg: dict, source: str) -> None:
    """k-space data sources go with a k-space operator kind (and image sources with a fixed
    operator); the ``fastmri`` evaluation needs k-space data settings."""
    kind, op_kind = cfg["data"]["kind"], cfg["operator"]["kind"]
    src = get_source(kind)
    if src.yields == "kspace" and op_kind not in KSPACE_OPERATOR_KINDS:
        raise UserError(f"{source}: data.kind = {kind!r} and operator.kind = "
                        f"{src.operator_kind!r} go together (got data.kind = {kind!r}, "
                        f"operator.kind = {op_kind!r})")
    if src.yields != "kspace" and op_kind in KSPACE_OPERATOR_KINDS:
        kspace_kinds = [k for k in source_kinds() if get_source(k).yields == "kspace"]
        raise UserError(f"{source}: operator.kind = {op_kind!r} takes its operator from k-space "
                        f"data (data.kind = {', '.join(map(repr, kspace_kinds))}); data.kind = "
                        f"{kind!r} gives images")
    if cfg["training"]["objective"] == "ssdu":
        if src.yields != "kspace":
            raise UserError(f"{source}: training.objective = 'ssdu' learns from measured k-space, "
                            f"but data.kind = {kind!r} yields images, not measurements; use a "
                            "k-space data source (data.kind = "
                            + ", ".join(repr(k) for k in source_kinds()
                                        if get_source(k).yields == "kspace") + ")")
        SSDUConfig.from_table(cfg["training"]["ssdu"], False, f"{source}: training.ssdu")
    ev = cfg["evaluation"]["protocol"]
    if ev not in ("none", *protocol_names()):
        raise UserError(f"{source}: evaluation.protocol = {ev!r} is not one of "
                        f"{', '.join(['none', *protocol_names()])}")
    if ev == "fastmri" and src.yields != "kspace":
        raise UserError(f"{source}: evaluation.protocol = 'fastmri' needs data.kind = 'fastmri' "
                        "(k-space data: its mask and ESPIRiT settings)")


def validate_protocol(raw: dict, source: str = "protocol",
                      protocol_dir: str | Path | None = None) -> dict:
    """Validate a raw protocol dict against :data:`SCHEMA`, fill defaults, expand variables.

    Raises:
        UserError: unknown key (naming it and the valid ones), wrong type, bad choice,
            missing required key, unknown ``${variable}``.
    """
    cfg = _validate(raw, SCHEMA, (), source)
    _check_combination(cfg, source)
    variables = {"shared": lambda: str(shared_root()),
                 "protocol_dir": str(Path(protocol_dir).resolve()) if protocol_dir else "."}
    cfg = _expand(cfg, variables, source)
    if not cfg["name"]:
        cfg["name"] = Path(source).stem if source != "protocol" else "run"
    check_name(cfg["name"], source)
    check_ranges(cfg, source)
    if cfg["evaluation"]["protocol"] != "none" and not cfg["evaluation"]["sets"] \
            and cfg["data"]["val"]:
        cfg["evaluation"]["sets"] = [cfg["data"]["val"]]
    return cfg


def load_protocol(path: str | Path, overrides: list[str] | None = None) -> dict:
    """Read, override, validate and expand a protocol TOML file.

    Args:
        path: the ``.toml`` file.
        overrides: ``["dotted.key=value", ...]`` applied before validation.
    Returns:
        The full protocol as a plain dict (every key present, defaults filled).
    Raises:
        FileNotFoundError: missing file. UserError: malformed TOML (with line/column),
            unknown keys, wrong types.
    """
    path = Path(path)
    raw = apply_overrides(read_toml(path, "protocol file"), overrides or [])
    return validate_protocol(raw, source=str(path), protocol_dir=path.parent)


#: The strict-key schema check and the ``${variable}`` expansion, for other TOML files
#: with the same rules (the study protocols of :mod:`mri_unfold.studies`).
validate_table, expand_variables = _validate, _expand
