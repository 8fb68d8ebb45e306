"""Exceptions that carry a one-line, user-facing message about one input."""


class InputError(Exception):
    """An input file cannot be processed; the message names the problem in one line."""


class SchemaError(InputError):
    """A table does not follow the CameraPose Parquet contract."""
