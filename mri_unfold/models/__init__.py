"""Deep unfolding networks, one definition per architecture, generic over Φ.

Contract shared by every model:

* ``model(y, op)`` -> reconstruction ``x`` in ``op``'s image domain: real ``(N, 1, H, W)``
  float for real-domain operators, complex ``(N, 1, H, W)`` for complex-domain ones
  (the CNN sees ``complex_to_channels`` of it, 2 channels).
* ``model(y, op, return_aux=True)`` -> ``(x, aux)`` with ``aux`` a dict:
  ``aux["sym"]`` — list (one per phase) of symmetry residuals ``G(F(x)) - x`` (ISTA family;
  empty for MADUN), ``aux["phases"]`` — list of per-phase outputs (image domain).
* ``model.config`` — the keyword config the model was built with (``build(name, **config)``
  reproduces it); ``model.arch`` — its registered name.

``build(name, **config)`` creates a model by registered name; unknown names and unknown
config keys raise ``ValueError`` listing the valid ones.
"""
from __future__ import annotations

import importlib
import inspect
from typing import Callable

from torch import nn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
# modules whose import registers architectures
_ARCH_MODULES = ("ista", "madun")


def register_model(name: str):
    """Class decorator registering an architecture under ``name``."""

    def deco(cls):
        _REGISTRY[name] = cls
        return cls

    return deco


def _load_arch_modules() -> None:
    for m in _ARCH_MODULES:
        try:
            importlib.import_module(f"{__name__}.{m}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{m}":
                raise


def available_models() -> list[str]:
    """Registered architecture names."""
    _load_arch_modules()
    return sorted(_REGISTRY)


def build(name: str, **config) -> nn.Module:
    """Build a registered model.

    Raises:
        ValueError: unknown ``name`` or config key (the message lists the valid ones).
    """
    _load_arch_modules()
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(sorted(_REGISTRY))}")
    cls = _REGISTRY[name]
    params = inspect.signature(cls.__init__).parameters
    valid = [p for p in params if p != "self" and params[p].kind is not inspect.Parameter.VAR_KEYWORD]
    unknown = [k for k in config if k not in valid]
    if unknown:
        raise ValueError(f"unknown config key(s) {unknown} for model {name!r}; valid keys: "
                         f"{', '.join(valid)}")
    model = cls(**config)
    model.arch = name
    return model


def __getattr__(attr):  # lazy: load_official lives in its own module
    if attr == "load_official":
        from .official import load_official

        return load_official
    raise AttributeError(attr)


__all__ = ["build", "available_models", "register_model", "load_official"]
