"""Exceptions meant for users: their message is shown as one line by the CLI (exit status 2).

Anything else that escapes to the command line is a bug and is reported as an internal error
(:mod:`mri_unfold.cli`).
"""


class UserError(Exception):
    """A problem with the user's input (file, argument, configuration)."""


class InvalidValue(UserError, ValueError):
    """A value given by the user (an option, a setting, a mask parameter) is not allowed; the
    message names it and what is allowed.  Also a ``ValueError`` for Python callers."""


class DataFileError(UserError, ValueError):
    """A data file is unreadable, incomplete or inconsistent, or cannot be written.

    The message always names the file (and the slice or variable where relevant).  It is
    both a :class:`UserError` (the CLI prints it as one line and exits with status 2) and a
    :class:`ValueError`.  Also importable from :mod:`mri_unfold.data.errors`.
    """
