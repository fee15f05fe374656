"""launcher.guard: every command starts up without the garbage collector (trainlib.heap) and leaves
it as it found it, however the command ends."""
from __future__ import annotations

import gc

import pytest

from launcher.guard import USER_ERROR_EXIT, guarded
from trainlib.errors import ConfigError
from trainlib.heap import startup_done


def test_a_command_starts_up_paused_and_its_work_runs_with_the_collector(collector):
    seen = []

    @guarded
    def command():
        seen.append(gc.isenabled())
        startup_done()
        seen.append(gc.isenabled())

    command()
    assert seen == [False, True] and gc.isenabled()


def test_a_refused_command_leaves_the_collector_on(collector):
    @guarded
    def command():
        raise ConfigError("bad value")

    with pytest.raises(SystemExit) as ended:
        command()
    assert ended.value.code == USER_ERROR_EXIT and gc.isenabled()
