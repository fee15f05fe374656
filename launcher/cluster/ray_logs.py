"""Ray's console chatter, trimmed to what a user acts on: a repeated warning shown once, Ray
Train's per-report INFO dumps kept out of the console (warnings still shown), Ray's notes about
itself and its actors' output off a DDP driver's console unless --verbose."""
from __future__ import annotations

import logging
from pathlib import Path

import click

from trainlib.compat import RAY_TOKEN_LOGGER

# Tune warns on every forced experiment snapshot (one per checkpoint once a trial has `num_to_keep`):
# the advice is the same each time.
SNAPSHOT_LOGGER = "ray.tune.execution.experiment_state"
SNAPSHOT_WARNING = "Experiment state snapshotting has been triggered multiple times"


class FirstOnly(logging.Filter):
    """Lets through the first record whose message starts with `prefix`; drops its repeats."""

    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix
        self.seen = False

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.getMessage().startswith(self.prefix):
            return True
        first, self.seen = not self.seen, True
        return first


def warn_once_per_sweep() -> FirstOnly:
    """Show Tune's snapshotting warning once in this process (a new filter per sweep)."""
    logger = logging.getLogger(SNAPSHOT_LOGGER)
    for old in [f for f in logger.filters if isinstance(f, FirstOnly)]:
        logger.removeFilter(old)
    once = FirstOnly(SNAPSHOT_WARNING)
    logger.addFilter(once)
    return once


def quiet_train_console() -> None:
    """In a Ray Train worker: Ray Train's console shows its warnings only, not the INFO line that
    dumps every report ("Reporting training result N: TrainingReport(...)"); its log files under
    the Ray session keep everything."""
    for handler in logging.getLogger("ray.train").handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            handler.setLevel(logging.WARNING)


# Ray's messages about itself that a launch user cannot act on (logger -> text of the message):
# off the console unless --verbose.
CHATTER = {
    RAY_TOKEN_LOGGER: "Token authentication is enabled",
    "ray.tune.utils.util": "performance bottleneck",
    "ray.tune.execution.tune_controller": "performance bottleneck",
}
TRAIN_WORKER = "RayTrainWorker"  # the actor name of Ray Train's workers: their output is ours
AUTOSCALER = "autoscaler"  # its status every few seconds: Ray's session log (monitor.log) has it


class Without(logging.Filter):
    """Keeps the records whose message holds `text` off the console: appended to `sink` instead (if any)."""

    def __init__(self, text: str, sink: Path | None = None):
        super().__init__()
        self.text, self.sink = text, sink

    def filter(self, record: logging.LogRecord) -> bool:
        if self.text not in record.getMessage():
            return True
        if self.sink is not None:
            self.sink.parent.mkdir(parents=True, exist_ok=True)
            with open(self.sink, "a") as sink:
                sink.write(f"({record.name}) {record.levelname}: {record.getMessage()}\n")
        return False


def quiet_ray_driver(verbose: bool, log_file: Path | None = None) -> None:
    """Before Ray starts in this (driver) process: Ray's own chatter off the console, kept in
    `log_file` instead; on the console when `verbose`."""
    for name, text in CHATTER.items():
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, Without)]:
            logger.removeFilter(old)
        if not verbose:
            logger.addFilter(Without(text, log_file))


def workers_console(verbose: bool, log_file: Path | None) -> None:
    """Once Ray runs, what the driver prints of its workers' output: the Train workers' own lines
    (rank 0's epoch lines, as a single run prints them: no pid prefix, no colour codes); the rest
    (Ray's actors' warnings, tracebacks a failed job repeats; not the autoscaler's status) to
    `log_file`, each line after its process. `verbose`: Ray's printer, untouched. (Ray's session
    logs keep every line either way.)"""
    from trainlib.compat import ray_worker_output_dispatcher

    dispatcher = ray_worker_output_dispatcher()
    if verbose or "ray_print_logs" not in dict(dispatcher.handlers):  # Ray prints no worker output
        return
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)

    def print_ours(data: dict) -> None:
        lines = data.get("lines", [])
        if not lines:
            return
        if data.get("actor_name") == TRAIN_WORKER and not data.get("is_err"):
            click.echo("\n".join(lines))
        elif log_file is not None and data.get("pid") != AUTOSCALER:
            process = f"({data.get('actor_name') or data.get('task_name') or ''} pid={data.get('pid')})".replace("( ", "(")
            with open(log_file, "a") as sink:
                sink.writelines(f"{process} {line}\n" for line in lines)

    dispatcher.remove_handler("ray_print_logs")
    dispatcher.add_handler("ray_print_logs", print_ours)
