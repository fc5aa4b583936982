"""Exceptions meant for users: their message is shown as one line by the CLI."""


class UserError(Exception):
    """A problem with the user's input (file, argument, configuration)."""
