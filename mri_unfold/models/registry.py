"""The model registry: ``register_model``, ``build`` and ``resolve_config``.

Architectures register themselves with the :func:`register_model` class decorator when
their module is imported (``mri_unfold.models`` imports the built-in ones).  A registered
class takes its config as keyword arguments and builds every weight in ``__init__``.
"""
from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Callable

from torch import nn

from ..plugins import load_plugins, registered
from .common import IMAGE_CHANNELS, check_image_channels

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str):
    """Class decorator registering an architecture under ``name``."""

    def deco(cls):
        _REGISTRY[name] = cls
        return cls

    return deco


def available_models() -> list[str]:
    """Registered architecture names (plug-ins loaded first, :mod:`mri_unfold.plugins`)."""
    load_plugins()
    return sorted(_REGISTRY)


def _model_class(name: str):
    cls = registered(_REGISTRY, name)
    if cls is None:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(available_models())}")
    return cls


def model_options(name: str) -> list[str]:
    """The config keys ``build(name, ...)`` accepts, in signature order.

    Raises:
        ValueError: unknown ``name`` (the message lists the registered models).
    """
    params = inspect.signature(_model_class(name).__init__).parameters
    return [p for p in params
            if p != "self" and params[p].kind is not inspect.Parameter.VAR_KEYWORD]


def build(name: str, **config) -> nn.Module:
    """Build a registered model with all its weights (float32, CPU).

    ``model.config`` holds the full config, so ``build(model.arch, **model.config)``
    rebuilds it.

    Raises:
        ValueError: unknown ``name`` or config key (the message lists the valid ones), or an
            invalid config value (raised by the model).
    """
    valid = model_options(name)
    unknown = [k for k in config if k not in valid]
    if unknown:
        raise ValueError(f"unknown config key(s) {unknown} for model {name!r}; valid keys: "
                         f"{', '.join(valid)}")
    model = _model_class(name)(**config)
    model.arch = name
    return model


def resolve_config(arch: str, config: Mapping, state_dict: Mapping) -> dict:
    """``config`` with ``image_channels`` read from a checkpoint's weights.

    Checkpoints written while models could build their image convolutions lazily store
    ``image_channels: null``.  The count is read from the tensor the architecture names in
    its ``image_channels_source()`` classmethod — ``(key, axis)``: for the ISTA family the
    input channels of ``phases.0.<input conv>``, for MADUN the output channels of
    ``stages.0.conv_G.weight``.

    Args:
        arch: registered architecture name.
        config: the stored model config (not modified).
        state_dict: the model's weights under the model's own keys (tensors, or anything
            with a ``.shape``).
    Returns:
        A new dict: ``config`` with ``image_channels`` an int (1 or 2).  A config that
        already holds an int is returned as a copy, after checking it against the weights
        when they contain the tensor.
    Raises:
        ValueError: unknown ``arch``; ``image_channels`` missing/None and not determinable
            from ``state_dict``; or the stored value contradicts the weights.
    """
    cls = _model_class(arch)
    out = dict(config)
    given = out.get("image_channels")
    source = getattr(cls, "image_channels_source", None)
    if source is None:
        if given is None:
            raise ValueError(f"cannot determine image_channels of a {arch!r} checkpoint: its "
                             "config stores none and the architecture does not say which "
                             "weight holds it")
        return out
    key, axis = source()
    shape = getattr(state_dict.get(key), "shape", None)
    if shape is None or len(shape) != 4 or int(shape[axis]) not in IMAGE_CHANNELS:
        if given is not None:
            return out
        found = "is missing" if shape is None else f"has shape {tuple(shape)}"
        raise ValueError(f"cannot determine image_channels of a {arch!r} checkpoint: its config "
                         f"stores none and weight {key!r} {found} (expected a 4-D conv "
                         f"weight with {' or '.join(map(str, IMAGE_CHANNELS))} channels on "
                         f"axis {axis})")
    found = int(shape[axis])
    if given is not None and check_image_channels(given) != found:
        raise ValueError(f"{arch!r} checkpoint config says image_channels={given} but weight "
                         f"{key!r} of shape {tuple(shape)} has {found}")
    out["image_channels"] = found
    return out


__all__ = ["register_model", "available_models", "model_options", "build", "resolve_config"]
