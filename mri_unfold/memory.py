"""Size guards: refuse an allocation the machine cannot hold before making it.

A file or setting may declare an enormous size (a 6 KB HDF5 file declaring
``(2, 100000, 100000)`` k-space, a mask shape of 100000 x 100000, a checkpoint whose model
config asks for 200000 channels).  Callers estimate the bytes they are about to allocate and
call :func:`require_memory`, which compares them with the memory available now and raises
:class:`InsufficientMemory` (a :class:`~mri_unfold.errors.UserError`) naming what asked for it
and the size it would need.
"""
from __future__ import annotations

import os

from .errors import UserError

__all__ = ["InsufficientMemory", "available_memory_bytes", "require_memory", "format_bytes"]


class InsufficientMemory(UserError, MemoryError):
    """An allocation larger than the available memory was refused before it was made."""


def available_memory_bytes() -> int:
    """Memory available to new allocations now: ``MemAvailable`` of ``/proc/meminfo`` on
    Linux, else the physical memory (``os.sysconf``)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def format_bytes(n: float) -> str:
    """``1.5 GiB``-style size."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def require_memory(nbytes: float, what: str, available: int | None = None) -> None:
    """Raise :class:`InsufficientMemory` when ``nbytes`` exceed the available memory.

    Args:
        nbytes: the estimated size of the allocation (with any working copies).
        what: what asks for it, e.g. ``"scan.h5: one k-space slice of shape (2, 1e5, 1e5)"``.
        available: override the measured available memory (tests).
    """
    free = available_memory_bytes() if available is None else int(available)
    if nbytes > free:
        raise InsufficientMemory(f"{what} needs {format_bytes(nbytes)} of memory, more than the "
                                 f"{format_bytes(free)} available; refusing to allocate it")
