"""Switchable fast paths for inference and training, each agreeing with the plain fp32 path.

The plain path is ``model(y, op)`` in fp32/complex64, contiguous NCHW, autograd on.  The
switches (all off by default, combine freely) are gathered in :class:`FastPath`:

* ``inference_mode`` — run under :func:`torch.inference_mode` (no autograd bookkeeping);
* ``channels_last`` — the model's 4-D parameters in :data:`torch.channels_last` memory
  format (values unchanged); convolutions then produce channels-last activations;
* ``autocast`` — ``"bf16"`` (CPU with AVX-512 bf16, or CUDA) or ``"fp16"`` (CUDA only):
  convolutions run in reduced precision while the measurement operator stays in
  fp32/complex64 (:class:`Fp32Operator` disables autocast around FFTs and Φ products and
  promotes its input); the reconstruction is returned as float32/complex64;
* ``compile`` — :func:`torch.compile` with a clean fallback: if compiling is unavailable or
  fails at the first call, a :class:`RuntimeWarning` is issued and the eager model is used;
* ``grad_checkpoint`` — per-stage activation checkpointing for training (models that have
  a ``grad_checkpoint`` attribute: the ISTA and MADUN families).

Two more fast paths live with the code they speed up: the block-CS operator's cheapest
``normal`` form (``GaussianBlockCS.normal_form``) and batched slice reconstruction
(``mri_unfold.reconstruct.reconstruct_volume(batch_size=..., pad_last_batch=...)``);
MADUN's ConvLSTM gates are fused natively (one convolution over ``[s, h]``).  The
process-wide allocator setting is :func:`mri_unfold.cpu_allocator.retain_freed_memory`.
Measured speed-ups and which combination to use: ``docs/performance.md``.

Example:
    >>> import torch
    >>> from mri_unfold.models import build
    >>> from mri_unfold.operators import GaussianBlockCS
    >>> from mri_unfold.fastpath import FastPath, accelerate
    >>> op = GaussianBlockCS(0.25, block_size=8, seed=0)
    >>> model = build("madun", num_stages=2, channels=4, seed=0).eval()
    >>> y = op(torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0)))
    >>> fast = accelerate(model, FastPath(inference_mode=True, autocast="bf16"))
    >>> fast(y, op).dtype
    torch.float32
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import warnings

import torch
from torch import nn

from .operators.base import LinearOperator
from .operators.precision import Fp32Operator
from .operators.precision import full_precision as _full_precision
from .precision import AUTOCAST_DTYPES, needs_cuda

__all__ = ["FastPath", "Fp32Operator", "accelerate", "AcceleratedModel", "autocast_dtype",
           "compile_with_fallback", "set_grad_checkpoint"]

#: ``FastPath.autocast`` values: ``None`` (fp32) or a reduced precision of
#: :data:`mri_unfold.precision.PRECISIONS`.
AUTOCAST_KINDS = (None, *AUTOCAST_DTYPES)


@dataclasses.dataclass(frozen=True)
class FastPath:
    """Which fast paths to switch on (all off = the plain fp32 path).

    Attributes:
        inference_mode: wrap calls in :func:`torch.inference_mode` (inference only).
        channels_last: convert the model's 4-D parameters to channels-last (the
            convolutions follow the weights' memory format).
        autocast: ``None``, ``"bf16"`` or ``"fp16"`` (fp16 needs CUDA).
        compile: ``False``, ``True`` (inductor) or a :func:`torch.compile` backend name.
        grad_checkpoint: per-stage activation checkpointing (training; models with a
            ``grad_checkpoint`` attribute).
    """

    inference_mode: bool = False
    channels_last: bool = False
    autocast: str | None = None
    compile: bool | str = False
    grad_checkpoint: bool = False

    def __post_init__(self):
        if self.autocast not in AUTOCAST_KINDS:
            raise ValueError(f"FastPath.autocast must be one of {AUTOCAST_KINDS}, got "
                             f"{self.autocast!r}")
        if not isinstance(self.compile, (bool, str)):
            raise ValueError(f"FastPath.compile must be a bool or a backend name, got "
                             f"{self.compile!r}")

    def describe(self) -> str:
        """Short label, e.g. ``"inference_mode+bf16"`` (``"plain"`` when all off)."""
        parts = [name for name in ("inference_mode", "channels_last", "grad_checkpoint")
                 if getattr(self, name)]
        if self.autocast:
            parts.append(self.autocast)
        if self.compile:
            parts.append("compile" if self.compile is True else f"compile[{self.compile}]")
        return "+".join(parts) or "plain"


def autocast_dtype(kind: str | None, device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype for ``kind`` on ``device`` (``None`` when ``kind`` is None).

    Raises:
        ValueError: unknown ``kind``, or ``"fp16"`` on a non-CUDA device.
    """
    device = torch.device(device)
    if kind is None:
        return None
    if kind not in AUTOCAST_DTYPES:
        raise ValueError(f"autocast must be one of {AUTOCAST_KINDS}, got {kind!r}")
    if needs_cuda(kind, device):
        raise ValueError(f"autocast='fp16' needs a CUDA device, got {device}; use 'bf16'")
    return AUTOCAST_DTYPES[kind]


def set_grad_checkpoint(model: nn.Module, enabled: bool = True) -> nn.Module:
    """Switch per-stage gradient checkpointing on/off.

    Raises:
        ValueError: the model has no ``grad_checkpoint`` switch.
    """
    if not hasattr(model, "grad_checkpoint"):
        raise ValueError(f"{type(model).__name__} has no per-stage gradient checkpointing "
                         "(no 'grad_checkpoint' attribute); it is available for the ISTA and "
                         "MADUN families")
    model.grad_checkpoint = bool(enabled)
    return model


def compile_with_fallback(fn, backend: str = "inductor", **kwargs):
    """``torch.compile(fn)`` that falls back to ``fn`` (with a :class:`RuntimeWarning`) when
    compiling is unavailable or the compiled function fails.

    The first call decides: if it raises, the error is reported in the warning and ``fn``
    itself is used from then on.  Returns a callable with attribute ``compiled`` (bool,
    whether the compiled version is in use).
    """
    return _CompiledOrEager(fn, backend, kwargs)


#: Messages of the compiler a user cannot act on: inductor runs complex operations (the FFTs
#: and NUFFTs of the operator) eagerly and says so once; importing its C++ toolchain on a
#: machine without a CUDA runtime logs where it looked for one.
_COMPILER_WARNINGS = r"Torchinductor does not support code generation for complex operators"
_COMPILER_LOGGERS = ("torch.utils.cpp_extension",)


@contextlib.contextmanager
def quiet_compiler():
    """Silence :data:`_COMPILER_WARNINGS` and the toolchain loggers while compiling."""
    loggers = [logging.getLogger(name) for name in _COMPILER_LOGGERS]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_COMPILER_WARNINGS)
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)


class _CompiledOrEager:
    def __init__(self, fn, backend: str, kwargs: dict):
        self.eager = fn
        self.compiled = False
        self._fn = fn
        self._decided = False
        try:
            self._fn = torch.compile(fn, backend=backend, **kwargs)
            self.compiled = True
        except Exception as e:  # noqa: BLE001 - any failure means: run eagerly
            self._fallback(e)

    def _fallback(self, err: BaseException) -> None:
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        warnings.warn(f"torch.compile unavailable or failed ({type(err).__name__}: "
                      f"{first[:200]}); using the eager model", RuntimeWarning, stacklevel=3)
        self._fn, self.compiled, self._decided = self.eager, False, True

    def __call__(self, *args, **kwargs):
        if not self.compiled:
            return self._fn(*args, **kwargs)
        with quiet_compiler():
            return self._call(*args, **kwargs)

    def _call(self, *args, **kwargs):
        if self._decided:
            return self._fn(*args, **kwargs)
        try:
            out = self._fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001
            if not self.compiled:
                raise
            self._fallback(e)
            return self.eager(*args, **kwargs)
        self._decided = True
        return out


class AcceleratedModel(nn.Module):
    """A model run with the switches of a :class:`FastPath` (see :func:`accelerate`).

    Call: ``fast(y, op, return_aux=False)`` — the model contract; the reconstruction (and
    the per-phase outputs in ``aux``) come back in float32/complex64 whatever the autocast.
    The wrapped model is ``fast.model`` (its parameters are shared, not copied).
    """

    def __init__(self, model: nn.Module, path: FastPath):
        super().__init__()
        self.model = model
        self.path = path
        if path.channels_last:
            model.to(memory_format=torch.channels_last)
        if path.grad_checkpoint:
            set_grad_checkpoint(model, True)
        self._call = (compile_with_fallback(model, path.compile if isinstance(path.compile, str)
                                            else "inductor") if path.compile else model)

    def _contexts(self, device: torch.device) -> contextlib.ExitStack:
        stack = contextlib.ExitStack()
        if self.path.inference_mode:
            stack.enter_context(torch.inference_mode())
        dtype = autocast_dtype(self.path.autocast, device)
        if dtype is not None:
            stack.enter_context(torch.autocast(device_type=device.type, dtype=dtype))
        return stack

    def forward(self, y: torch.Tensor, op: LinearOperator, return_aux: bool = False):
        if self.path.autocast:
            op = Fp32Operator(op)
        with self._contexts(y.device):
            out = self._call(y, op, return_aux=return_aux) if return_aux else self._call(y, op)
        if return_aux:
            x, aux = out
            aux = {k: [_full_precision(t) for t in v] for k, v in aux.items()}
            return _full_precision(x), aux
        return _full_precision(out)


def accelerate(model: nn.Module, path: FastPath | None = None, **switches) -> AcceleratedModel:
    """Wrap ``model`` with the fast paths of ``path`` (or of keyword switches, e.g.
    ``accelerate(model, autocast="bf16", inference_mode=True)``).

    ``channels_last`` and ``grad_checkpoint`` modify ``model`` in place (memory format of its
    parameters; its checkpoint switch).
    """
    if path is None:
        path = FastPath(**switches)
    elif switches:
        path = dataclasses.replace(path, **switches)
    return AcceleratedModel(model, path)
