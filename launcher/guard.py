"""Turn user errors into one clear line and exit code 2; SIGTERM into a clean interrupt."""
from __future__ import annotations

import functools
import signal
import sys
from pathlib import Path
from typing import Any, Callable

import click

USER_ERROR_EXIT = 2
STOPPED_EXIT = 3
FAILED_EXIT = 1
INTERRUPTED_EXIT = 130


def raise_interrupt(signum: int, frame: Any) -> None:
    """SIGTERM (and, in a DDP driver, SIGINT) as Ctrl-C: a KeyboardInterrupt that ends the run KILLED."""
    raise KeyboardInterrupt(f"signal {signum}")


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator for commands: UserError (and a full disk) -> 'error: ...' on stderr, exit 2, no traceback;
    a run stopped by a diagnosis check -> 'stopped: <reason>', exit 3; a DDP job whose rank failed ->
    'failed: rank N: <error>', exit 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from trainlib.diskspace import NO_SPACE, disk_full
        from trainlib.errors import JobFailed, RunStopped, UserError
        from trainlib.heap import startup

        signal.signal(signal.SIGTERM, raise_interrupt)
        try:
            with startup():  # the work a command starts up for calls startup_done (trainlib.heap)
                return fn(*args, **kwargs)
        except UserError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(USER_ERROR_EXIT)
        except OSError as exc:  # a full disk anywhere a command writes (checkpoints: see trainlib.diskspace)
            if exc.errno not in NO_SPACE:
                raise
            click.echo(f"error: {disk_full(Path(exc.filename or '.'))}", err=True)
            sys.exit(USER_ERROR_EXIT)
        except RunStopped as exc:
            click.echo(f"stopped: {exc}", err=True)
            sys.exit(STOPPED_EXIT)
        except JobFailed as exc:
            click.echo(f"failed: {exc}", err=True)
            sys.exit(FAILED_EXIT)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(INTERRUPTED_EXIT)

    return wrapper
