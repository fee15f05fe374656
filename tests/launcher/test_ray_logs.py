"""Tune's repeated snapshotting warning reaches the console once per sweep; other warnings pass;
Ray's notes about itself (token authentication, "performance bottleneck") only with --verbose."""
from __future__ import annotations

import logging

from launcher.cluster.ray_logs import SNAPSHOT_LOGGER, SNAPSHOT_WARNING, warn_once_per_sweep


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


def test_ray_train_console_shows_warnings_but_no_report_dumps(tmp_path, capsys):
    from launcher.cluster.ray_logs import quiet_train_console

    logger = logging.getLogger("ray.train")
    console, file = logging.StreamHandler(), logging.FileHandler(tmp_path / "train.log")
    logger.addHandler(console)
    logger.addHandler(file)
    logger.setLevel(logging.DEBUG)
    try:
        quiet_train_console()
        child = logging.getLogger("ray.train.v2._internal.execution.context")
        child.info("Reporting training result 1: TrainingReport(checkpoint=None, metrics={...})")
        child.warning("a real warning")
    finally:
        logger.removeHandler(console)
        logger.removeHandler(file)
        file.close()
    assert capsys.readouterr().err == "a real warning\n"
    assert "Reporting training result 1" in (tmp_path / "train.log").read_text()


RAY_NOTES = """
import logging, sys
from pathlib import Path
from launcher.cluster.ray_logs import CHATTER, quiet_ray_driver
logging.basicConfig(format="%(message)s")
quiet_ray_driver(verbose=sys.argv[1] == "verbose", log_file=Path(sys.argv[2]))
for name, text in CHATTER.items():
    logging.getLogger(name).warning(f"note: {text} (from {name})")
    logging.getLogger(name).warning(f"a real warning from {name}")
"""


def test_rays_notes_about_itself_are_off_a_drivers_console_unless_verbose_and_kept_in_its_log(tmp_path):
    import subprocess
    import sys

    from launcher.cluster.ray_logs import CHATTER

    logs = {mode: tmp_path / mode / "console.log" for mode in ("quiet", "verbose")}
    quiet, verbose = (subprocess.run([sys.executable, "-c", RAY_NOTES, mode, str(logs[mode])], capture_output=True,
                                     text=True, check=True).stderr.splitlines() for mode in ("quiet", "verbose"))
    assert quiet == [f"a real warning from {name}" for name in CHATTER]
    kept = logs["quiet"].read_text().splitlines()
    assert [line.split(") ", 1)[1] for line in kept] == [f"WARNING: note: {text} (from {name})"
                                                         for name, text in CHATTER.items()]
    assert len(verbose) == 2 * len(CHATTER) and "note: Token authentication is enabled" in verbose[0]
    assert not logs["verbose"].exists()
