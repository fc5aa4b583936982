"""CPU fast path at the process level: keep freed memory instead of returning it to the OS.

PyTorch's CPU tensors come from the C library's ``malloc``.  glibc serves large blocks
(above an adaptive threshold of 128 KiB-32 MiB) with a fresh ``mmap`` and gives them back
with ``munmap`` when freed, so every large activation of a network — MADUN's 4C-channel
gate tensor is 36 MB for one 264x264 image — is page-faulted and zeroed again at every
stage.  On this project's 2-core CPU that costs 10-28 % of MADUN's eager fp32 inference
time (measured in ``docs/performance.md``).  :func:`retain_freed_memory` tells glibc to serve
everything from its heap and never trim it (``mallopt``: ``M_MMAP_MAX = 0``,
``M_TRIM_THRESHOLD`` = max, ``M_TOP_PAD`` = 512 MiB), the effect that jemalloc/tcmalloc
(``LD_PRELOAD``) or ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=...`` give from outside.

Trade-off: the process keeps its peak heap resident until it exits (memory freed by one
large step is reused by the next, never returned).  This is a process-wide setting that
cannot be undone.  Importing the package never applies it; the ``mri-unfold`` command
applies it at start (``--no-retain-memory`` opts out), because a CLI run is one job in its
own process.

Example:
    >>> from mri_unfold.cpu_allocator import retain_freed_memory
    >>> retain_freed_memory()   # True with glibc (Linux); False (with a warning) elsewhere
    True
"""
from __future__ import annotations

import ctypes
import warnings

__all__ = ["retain_freed_memory", "allocator_settings"]

# mallopt parameter numbers of glibc's <malloc.h>
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX = -1, -2, -4
_TRIM_MAX = 2 ** 31 - 1  # mallopt takes a C int
_TOP_PAD = 512 * 2 ** 20

_applied: dict | None = None


def _libc():
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.mallopt.restype = ctypes.c_int
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        return libc
    except (OSError, AttributeError):
        return None


def retain_freed_memory(warn: bool = True) -> bool:
    """Make glibc keep freed memory for reuse (no ``mmap``/``munmap`` per large tensor).

    Args:
        warn: issue a :class:`RuntimeWarning` when the setting cannot be applied.
    Returns:
        True when the settings were applied (glibc), False otherwise (a
        :class:`RuntimeWarning` says why; nothing is changed).
    """
    global _applied
    if _applied is not None:
        return True
    libc = _libc()
    if libc is None:
        if warn:
            warnings.warn("retain_freed_memory: the C library is not glibc (no mallopt); "
                          "allocator unchanged — use jemalloc/tcmalloc via LD_PRELOAD instead",
                          RuntimeWarning, stacklevel=2)
        return False
    settings = {"M_MMAP_MAX": (M_MMAP_MAX, 0), "M_TRIM_THRESHOLD": (M_TRIM_THRESHOLD, _TRIM_MAX),
                "M_TOP_PAD": (M_TOP_PAD, _TOP_PAD)}
    failed = [name for name, (param, value) in settings.items() if libc.mallopt(param, value) != 1]
    if failed:
        if warn:
            warnings.warn(f"retain_freed_memory: mallopt rejected {failed}", RuntimeWarning,
                          stacklevel=2)
        return False
    _applied = {"libc": "glibc " + libc.gnu_get_libc_version().decode(),
                **{name: value for name, (_, value) in settings.items()}}
    return True


def allocator_settings() -> dict | None:
    """The settings applied by :func:`retain_freed_memory` in this process (None if not)."""
    return None if _applied is None else dict(_applied)
