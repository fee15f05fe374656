"""Errors caused by what the user gave us: the CLI reports them as one line, exit code 2."""


class UserError(Exception):
    """Bad input (config, names, values, paths, checkpoints, data)."""


class ConfigError(UserError):
    """A config file, key, name or value is invalid."""


class DataError(UserError):
    """A dataset, archive, image or split is invalid."""


class CheckpointError(UserError):
    """A checkpoint, state dict or run to resume from is missing or invalid."""


class RunStopped(Exception):
    """A diagnosis check listed in `diagnose.stop_on` ended the run (it ends FAILED with the reason)."""
