"""Study protocols: one TOML file with strict keys describes a whole mask-design study.

Sections (every key, its type and default in :data:`SCHEMA`; an unknown key anywhere is an
error naming it and the valid keys):

* top level — ``name`` (default: the file stem), ``description``, ``seed`` (training data
  order and network initialisation of every trained cell);
* ``[data]`` — ``kind`` (a registered image data source, :mod:`mri_unfold.data.sources`,
  whose own keys are accepted here too), ``train``, ``test`` (files/folders), ``val``
  (optional; default: the last ``val_images`` items of ``train``, held out of training),
  ``val_images``, ``train_images`` and ``test_images`` (first N; 0 = all);
* ``[masks]`` — ``kinds`` × ``accelerations`` × ``center_fractions`` (0 = the kind's
  default) × ``seeds`` of :func:`mri_unfold.masks.make_mask`; ``files`` (mask files in
  ``file_layout``); ``learned_dims`` (learned masks, 1 = per column, 2 = per point, at each
  acceleration) with the ``learned_*`` relaxation settings; ``tolerance`` (largest relative
  miss of the requested acceleration); ``acs`` (``[KY, KZ]``: ky–kz masks of 3-D scans,
  :func:`mri_unfold.masks.kykz.make_kykz_mask`, with ``elliptical`` and ``partial_fourier``;
  learned masks then keep the same ACS block);
* ``[methods]`` — ``classical`` (names of :data:`mri_unfold.baselines.BASELINES`),
  ``lambdas`` (swept on the validation images, never on the test images; ``["auto"]``:
  chosen for each test image from its own measurements by the held-out k-space loss,
  :mod:`mri_unfold.auto_lambda`, no validation image needed), ``max_iter``
  (0 = each method's default), ``checkpoints`` (pretrained networks evaluated on every mask),
  ``batch_size`` (test images per reconstruction call);
* ``[network]`` — a network trained per mask through the training engine (``model = ""``:
  none): ``model``, ``config``, ``init_from`` (a checkpoint to fine-tune), ``max_steps``,
  ``max_seconds`` (time budget per cell, 0 = none), ``batch_size``, ``lr``, ``loss``,
  ``checkpoint_every``;
* ``[report]`` — ``grid_acceleration`` / ``grid_image`` (the reconstruction grid),
  ``compare`` (two mask labels for the paired comparison), ``compare_method``, ``metric``.

String values may use ``${shared}`` and ``${protocol_dir}`` as in training protocols.
"""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

from ..baselines import BASELINES
from ..data.sources import get_source, source_kinds
from ..errors import UserError
from ..masks import KINDS, LAYOUTS
from ..masks.kykz import KYKZ_KINDS
from ..shared_data import shared_root
from ..training.config import FREE, REQUIRED, expand_variables, read_toml, validate_table
from ..training.config_ranges import check_name
from ..training.overrides import apply_overrides

__all__ = ["SCHEMA", "load_study", "validate_study", "fingerprint", "DATA_KEYS"]

#: ``data`` keys of every study (the source of ``data.kind`` adds its own).
DATA_KEYS = {
    "kind": (str, "images"),
    "train": (str, ""),                # "" = no training data (no trained cells)
    "test": (str, REQUIRED),
    "val": (str, ""),
    "val_images": (int, 4),
    "train_images": (int, 0),
    "test_images": (int, 0),
}

SCHEMA = {
    "name": (str, ""),
    "description": (str, ""),
    "seed": (int, 0),
    "data": DATA_KEYS,
    "masks": {
        "kinds": (list, []),
        "accelerations": (list, []),
        "center_fractions": (list, [0.0]),
        "seeds": (list, [0]),
        "files": (list, []),
        "file_layout": (str, "centered"),
        "learned_dims": (list, []),
        "learned_center_fraction": (float, 0.0),
        "learned_prob_slope": (float, 5.0),
        "learned_slope_start": (float, 10.0),
        "learned_slope_end": (float, 200.0),
        "tolerance": (float, 0.1),
        "acs": (list, []),                 # [KY, KZ]: ky-kz masks of 3-D scans (masks.kykz)
        "elliptical": (bool, False),
        "partial_fourier": (float, 1.0),
    },
    "methods": {
        "classical": (list, ["zero-filled"]),
        "lambdas": (list, [1e-3]),
        "max_iter": (int, 0),
        "checkpoints": (list, []),
        "batch_size": (int, 10),
    },
    "network": {
        "model": (str, ""),
        "config": FREE,
        "init_from": (str, ""),
        "max_steps": (int, 100),
        "max_seconds": (float, 0.0),
        "batch_size": (int, 4),
        "lr": (float, 1e-3),
        "loss": (str, "l1"),
        "checkpoint_every": (int, 25),
    },
    "report": {
        "grid_acceleration": (float, 0.0),
        "grid_image": (int, 0),
        "compare": (list, []),
        "compare_method": (str, ""),
        "metric": (str, "psnr"),
    },
}

#: Allowed values of string keys (checked after the schema).
_CHOICES = {("masks", "file_layout"): LAYOUTS, ("report", "metric"): ("psnr", "ssim", "nmse")}

#: Sections whose settings define the results (the fingerprint); ``report`` and
#: ``description`` only change how they are shown.
_DEFINING = ("seed", "data", "masks", "methods", "network")


def _numbers(cfg: dict, source: str, key: str, kind, ok, want: str) -> list:
    section, name = key.split(".")
    values = cfg[section][name]
    for v in values:
        if kind is float and isinstance(v, int) and not isinstance(v, bool):
            continue
        if not isinstance(v, kind) or isinstance(v, bool):
            raise UserError(f"{source}: {key} must be a list of {kind.__name__}s, got {v!r}")
    values = [kind(v) for v in values]
    bad = [v for v in values if not ok(v)]
    if bad:
        raise UserError(f"{source}: {key} = {bad[0]!r}: each value must be {want}")
    if len(set(values)) != len(values):
        raise UserError(f"{source}: {key} repeats a value: {values}")
    cfg[section][name] = values
    return values


def _strings(cfg: dict, source: str, key: str, allowed=None) -> list[str]:
    section, name = key.split(".")
    values = cfg[section][name]
    if not all(isinstance(v, str) for v in values):
        raise UserError(f"{source}: {key} must be a list of strings, got {values!r}")
    for v in values:
        if allowed is not None and v not in allowed:
            raise UserError(f"{source}: {key}: {v!r} is not one of {', '.join(allowed)}")
    if len(set(values)) != len(values):
        raise UserError(f"{source}: {key} repeats a value: {values}")
    return values


def _validate_data(table: dict, source: str) -> dict:
    kind = table.get("kind", DATA_KEYS["kind"][1])
    if kind not in source_kinds():
        raise UserError(f"{source}: data.kind = {kind!r} is not one of {', '.join(source_kinds())}")
    src = get_source(kind)
    if src.yields != "image":
        raise UserError(f"{source}: data.kind = {kind!r} gives k-space samples; studies simulate "
                        "the masks on images (an image source: "
                        + ", ".join(k for k in source_kinds() if get_source(k).yields == "image")
                        + ")")
    own = {k: v for k, v in src.options.items() if k not in DATA_KEYS}
    choices = {("data", k): v for k, v in src.choices.items()}
    out = validate_table(table, {**DATA_KEYS, **own}, ("data",), source, choices)
    src.check_options({k: out[k] for k in own}, source)
    return out


def validate_study(raw: dict, source: str = "study", protocol_dir=None) -> dict:
    """Validate a raw study dict against :data:`SCHEMA`, fill defaults, expand variables.

    Raises:
        UserError: unknown keys, wrong types, bad values (each naming the key), a study with
            no mask or no method.
    """
    raw = copy.deepcopy(raw)
    data = raw.pop("data", {})
    if not isinstance(data, dict):
        raise UserError(f"{source}: data must be a table")
    cfg = validate_table(raw, {k: v for k, v in SCHEMA.items() if k != "data"}, (), source)
    for (section, key), allowed in _CHOICES.items():
        if cfg[section][key] not in allowed:
            raise UserError(f"{source}: {section}.{key} = {cfg[section][key]!r} is not one of "
                            f"{', '.join(allowed)}")
    cfg["data"] = _validate_data(data, source)
    variables = {"shared": lambda: str(shared_root()),
                 "protocol_dir": str(Path(protocol_dir).resolve()) if protocol_dir else "."}
    cfg = expand_variables(cfg, variables, source)
    cfg["name"] = check_name(cfg["name"] or (Path(source).stem if source != "study"
                                             else "study"), source)
    for key in ("val_images", "train_images", "test_images"):
        if cfg["data"][key] < 0:
            raise UserError(f"{source}: data.{key} must be >= 0, got {cfg['data'][key]}")
    m = cfg["masks"]
    _strings(cfg, source, "masks.kinds", KYKZ_KINDS if m["acs"] else KINDS)
    if m["acs"] and (len(m["acs"]) != 2 or not all(isinstance(a, int) and a > 0
                                                   for a in m["acs"])):
        raise UserError(f"{source}: masks.acs must be two positive integers [KY, KZ], got "
                        f"{m['acs']!r}")
    if not m["acs"] and (m["elliptical"] or m["partial_fourier"] != 1.0):
        raise UserError(f"{source}: masks.elliptical and masks.partial_fourier are for ky-kz "
                        "masks: give masks.acs = [KY, KZ]")
    _numbers(cfg, source, "masks.accelerations", float, lambda v: v >= 1, ">= 1")
    _numbers(cfg, source, "masks.center_fractions", float, lambda v: 0 <= v < 1, "in [0, 1)")
    _numbers(cfg, source, "masks.seeds", int, lambda v: v >= 0, ">= 0")
    _numbers(cfg, source, "masks.learned_dims", int, lambda v: v in (1, 2), "1 or 2")
    _strings(cfg, source, "masks.files")
    if (m["kinds"] or m["learned_dims"]) and not m["accelerations"]:
        raise UserError(f"{source}: masks.accelerations is empty; give the accelerations of "
                        "masks.kinds / masks.learned_dims")
    if not (m["kinds"] or m["files"] or m["learned_dims"]):
        raise UserError(f"{source}: no mask: give masks.kinds, masks.files or "
                        "masks.learned_dims")
    if not 0 <= m["learned_center_fraction"] < 1:
        raise UserError(f"{source}: masks.learned_center_fraction must be in [0, 1), got "
                        f"{m['learned_center_fraction']}")
    if not m["tolerance"] > 0:
        raise UserError(f"{source}: masks.tolerance must be > 0, got {m['tolerance']}")
    meth, net = cfg["methods"], cfg["network"]
    _strings(cfg, source, "methods.classical", tuple(BASELINES))
    if meth["lambdas"] != ["auto"]:
        if "auto" in meth["lambdas"]:
            raise UserError(f"{source}: methods.lambdas: \"auto\" stands alone (chosen per "
                            f"image), got {meth['lambdas']}")
        _numbers(cfg, source, "methods.lambdas", float, lambda v: v > 0, "> 0")
    _strings(cfg, source, "methods.checkpoints")
    swept = [c for c in meth["classical"] if c != "zero-filled"]
    if swept and not meth["lambdas"]:
        raise UserError(f"{source}: methods.lambdas is empty; {', '.join(swept)} need at least "
                        "one regularisation weight to sweep")
    if meth["max_iter"] < 0 or meth["batch_size"] < 1:
        raise UserError(f"{source}: methods.max_iter must be >= 0 and methods.batch_size >= 1")
    if not (meth["classical"] or meth["checkpoints"] or net["model"]):
        raise UserError(f"{source}: no method: give methods.classical, methods.checkpoints or "
                        "network.model")
    if m["learned_dims"] and not net["model"]:
        raise UserError(f"{source}: masks.learned_dims needs network.model (a learned mask is "
                        "trained with the network)")
    if net["model"] and not cfg["data"]["train"]:
        raise UserError(f"{source}: network.model needs data.train (the training data)")
    if net["model"] and not (net["max_steps"] > 0 or net["max_seconds"] > 0):
        raise UserError(f"{source}: network.max_steps or network.max_seconds must be > 0")
    if net["batch_size"] < 1 or not net["lr"] > 0 or net["max_steps"] < 0:
        raise UserError(f"{source}: network.batch_size must be >= 1, network.lr > 0 and "
                        "network.max_steps >= 0")
    rep = cfg["report"]
    _strings(cfg, source, "report.compare")
    if rep["compare"] and len(rep["compare"]) != 2:
        raise UserError(f"{source}: report.compare names two mask labels, got {rep['compare']}")
    if rep["grid_image"] < 0 or rep["grid_acceleration"] < 0:
        raise UserError(f"{source}: report.grid_image and report.grid_acceleration must be >= 0, "
                        f"got {rep['grid_image']} and {rep['grid_acceleration']}")
    return cfg


def load_study(path, overrides: list[str] | None = None) -> dict:
    """Read, override (``dotted.key=value``), validate and expand a study TOML file.

    Raises:
        FileNotFoundError: no such file.  UserError: malformed TOML or invalid settings.
    """
    path = Path(path)
    raw = apply_overrides(read_toml(path, "study protocol"), overrides or [])
    return validate_study(raw, str(path), path.parent)


def fingerprint(cfg: dict) -> str:
    """SHA-256 (first 16 hex digits) of the settings that define the results
    (:data:`_DEFINING` and the name): equal for every shard of one study."""
    defining = {k: cfg[k] for k in ("name", *_DEFINING)}
    text = json.dumps(defining, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
