"""The cyclic garbage collector while a process starts up.

Starting up imports torch, MLflow, torch._dynamo (the optimizer's first use), Ray and more:
hundreds of thousands of objects that live as long as the process and form no garbage cycles to
speak of. At CPython's default thresholds the collector rescans the whole heap each time a quarter
more has come: a default `launch train` made 9 full collections (1.3 s of CPU, of 8.5 s wall on the
2-core box), `launch eval` 7 (1 s of its 6 s), each finding a few dozen objects.

So a command (launcher.guard), a Tune trial and a Ray Train worker start up inside `startup()`,
without the collector, and the work they start up for calls `startup_done()`: a run's training, a
range test, the probes, a sweep's trials, a DDP driver's wait on its job, `launch ui` watching its
servers. What the start-up left alive is then frozen (`gc.freeze`: left out of later collections)
and the collector runs again, as it always did; the block's end thaws and restores it. A short
command that trains nothing (`launch eval`, `runs`, `report`) runs to its end without it. Nested
blocks leave it all to the outermost one.
"""
from __future__ import annotations

import gc
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator


@dataclass
class _Pause:
    was_enabled: bool
    done: bool = False
    froze: bool = False


_active: _Pause | None = None  # the outermost start-up block's, while it runs


@contextmanager
def startup() -> Iterator[None]:
    """The block runs without the collector until `startup_done()`, then as it was; at its end the
    collector is as it was found, and what `startup_done` froze is thawed."""
    global _active
    if _active is not None:
        yield
        return
    pause = _active = _Pause(gc.isenabled())
    gc.disable()
    try:
        yield
    finally:
        _active = None
        if pause.froze:
            gc.unfreeze()
        if pause.was_enabled:
            _resume()


def startup_done() -> None:
    """The start-up is over: freeze what it left alive (unless someone else froze a heap: a test
    session) and turn the collector back on. Outside a start-up block, or a second time: nothing."""
    pause = _active
    if pause is None or pause.done:
        return
    pause.done = True
    if gc.get_freeze_count() == 0:
        gc.freeze()
        pause.froze = True
    if pause.was_enabled:
        gc.enable()


@contextmanager
def collection_paused() -> Iterator[None]:
    """The block runs without the collector, which is then as it was (a burst of imports or of
    short-lived objects after the start-up: a sweep's background imports, its summary)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            _resume()


def _resume() -> None:
    """The collector back on, the objects made while it was off handed to the oldest generation
    unscanned (gc.freeze zeroes the young generation's count, gc.unfreeze moves the frozen objects to
    the oldest): else its first collection sweeps them all at once, 0.1-0.3 s at the end of a command."""
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()
    gc.enable()
