"""What a run hands to Tune or Ray Train each epoch: a folder holding only last.pt, the state a
retried or resumed trial restores (best.pt is kept by the run itself and its MLflow artifacts),
hard-linked from the run folder so nothing is copied on this node."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def last_only(checkpoint_dir: Path) -> Iterator[str]:
    from trainlib.checkpoint import LAST

    with tempfile.TemporaryDirectory(dir=checkpoint_dir.parent, prefix=".report-") as folder:
        try:
            os.link(checkpoint_dir / LAST, Path(folder) / LAST)
        except OSError:  # another filesystem: copy
            shutil.copy2(checkpoint_dir / LAST, Path(folder) / LAST)
        yield folder
