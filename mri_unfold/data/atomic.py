"""Atomic file output: write to a temporary file in the target folder, then rename."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import DataFileError

__all__ = ["atomic_output"]


@contextlib.contextmanager
def atomic_output(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it to ``path``.

    On any exception the temporary file is removed and ``path`` is left untouched, so no
    partial output is ever visible.  ``suffix`` lets writers that infer the format from the
    name (nibabel: ``.nii.gz``) see the right extension.

    Raises:
        DataFileError: the folder is missing or not writable (names ``path``).
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise DataFileError(f"{path}: output folder {path.parent} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    except OSError as e:
        raise DataFileError(f"{path}: cannot write to {path.parent} ({e})") from e
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
