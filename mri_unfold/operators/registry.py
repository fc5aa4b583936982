"""The operator registry: every operator class with example instances, and the config kinds.

Registering an operator gives it

* example instances that the contract test (``tests/test_operator_contract.py``) checks
  with :func:`~mri_unfold.operators.check_operator` — adding an operator is registering it;
* optionally a ``from_config`` builder, which makes its name an ``operator.kind`` of the
  training protocols (:func:`~mri_unfold.operators.factory.build_operator`).

Usage (see ``docs/operators.md``, "Adding an operator")::

    @register_operator("flip", examples=[OperatorExample("4x4", Flip, domain_shape=(1, 4, 4))])
    class Flip(LinearOperator):
        ...
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Sequence

from ..plugins import load_plugins

__all__ = ["OperatorExample", "OperatorEntry", "register_operator", "registered_operators",
           "operator_examples", "operator_kinds"]


@dataclasses.dataclass(frozen=True)
class OperatorExample:
    """One example instance for the contract.

    Attributes:
        name: short id (unique within its operator).
        build: zero-argument function returning the operator (seeded, self-contained).
        domain_shape: per-sample input shape for the check; needed when the operator's
            declared domain has free sizes (e.g. block CS image sides).
    """

    name: str
    build: Callable[[], object]
    domain_shape: Optional[tuple[int, ...]] = None


@dataclasses.dataclass
class OperatorEntry:
    """A registered name: its class (if registered as a decorator), examples, builder."""

    name: str
    cls: Optional[type] = None
    examples: tuple[OperatorExample, ...] = ()
    from_config: Optional[Callable] = None


_REGISTRY: dict[str, OperatorEntry] = {}


def register_operator(name: str, examples: Sequence[OperatorExample] = (),
                      from_config: Callable | None = None):
    """Register ``name`` with contract ``examples`` and an optional config builder.

    Use it as a class decorator (``@register_operator("single_coil", examples=[...])``) or
    as a plain call (``register_operator("block_cs", from_config=build)``, e.g. to attach a
    config builder to a name registered elsewhere).  A name may be registered several
    times only to fill what is still empty.

    Args:
        examples: :class:`OperatorExample` items (built lazily, when checked).
        from_config: ``from_config(operator_cfg, tensors=None, image_shape=None)`` returning
            the operator for ``operator.kind = name``; ``tensors`` is a checkpoint's stored
            operator ``state_dict``.
    Returns:
        A decorator registering the decorated class under ``name`` and returning it.
    Raises:
        ValueError: ``name`` already has examples / a builder / a class, or an example name
            repeats.
    """
    entry = _REGISTRY.setdefault(name, OperatorEntry(name))
    examples = tuple(examples)
    if examples:
        if entry.examples:
            raise ValueError(f"operator {name!r} already has registered examples")
        ids = [e.name for e in examples]
        if len(set(ids)) != len(ids):
            raise ValueError(f"operator {name!r}: example names repeat: {ids}")
        entry.examples = examples
    if from_config is not None:
        if entry.from_config is not None and entry.from_config is not from_config:
            raise ValueError(f"operator {name!r} already has a from_config builder")
        entry.from_config = from_config

    def decorate(cls):
        if entry.cls is not None and entry.cls is not cls:
            raise ValueError(f"operator {name!r} is already registered for "
                             f"{entry.cls.__name__}")
        entry.cls = cls
        return cls

    return decorate


def registered_operators() -> dict[str, OperatorEntry]:
    """All registered names (a copy), sorted."""
    return {k: _REGISTRY[k] for k in sorted(_REGISTRY)}


def operator_examples() -> list[tuple[str, OperatorExample]]:
    """``("name/example", example)`` for every registered example, sorted."""
    return [(f"{name}/{ex.name}", ex) for name, entry in registered_operators().items()
            for ex in entry.examples]


def operator_kinds() -> list[str]:
    """Names with a ``from_config`` builder: the valid ``operator.kind`` values (plug-ins
    loaded first, :mod:`mri_unfold.plugins`)."""
    load_plugins()
    return [name for name, entry in registered_operators().items() if entry.from_config]
