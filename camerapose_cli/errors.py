"""Exceptions with one-line, user-facing messages: about one input, or about how the tool was called."""


class InputError(Exception):
    """An input file cannot be processed; the message names the problem in one line."""


class SchemaError(InputError):
    """A table does not follow the CameraPose Parquet contract."""


class UsageError(Exception):
    """The tool was called wrongly (a missing file, a bad option or checkpoint): nothing was processed."""


class ConfigError(UsageError):
    """A preset or a setting is invalid; the message names the file and the key."""


class CheckpointError(UsageError):
    """A file is not a usable camerapose checkpoint of the expected kind."""


class TrainingDiverged(Exception):
    """A training run gave a non-finite loss or gradient for many steps in a row; its last saved state is kept."""
