"""Tune's repeated snapshotting warning reaches the console once per sweep; other warnings pass."""
from __future__ import annotations

import logging

from launcher.ray_logs import SNAPSHOT_LOGGER, SNAPSHOT_WARNING, warn_once_per_sweep


def test_the_snapshot_warning_is_shown_once_and_other_warnings_always(caplog):
    logger = logging.getLogger(SNAPSHOT_LOGGER)
    for _ in range(2):  # two sweeps in one process: each shows it once
        warn_once_per_sweep()
        with caplog.at_level(logging.WARNING, logger=SNAPSHOT_LOGGER):
            caplog.clear()
            for _ in range(20):
                logger.warning(f"{SNAPSHOT_WARNING} in the last 5.0 seconds and may become a bottleneck.")
                logger.warning("Experiment state snapshotting took 9.1 seconds.")
        messages = [r.getMessage() for r in caplog.records]
        assert sum(m.startswith(SNAPSHOT_WARNING) for m in messages) == 1
        assert messages.count("Experiment state snapshotting took 9.1 seconds.") == 20
    assert sum(1 for f in logger.filters) == 1
