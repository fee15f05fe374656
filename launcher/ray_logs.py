"""Ray's console chatter, trimmed to what a user acts on: a repeated warning shown once, Ray
Train's per-report INFO dumps kept out of the console (warnings still shown)."""
from __future__ import annotations

import logging

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
