"""A run trained straight through and the same run interrupted after epoch 1, then resumed."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from trainlib.observers import EpochObserver
from trainlib.resume import locate
from trainlib.run import run

QUIET = {"progress": False, "echo": lambda line: None}


def whole_and_resumed(config: dict[str, Any]) -> tuple[dict[str, float], dict[str, float], Path]:
    """Final metrics of both, and the interrupted-then-resumed run's folder."""
    whole = run(config, **QUIET)
    stopped: list[Path] = []

    def stop_after_first_epoch(report) -> None:
        stopped.append(report.checkpoint_dir.parent)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(config, observers=[EpochObserver(stop_after_first_epoch)], **QUIET)
    resumed = run(config, resume=locate(str(stopped[0]), None), **QUIET)
    return whole, resumed, stopped[0]
