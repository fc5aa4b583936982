"""Deep unfolding networks, one definition per architecture, generic over Φ.

Contract shared by every model:

* built complete: ``build(name, **config)`` creates every parameter (float32, CPU);
  ``config["image_channels"]`` is 1 (real images, default) or 2 (complex images, seen by
  the CNN as ``complex_to_channels`` — real and imaginary channels).
* ``model(y, op)`` -> reconstruction ``x`` in ``op``'s image domain: real ``(N, 1, H, W)``
  float for real-domain operators, complex ``(N, 1, H, W)`` for complex-domain ones.  An
  operator whose domain does not match ``image_channels`` raises ``ValueError``.
* ``model(y, op, return_aux=True)`` -> ``(x, aux)`` with ``aux`` a dict:
  ``aux["sym"]`` — list (one per phase) of symmetry residuals ``G(F(x)) - x`` (ISTA family;
  empty for MADUN), ``aux["phases"]`` — list of per-phase outputs (image domain).
* ``model.config`` — the keyword config the model was built with (``build(name, **config)``
  reproduces it); ``model.arch`` — its registered name.

``build(name, **config)`` creates a model by registered name; unknown names and unknown
config keys raise ``ValueError`` listing the valid ones (``model_options(name)`` lists the
keys).  ``resolve_config(arch, config,
state_dict)`` fills in the ``image_channels: null`` of configs stored by older checkpoints.
``pretrained(name)`` loads a bundled zoo model with its operator settings
(:mod:`.zoo`; ``model_names()`` / ``list_cards()`` list the zoo).
"""
from __future__ import annotations

# the architecture modules register themselves on import
from . import ista, madun  # noqa: F401
from .official import load_official
from .zoo import Pretrained, list_cards, load_card, model_names, pretrained
from .registry import available_models, build, model_options, register_model, resolve_config

__all__ = ["build", "available_models", "model_options", "register_model", "resolve_config",
           "load_official", "pretrained", "Pretrained", "list_cards", "load_card", "model_names"]
