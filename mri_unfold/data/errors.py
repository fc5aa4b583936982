"""The data package's one exception type."""
from __future__ import annotations

from ..errors import UserError


class DataFileError(UserError, ValueError):
    """A data file is unreadable, incomplete or inconsistent.

    The message always names the file (and the slice or variable where relevant).  It is
    both a :class:`~mri_unfold.errors.UserError` (the CLI prints it as one line and exits
    with status 2) and a :class:`ValueError`.
    """
