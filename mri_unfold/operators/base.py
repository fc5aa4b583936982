"""The one base class for linear measurement operators Φ, with its declarations and algebra.

Every operator is an :class:`torch.nn.Module`; its data (sampling matrix, mask, coil
maps) are registered buffers, so they follow ``.to(device)`` and ``state_dict``.

Contract (``x`` in the domain, e.g. images; ``y`` in the range, e.g. measurements):

* ``forward(x)`` / ``op(x)`` — ``y = Φ x``;
* ``adjoint(y)`` — the exact adjoint ``Φ^H y`` with respect to the real inner product
  ``Re <a, b>`` (which is the usual complex inner product's real part; for complex-linear
  operators this is the ordinary adjoint).  Magnitude, root-sum-of-squares and cropping
  are *not* part of an adjoint: see :mod:`mri_unfold.image_ops`;
* ``normal(x)`` — ``Φ^H Φ x``; defaults to ``adjoint(forward(x))`` and is overridden where a
  closed form is cheaper.

Declarations (per sample, batch dimension excluded; see :mod:`.shapes`):

* ``domain_shape`` / ``range_shape`` — tuples of ints or ``None`` (free size), or ``None``
  when not declared (then nothing is checked);
* ``complex_domain`` / ``complex_range`` (bool) — whether images / measurements are
  complex (networks use 2 channels for a complex domain); ``complex_range`` defaults to
  ``complex_domain``;
* ``batch_size`` — number of per-sample parameter sets (masks, coil maps), ``None`` when
  shared by any batch;
* ``block_size`` (int or None) — block size of block-based operators (for ``blockwise``
  networks); ``linear_init(y)`` — a least-squares initialiser (``Qinit``), if any.

Algebra (each result is an operator with an exact adjoint by construction; combining
checks at construction that shapes, real/complex spaces and per-sample batch sizes fit):
``A @ B`` (:class:`Composed`, ``B`` first; its normal is ``B^H (A.normal(B x))``, reusing
closed forms), ``A + B`` / ``A - B`` (:class:`Sum`), ``c * A`` / ``-A`` (:class:`Scaled`,
real or complex ``c``; adjoint ``conj(c) A^H``), ``A.H`` (:class:`Adjoint`, ``A.H.H is A``)
and ``A.N`` (:class:`Normal`, ``A^H A``, self-adjoint).  ``A @ tensor`` is a
:class:`TypeError`: apply an operator by calling it, ``A(x)``.
"""
from __future__ import annotations

import abc
import numbers

import torch
from torch import nn

from .shapes import (Detail, Shape, ShapeError, chain_shape, check_addable, check_composable,
                     check_tensor, common_batch)

__all__ = ["LinearOperator", "Composed", "Sum", "Scaled", "Adjoint", "Normal", "as_scalar"]


def as_scalar(c) -> float | complex | None:
    """``c`` as a Python scalar if it is a real or complex number (bools excluded), else
    ``None``.  A complex number with zero imaginary part becomes a float."""
    if isinstance(c, bool) or not isinstance(c, numbers.Number):
        return None
    if isinstance(c, numbers.Real):
        return float(c)
    c = complex(c)
    return c.real if c.imag == 0 else c


class LinearOperator(nn.Module, abc.ABC):
    """Abstract linear operator Φ: domain (images) -> range (measurements)."""

    #: True if the domain (images) is complex-valued.
    complex_domain: bool = False
    #: Block size for block-based sampling, else None.
    block_size: int | None = None
    #: Per-sample domain / range shapes (None entries: free sizes; None: not declared).
    domain_shape: Shape | None = None
    range_shape: Shape | None = None
    #: Number of per-sample parameter sets, None when shared by any batch.
    batch_size: int | None = None
    #: True if outputs always have the shape of inputs (masks, FFTs, identity, ...).
    preserves_shape: bool = False

    @property
    def complex_range(self) -> bool:
        """True if the range (measurements) is complex; defaults to ``complex_domain``."""
        value = self.__dict__.get("_complex_range")
        return self.complex_domain if value is None else value

    @complex_range.setter
    def complex_range(self, value: bool) -> None:
        self.__dict__["_complex_range"] = bool(value)

    @abc.abstractmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """Apply Φ."""

    @abc.abstractmethod
    def adjoint(self, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """Apply the exact adjoint Φ^H."""

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """Apply Φ^H Φ (default: ``adjoint(forward(x))``)."""
        return self.adjoint(self.forward(x))

    def linear_init(self, y: torch.Tensor) -> torch.Tensor:
        """Linear initial estimate ``Q y`` (ISTA-Net's ``Qinit``).

        Raises:
            ValueError: operators without a linear initialiser.
        """
        raise ValueError(
            f"{type(self).__name__} has no linear initialiser (Qinit); use init='adjoint' "
            "or attach a Qinit matrix to a block-CS operator")

    # ------------------------------------------------------------------ declarations
    def label(self) -> str:
        """Name of the operator in messages (class name; algebra builds e.g. ``A @ B``)."""
        return type(self).__name__

    def check_domain(self, x, name: str = "x", detail: Detail = None) -> None:
        """Raise :class:`~.shapes.ShapeError` unless ``x`` is ``(N, *domain_shape)`` with
        ``N == batch_size`` when set; ``detail`` is appended to the message."""
        check_tensor(self.label(), x, name, self.domain_shape, self.batch_size, "domain",
                     detail)

    def check_range(self, y, name: str = "y", detail: Detail = None) -> None:
        """As :meth:`check_domain` for a measurement ``y`` against ``range_shape``."""
        check_tensor(self.label(), y, name, self.range_shape, self.batch_size, "range",
                     detail)

    # ------------------------------------------------------------------ algebra
    def __matmul__(self, other):
        if isinstance(other, LinearOperator):
            return Composed(self, other)
        if torch.is_tensor(other):
            raise TypeError(f"{self.label()} @ tensor: '@' composes two operators; apply an "
                            "operator by calling it, A(x) (or A.adjoint(y))")
        return NotImplemented

    def __rmatmul__(self, other):
        if torch.is_tensor(other):
            raise TypeError(f"tensor @ {self.label()}: '@' composes two operators; apply an "
                            "operator by calling it, A(x) (or A.adjoint(y))")
        return NotImplemented

    def __add__(self, other):
        if isinstance(other, LinearOperator):
            return Sum(self, other)
        return NotImplemented

    def __sub__(self, other):
        if isinstance(other, LinearOperator):
            return Sum(self, Scaled(-1.0, other))
        return NotImplemented

    def __mul__(self, other):
        c = as_scalar(other)
        if c is not None:
            return Scaled(c, self)
        if isinstance(other, LinearOperator) or torch.is_tensor(other):
            raise TypeError(f"{self.label()} * {type(other).__name__}: '*' scales by a number; "
                            "compose operators with A @ B and apply one with A(x)")
        return NotImplemented

    __rmul__ = __mul__

    def __neg__(self):
        return Scaled(-1.0, self)

    @property
    def H(self) -> "LinearOperator":
        """The adjoint ``Φ^H`` as an operator (``op.H.H is op``)."""
        return Adjoint(self)

    @property
    def N(self) -> "LinearOperator":
        """The normal operator ``Φ^H Φ`` (self-adjoint; applies :meth:`normal`)."""
        return Normal(self)

    # ------------------------------------------------------------------ helpers
    def extra_repr(self) -> str:
        return f"complex_domain={self.complex_domain}, block_size={self.block_size}"

    def _cached(self, slot: str, key, source: torch.Tensor, compute):
        """``compute()`` cached per ``key`` (e.g. device and dtype) in the plain attribute
        ``slot`` (not a buffer: never saved), recomputed whenever ``source`` changes — new
        storage, an in-place write (version counter) or a new shape.  An inference tensor
        ``source`` has no version counter: then nothing is cached (checked in eager mode only:
        ``is_inference`` would break a ``torch.compile`` graph)."""
        if not torch.compiler.is_compiling() and source.is_inference():
            return compute()
        stamp = (source.data_ptr(), source._version, tuple(source.shape))
        cache = self.__dict__.setdefault(slot, {})
        hit = cache.get(key)
        if hit is None or hit[0] != stamp:
            hit = (stamp, compute())
            cache[key] = hit
        return hit[1]


# ---------------------------------------------------------------------------- algebra
def _suffixed(label: str, attr: str) -> str:
    return f"({label}).{attr}" if " " in label else f"{label}.{attr}"


def _flatten(ops, plain: type) -> list[LinearOperator]:
    """``ops`` with nested operators of exactly the class ``plain`` spliced in."""
    flat: list[LinearOperator] = []
    for op in ops:
        if not isinstance(op, LinearOperator):
            raise TypeError(f"{plain.__name__} takes LinearOperators, got {type(op).__name__}")
        flat.extend(op.ops if type(op) is plain else (op,))
    if not flat:
        raise ValueError(f"{plain.__name__} needs at least one operator")
    return flat


class Composed(LinearOperator):
    """``ops[0] @ ops[1] @ ... @ ops[-1]``: ``ops[-1]`` is applied first.

    Nested plain compositions are flattened.  ``names`` (optional) names the parts as
    sub-modules (default ``"0"``, ``"1"``, ...), e.g. ``("sampling", "fft")``.

    Shapes: domain of ``ops[-1]`` -> range of ``ops[0]``; dtypes as the parts.
    """

    def __init__(self, *ops: LinearOperator, names: tuple[str, ...] | None = None):
        super().__init__()
        flat = _flatten(ops, Composed)
        if names is None:
            names = tuple(str(i) for i in range(len(flat)))
        if len(names) != len(flat):
            raise ValueError(f"Composed: {len(names)} names for {len(flat)} operators")
        for name, op in zip(names, flat):
            self.add_module(name, op)
        self._part_names = tuple(names)
        for outer, inner in zip(flat, flat[1:]):
            check_composable(outer, inner)
        self.batch_size = common_batch(flat, "compose")
        self.domain_shape = chain_shape(flat[::-1], "domain")
        self.range_shape = chain_shape(flat, "range")
        self.complex_domain = flat[-1].complex_domain
        self.complex_range = flat[0].complex_range
        self.preserves_shape = all(op.preserves_shape for op in flat)

    @property
    def ops(self) -> tuple[LinearOperator, ...]:
        """The parts, outermost first."""
        return tuple(self._modules[name] for name in self._part_names)

    def label(self) -> str:
        return " @ ".join(f"({op.label()})" if isinstance(op, Sum) else op.label()
                          for op in self.ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_domain(x)
        for op in reversed(self.ops):
            x = op(x)
        return x

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        self.check_range(y)
        for op in self.ops:
            y = op.adjoint(y)
        return y

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """``B^H (A.normal(B x))`` for ``A @ B`` (``B`` may itself be a chain)."""
        self.check_domain(x)
        outer, *inner = self.ops
        for op in reversed(inner):
            x = op(x)
        x = outer.normal(x)
        for op in inner:
            x = op.adjoint(x)
        return x


class Sum(LinearOperator):
    """``ops[0] + ops[1] + ...``: operators with the same domain and range.

    Shapes: the common domain -> the common range (nested plain sums are flattened).
    """

    def __init__(self, *ops: LinearOperator):
        super().__init__()
        flat = _flatten(ops, Sum)
        first = flat[0]
        domain, rng = first.domain_shape, first.range_shape
        for op in flat[1:]:
            domain, rng = check_addable(first, op, domain, rng)
        self.ops = torch.nn.ModuleList(flat)
        self.domain_shape, self.range_shape = domain, rng
        self.batch_size = common_batch(flat, "add")
        self.complex_domain, self.complex_range = first.complex_domain, first.complex_range
        self.preserves_shape = all(op.preserves_shape for op in flat)

    def label(self) -> str:
        return " + ".join(op.label() for op in self.ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.ops[0](x)
        for op in self.ops[1:]:
            out = out + op(x)
        return out

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        out = self.ops[0].adjoint(y)
        for op in self.ops[1:]:
            out = out + op.adjoint(y)
        return out


class Scaled(LinearOperator):
    """``scale * op`` for a real or complex number ``scale``.

    ``adjoint(y) = op.adjoint(conj(scale) * y)``, ``normal = |scale|² op.normal``.  A
    complex scale needs an operator with a complex range.  Shapes and dtypes: as ``op``.
    """

    def __init__(self, scale, op: LinearOperator):
        super().__init__()
        c = as_scalar(scale)
        if c is None:
            raise TypeError(f"scale must be a real or complex number, got {type(scale).__name__}")
        if type(op) is Scaled:
            c, op = c * op.scale, op.op
        if isinstance(c, complex) and not op.complex_range:
            raise ShapeError(f"cannot scale {op.label()} by the complex number {c}: its range "
                             "is real")
        self.scale = c
        self.op = op
        self.domain_shape, self.range_shape = op.domain_shape, op.range_shape
        self.batch_size, self.block_size = op.batch_size, op.block_size
        self.complex_domain, self.complex_range = op.complex_domain, op.complex_range
        self.preserves_shape = op.preserves_shape

    def label(self) -> str:
        inner = self.op.label()
        return f"{self.scale} * ({inner})" if type(self.op) in (Sum, Composed) else \
            f"{self.scale} * {inner}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * self.op(x)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.op.adjoint(self.scale.conjugate() * y)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        return abs(self.scale) ** 2 * self.op.normal(x)

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


class Adjoint(LinearOperator):
    """``op^H`` as an operator: ``forward = op.adjoint``, ``adjoint = op.forward``;
    ``.H`` gives ``op`` back.  Shapes: range of ``op`` -> domain of ``op``."""

    def __init__(self, op: LinearOperator):
        super().__init__()
        self.op = op
        self.domain_shape, self.range_shape = op.range_shape, op.domain_shape
        self.complex_domain, self.complex_range = op.complex_range, op.complex_domain
        self.batch_size = op.batch_size
        self.preserves_shape = op.preserves_shape

    @property
    def H(self) -> LinearOperator:
        return self.op

    def label(self) -> str:
        return _suffixed(self.op.label(), "H")

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.op.adjoint(y)

    def adjoint(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Normal(LinearOperator):
    """``op^H op`` as an operator (self-adjoint: ``forward = adjoint = op.normal``, and
    ``.H`` is itself).  Shapes: domain of ``op`` -> domain of ``op``."""

    preserves_shape = True

    def __init__(self, op: LinearOperator):
        super().__init__()
        self.op = op
        self.domain_shape = self.range_shape = op.domain_shape
        self.complex_domain = self.complex_range = op.complex_domain
        self.batch_size, self.block_size = op.batch_size, op.block_size

    @property
    def H(self) -> LinearOperator:
        return self

    def label(self) -> str:
        return _suffixed(self.op.label(), "N")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op.normal(x)

    def adjoint(self, x: torch.Tensor) -> torch.Tensor:
        return self.op.normal(x)
