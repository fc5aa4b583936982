"""The data package's one exception type (defined in :mod:`mri_unfold.errors`)."""
from __future__ import annotations

from ..errors import DataFileError

__all__ = ["DataFileError"]
