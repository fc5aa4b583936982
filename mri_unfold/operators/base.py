"""The one base class for linear measurement operators Φ.

Every operator is an :class:`torch.nn.Module`; its data (sampling matrix, mask, coil
maps) are registered buffers, so they follow ``.to(device)`` and ``state_dict``.

Contract (``x`` in the image domain, ``y`` in the measurement domain):

* ``forward(x)`` / ``op(x)`` — ``y = Φ x``;
* ``adjoint(y)`` — the exact adjoint ``Φ^H y`` with respect to the real inner product
  ``Re <a, b>`` (which is the usual complex inner product's real part; for complex-linear
  operators this is the ordinary adjoint).  Magnitude, root-sum-of-squares and cropping
  are *not* part of an adjoint: see :mod:`mri_unfold.image_ops`;
* ``normal(x)`` — ``Φ^H Φ x``; defaults to ``adjoint(forward(x))`` and is overridden where a
  closed form is cheaper.

Attributes the networks rely on:

* ``complex_domain`` (bool) — whether images are complex (networks then use 2 channels);
* ``block_size`` (int or None) — block size of block-based operators (for ``blockwise``
  networks), ``None`` otherwise;
* ``linear_init(y)`` — a learned/least-squares linear initialiser (``Qinit``), when the
  operator carries one.
"""
from __future__ import annotations

import abc

import torch
from torch import nn


class LinearOperator(nn.Module, abc.ABC):
    """Abstract linear operator Φ: image domain -> measurement domain."""

    #: True if the image domain is complex-valued.
    complex_domain: bool = False
    #: Block size for block-based sampling, else None.
    block_size: int | None = None

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

    def extra_repr(self) -> str:
        return f"complex_domain={self.complex_domain}, block_size={self.block_size}"

    def _cached(self, slot: str, key, source: torch.Tensor, compute):
        """``compute()`` cached per ``key`` (e.g. device and dtype) in the plain attribute
        ``slot`` (not a buffer: never saved), recomputed whenever ``source`` changes — new
        storage, an in-place write (version counter) or a new shape.  ``source`` must be a
        normal tensor (inference tensors have no version counter)."""
        stamp = (source.data_ptr(), source._version, tuple(source.shape))
        cache = self.__dict__.setdefault(slot, {})
        hit = cache.get(key)
        if hit is None or hit[0] != stamp:
            hit = (stamp, compute())
            cache[key] = hit
        return hit[1]
