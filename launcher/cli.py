"""The `launch` command group. Subcommands live in their own modules."""
from __future__ import annotations

import atexit
import gc
import os
import sys

import click

from launcher.commands.catalog import catalog
from launcher.commands.compare import compare
from launcher.commands.data import data
from launcher.commands.diagnose import diagnose
from launcher.commands.eval import eval_
from launcher.commands.lr_find import lr_find
from launcher.commands.report import report
from launcher.commands.runs import runs
from launcher.commands.train import train
from launcher.commands.ui import ui
from launcher.sweep.cmd import sweep


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="launch")
def main() -> None:
    """launch: train the seed tutorial's models as single runs, DDP jobs or Ray Tune sweeps,
    tracked in MLflow and TensorBoardX."""
    # At exit, once the other exit handlers ran, freeze the heap: the interpreter's last garbage
    # collection then skips it (1-3 s after a training run, with torch, MLflow and pyarrow loaded).
    # Everything a command writes is closed by then; the memory goes back with the process.
    atexit.register(gc.freeze)


main.add_command(train)
main.add_command(ui)
main.add_command(runs)
main.add_command(compare)
main.add_command(catalog)
main.add_command(data)
main.add_command(eval_)
main.add_command(diagnose)
main.add_command(lr_find)
main.add_command(sweep)
main.add_command(report)


def entry() -> None:
    """The `launch` command (pyproject's script and `python -m launcher`): `main`, then a quick exit.

    Once a command returned, the interpreter's teardown of its modules takes ~0.3 s after a training
    run (torch, MLflow, pyarrow) and writes nothing: the threads are joined, the exit handlers run
    and the output flushed first, as at any exit, then the process ends without the teardown.
    In-process callers (tests, click's CliRunner) call `main` and exit as usual."""
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    else:
        code = 0
    from trainlib.compat import finish_interpreter_work

    finish_interpreter_work()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(exit_status(code))


def exit_status(code: object) -> int:
    """The status `sys.exit(code)` would give: None is 0, a number itself, anything else printed and 1."""
    if code is None or isinstance(code, int):
        return code or 0
    print(code, file=sys.stderr)
    return 1
