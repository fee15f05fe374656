"""Errors caused by what the user gave us: the CLI reports them as one line, exit code 2."""
import re


class UserError(Exception):
    """Bad input (config, names, values, paths, checkpoints, data)."""


class ConfigError(UserError):
    """A config file, key, name or value is invalid.

    `key` is the key path of the culprit: ``("optimizer", "lr")`` or ``"transforms.train[0].p"``,
    so a caller holding the YAML document can point at its line; `located` is True once the
    message names the file and line.
    """

    def __init__(self, message: str, key: str | tuple = (), located: bool = False):
        super().__init__(message)
        self.keys: tuple = _key_path(key) if isinstance(key, str) else tuple(key)
        self.located = located


def _key_path(dotted: str) -> tuple:
    """"transforms.train[0].p" -> ("transforms", "train", 0, "p")."""
    return tuple(int(part[1:-1]) if part.startswith("[") else part
                 for part in re.findall(r"\[\d+\]|[^.\[\]]+", dotted))


class DataError(UserError):
    """A dataset, archive, image or split is invalid."""


class CheckpointError(UserError):
    """A checkpoint, state dict or run to resume from is missing or invalid."""


class TrackingLost(UserError):
    """The tracking server stopped answering mid-run for longer than tracking.server_retry_s."""


class RunStopped(Exception):
    """A diagnosis check listed in `diagnose.stop_on` ended the run (it ends FAILED with the reason)."""


class JobFailed(Exception):
    """A rank of a DDP job failed (the job's runs end FAILED): the message names the rank and its error."""
