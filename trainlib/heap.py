"""The cyclic garbage collector around a run's set-up.

A run's set-up imports MLflow, torch._dynamo (the optimizer's first use), torchvision and more:
hundreds of thousands of objects that live as long as the process and form no garbage cycles to
speak of. At CPython's default thresholds the collector rescans the whole heap again and again while
they are created: a default `launch train` made 9 full collections, 1.3 s of its 8.5 s on the 2-core
box, and they found a few dozen objects. So the set-up runs with the collector paused, and what it
leaves alive is frozen (`gc.freeze`: left out of later collections, so the one MLflow's model
logging triggers scans only what training made) until the run ends. Training runs with the collector
on, as before; nothing is ever freed later than at the run's end. A caller that imports the
heavy packages itself before `trainlib.run` (the Tune trainable) pauses the collector around them too.
"""
from __future__ import annotations

import gc
from contextlib import contextmanager
from types import TracebackType
from typing import Iterator


@contextmanager
def collection_paused() -> Iterator[None]:
    """The block runs without the cyclic collector, which is then as it was."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class SetupPause:
    """`with SetupPause() as pause: <set-up>; pause.setup_done(); <training>`.

    Leaves the collector as it found it: a caller that paused it keeps it paused, and heap another
    caller froze (a test session) is neither frozen again nor thawed."""

    def __enter__(self) -> SetupPause:
        self.was_enabled = gc.isenabled()
        self.froze = False
        gc.disable()
        return self

    def setup_done(self) -> None:
        if gc.get_freeze_count() == 0:
            gc.freeze()
            self.froze = True
        if self.was_enabled:
            gc.enable()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self.froze:
            gc.unfreeze()
        if self.was_enabled:
            gc.enable()
