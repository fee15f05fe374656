"""trainlib: the training library behind `launch` (usable without Ray or MLflow).

The entry point is `from trainlib.run import run`. The config helpers below load lazily, so
`import trainlib.errors` stays cheap for the CLI.
"""
from importlib import import_module

_LAZY = {
    "TrainConfig": "trainlib.config",
    "resolve": "trainlib.config",
    "validate": "trainlib.config",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'trainlib' has no attribute {name!r}")
