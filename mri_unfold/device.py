"""Device selection, determinism switch and seeded construction (no global RNG leaks)."""
from __future__ import annotations

import contextlib
import os

import torch

from .errors import UserError


def resolve_device(name: str | None = None) -> torch.device:
    """``None``/``"auto"`` -> ``cuda`` when available else ``cpu``; otherwise ``torch.device(name)``.

    Raises:
        UserError: unparsable name or CUDA requested but unavailable.
    """
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as e:
        raise UserError(f"device {name!r}: not a device (use auto, cpu, cuda, cuda:N)") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name!r}: CUDA is not available on this machine")
    return dev


def set_determinism(enabled: bool) -> None:
    """Switch ``torch.backends`` to deterministic algorithms (cuDNN deterministic, no benchmark,
    ``torch.use_deterministic_algorithms``). Needed on CUDA for bitwise-repeatable runs."""
    torch.backends.cudnn.deterministic = bool(enabled)
    torch.backends.cudnn.benchmark = not enabled
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(bool(enabled), warn_only=True)


@contextlib.contextmanager
def seeded(seed: int):
    """Run a block with the global torch RNG seeded to ``seed``, restoring the previous state
    afterwards (CPU and CUDA), e.g. for weight initialisation of models built by others."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        yield
