"""Reading NumPy ``.npy``/``.npz`` files without ever unpickling.

``np.load(..., allow_pickle=False)`` already refuses arrays of Python objects (a pickle
inside a ``.npy`` file); :func:`no_pickle` turns numpy's ``ValueError`` into a
:class:`~mri_unfold.errors.DataFileError` that names the file and says why, and
:func:`load_npy` is ``np.load`` under it.

Example:
    >>> import numpy as np, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "objects.npy"
    >>> np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    >>> load_npy(p)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mri_unfold.errors.DataFileError: ...objects.npy: holds a NumPy object array ...
"""
from __future__ import annotations

import contextlib
import os
from typing import Iterator

import numpy as np

from .errors import DataFileError

__all__ = ["no_pickle", "load_npy"]


@contextlib.contextmanager
def no_pickle(path: str | os.PathLike) -> Iterator[None]:
    """Inside the block, numpy's refusal to load an object array becomes a
    :class:`DataFileError` naming ``path``."""
    try:
        yield
    except ValueError as e:
        if "allow_pickle" not in str(e) and "Object arrays" not in str(e):
            raise
        raise DataFileError(f"{path}: holds a NumPy object array (pickled Python objects); "
                            "object arrays are refused and never unpickled — save a plain "
                            "numeric array") from e


def load_npy(path: str | os.PathLike, **kwargs):
    """``np.load(path, allow_pickle=False, **kwargs)`` under :func:`no_pickle`."""
    with no_pickle(path):
        return np.load(path, allow_pickle=False, **kwargs)
