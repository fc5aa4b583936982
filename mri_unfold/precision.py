"""Numerical precision of the networks: the one list of choices and their autocast dtypes.

``"fp32"`` is the plain path; ``"bf16"`` (CPU with AVX-512 bf16, or CUDA) and ``"fp16"``
(CUDA only) run the convolutions under :func:`torch.autocast` while the measurement
operator stays in fp32/complex64 (:class:`mri_unfold.operators.Fp32Operator`).  Used by
``training.precision``, ``mri-unfold recon --precision`` and
:class:`mri_unfold.fastpath.FastPath` (``autocast``).
"""
from __future__ import annotations

import contextlib

import torch

__all__ = ["PRECISIONS", "AUTOCAST_DTYPES", "needs_cuda", "autocast_for"]

#: Precision names, in the order help texts list them.
PRECISIONS = ("fp32", "bf16", "fp16")
#: The autocast dtype of each reduced precision.
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def needs_cuda(precision: str | None, device: torch.device | str) -> bool:
    """True when ``precision`` cannot run on ``device`` (fp16 autocast needs CUDA)."""
    return precision == "fp16" and torch.device(device).type != "cuda"


def autocast_for(precision: str | None, device: torch.device | str):
    """``torch.autocast`` for ``"bf16"``/``"fp16"`` on ``device``; a null context for
    ``"fp32"``/``None``.  The caller checks :func:`needs_cuda` first (with its own message)."""
    if precision in (None, "fp32"):
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=AUTOCAST_DTYPES[precision])
