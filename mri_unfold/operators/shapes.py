"""Declared per-sample shapes of operators, and the one check of a tensor against them.

An operator declares the shape of one sample of its domain and of its range (the batch
dimension ``N`` excluded) as a tuple whose entries are ints or ``None`` for a free size,
e.g. ``(1, 7, 9)`` for single-coil images of 7 x 9 pixels or ``(272, None, None)`` for
block-CS measurements of any image size.  A declared shape of ``None`` (instead of a
tuple) means "not declared": nothing is checked.  ``batch_size`` is the number of
per-sample parameter sets an operator holds (per-sample masks or coil maps), ``None``
when its parameters are shared by any batch.

Every mismatch raises :class:`ShapeError` (a :class:`ValueError`), whose message names the
operator and both shapes, e.g. ``SingleCoilFourier: x of shape (2, 1, 7, 8) does not
match the domain (N, 1, 7, 9)``.
"""
from __future__ import annotations

import functools
from typing import Callable, Optional, Sequence, Union

import torch

__all__ = ["Shape", "ShapeError", "format_shape", "fits", "unify_shapes", "unify_batch",
           "check_tensor", "check_composable", "check_addable", "common_batch", "chain_shape"]

#: Per-sample shape: ints, ``None`` for a free size.
Shape = tuple[Optional[int], ...]
#: An extra sentence for a shape error, or a function making it (called only on failure).
Detail = Union[str, Callable[[], str], None]


class ShapeError(ValueError):
    """A tensor does not fit an operator's declared domain or range, or two operators
    cannot be combined (composition, sum) because their shapes, complexities or batch
    sizes differ."""


def format_shape(shape: Shape | None, batch_size: int | None = None) -> str:
    """``(N, 1, 7, 9)``-style text of a per-sample ``shape`` with its batch dimension
    (``N`` when free, else ``batch_size``); free sizes print as ``*``."""
    if shape is None:
        return "(N, ...)"
    dims = ["N" if batch_size is None else str(batch_size)]
    dims += ["*" if d is None else str(d) for d in shape]
    return "(" + ", ".join(dims) + ")"


def fits(shape: Sequence[int], pattern: Shape | None) -> bool:
    """Whether a per-sample ``shape`` (batch dim excluded) fits ``pattern``."""
    if pattern is None:
        return True
    return len(shape) == len(pattern) and all(p is None or p == s
                                              for s, p in zip(shape, pattern))


def unify_shapes(a: Shape | None, b: Shape | None) -> Shape | None:
    """The most specific shape fitting both ``a`` and ``b``.

    Raises:
        ShapeError: different ranks or a dimension fixed to different sizes (the message
            gives both shapes; callers add which operators they belong to).
    """
    if a is None:
        return b
    if b is None:
        return a
    if len(a) != len(b) or any(x is not None and y is not None and x != y
                               for x, y in zip(a, b)):
        raise ShapeError(f"{format_shape(a)} and {format_shape(b)} differ")
    return tuple(x if x is not None else y for x, y in zip(a, b))


def unify_batch(a: int | None, b: int | None) -> int | None:
    """The common batch size of two parameter sets (``None`` = shared by any batch).

    Raises:
        ShapeError: two different per-sample batch sizes.
    """
    if a is not None and b is not None and a != b:
        raise ShapeError(f"per-sample parameters for {a} and for {b} samples")
    return a if a is not None else b


def check_tensor(owner: str, t, name: str, pattern: Shape | None, batch_size: int | None,
                 where: str = "domain", detail: Detail = None) -> None:
    """Check that ``t`` is a tensor ``(N, *pattern)`` (``N == batch_size`` when set).

    Args:
        owner: the operator's name for the message (e.g. ``"SingleCoilFourier"``).
        name: the argument's name (``"x"``, ``"y"``).
        pattern: the declared per-sample shape (``None``: only the type is checked).
        where: ``"domain"`` or ``"range"``.
        detail: optional operator-specific sentence appended after ``"; "`` (or a function
            returning it, called only when the check fails).
    Raises:
        TypeError: ``t`` is not a tensor.
        ShapeError: the shape does not fit.
    """
    if not torch.is_tensor(t):
        raise TypeError(f"{owner}: {name} must be a torch tensor {format_shape(pattern, batch_size)}"
                        f", got {type(t).__name__}")
    shape = tuple(t.shape)
    if pattern is None:
        return
    if (shape and fits(shape[1:], pattern)
            and (batch_size is None or shape[0] == batch_size)):
        return
    msg = (f"{owner}: {name} of shape {shape} does not match the {where} "
           f"{format_shape(pattern, batch_size)}")
    if callable(detail):
        detail = detail()
    raise ShapeError(msg if detail is None else f"{msg}; {detail}")


# ---------------------------------------------------------------- combining operators
# (duck-typed on LinearOperator: label(), *_shape, complex_*, batch_size, preserves_shape)
def _kind(is_complex: bool) -> str:
    return "complex" if is_complex else "real"


def _fit(first, second, a, b, what: str, verb: str):
    """``unify_shapes(a, b)`` with a message naming both operators."""
    try:
        return unify_shapes(a, b)
    except ShapeError:
        raise ShapeError(f"cannot {verb} {first.label()} and {second.label()}: {what} "
                         f"{format_shape(a)} and {format_shape(b)} do not match") from None


def common_batch(ops, verb: str) -> int | None:
    """The batch size shared by ``ops`` (``verb``: "compose"/"add", for the message)."""
    try:
        return functools.reduce(unify_batch, (op.batch_size for op in ops), None)
    except ShapeError:
        sizes = ", ".join(f"{op.label()}: {op.batch_size}" for op in ops)
        raise ShapeError(f"cannot {verb} operators with per-sample parameters for different "
                         f"batch sizes ({sizes})") from None


def chain_shape(ops, side: str):
    """The domain (``side="domain"``, ``ops`` innermost first) or range (``"range"``,
    outermost first) of a composition: the end operator's shape, refined through its
    shape-preserving neighbours."""
    attr = f"{side}_shape"
    shape, source = getattr(ops[0], attr), ops[0]
    for prev, nxt in zip(ops, ops[1:]):
        if not prev.preserves_shape:
            break
        nxt_shape = getattr(nxt, attr)
        shape = _fit(source, nxt, shape, nxt_shape, f"the {side}s", "compose")
        if nxt_shape is not None and any(d is not None for d in nxt_shape):
            source = nxt
    return shape


def check_composable(outer, inner) -> None:
    """Raise :class:`ShapeError` unless ``inner``'s range fits ``outer``'s domain."""
    if outer.complex_domain != inner.complex_range:
        raise ShapeError(
            f"cannot compose {outer.label()} @ {inner.label()}: the range of {inner.label()} "
            f"is {_kind(inner.complex_range)} but the domain of {outer.label()} is "
            f"{_kind(outer.complex_domain)} (insert a RealToComplex embedding between a real "
            "range and a complex domain)")
    _fit(outer, inner, outer.domain_shape, inner.range_shape, "its domain and the range",
         "compose")


def check_addable(first, op, domain, rng):
    """The common ``(domain, range)`` of ``first`` (so far ``domain``, ``rng``) and ``op``.

    Raises:
        ShapeError: different shapes or real/complex spaces.
    """
    if (op.complex_domain, op.complex_range) != (first.complex_domain, first.complex_range):
        raise ShapeError(f"cannot add {first.label()} and {op.label()}: "
                         f"{_kind(first.complex_domain)} -> {_kind(first.complex_range)} and "
                         f"{_kind(op.complex_domain)} -> {_kind(op.complex_range)} maps")
    return (_fit(first, op, domain, op.domain_shape, "the domains", "add"),
            _fit(first, op, rng, op.range_shape, "the ranges", "add"))
