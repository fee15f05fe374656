"""trainlib.heap: a run's set-up without collections, its heap frozen while it trains, the collector
left as it was found."""
from __future__ import annotations

import gc

import pytest

from trainlib.heap import SetupPause, collection_paused
from trainlib.observers import EpochObserver
from trainlib.run import run


@pytest.fixture
def collector():
    """The collector on and nothing frozen, as in a fresh `launch` process; restored afterwards."""
    was_enabled, frozen = gc.isenabled(), gc.get_freeze_count()
    gc.unfreeze()
    gc.enable()
    yield
    if frozen:
        gc.freeze()
    if not was_enabled:
        gc.disable()


def test_setup_is_paused_then_frozen_and_the_end_restores_the_collector(collector):
    with SetupPause() as pause:
        assert not gc.isenabled()
        pause.setup_done()
        assert gc.isenabled() and gc.get_freeze_count() > 0
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_an_error_in_the_setup_restores_the_collector(collector):
    with pytest.raises(ValueError), SetupPause():
        raise ValueError("bad config")
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_a_collector_paused_by_the_caller_stays_paused(collector):
    gc.disable()
    with SetupPause() as pause:
        pause.setup_done()
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_a_heap_frozen_by_someone_else_is_not_thawed(collector):
    gc.freeze()
    frozen = gc.get_freeze_count()
    with SetupPause() as pause:
        pause.setup_done()
    assert gc.get_freeze_count() == frozen


def test_a_run_trains_with_the_collector_on_and_its_setup_frozen_then_thaws_it(collector, run_config):
    seen = []
    watch = EpochObserver(lambda report: seen.append((gc.isenabled(), gc.get_freeze_count())))
    run(run_config(epochs=1, batch_size=256), observers=[watch], progress=False, echo=lambda _: None)
    assert seen and seen[0][0] and seen[0][1] > 0
    assert gc.isenabled() and gc.get_freeze_count() == 0


@pytest.mark.parametrize("enabled", [True, False])
def test_collection_paused_pauses_the_block_and_leaves_the_collector_as_it_was(collector, enabled):
    if not enabled:
        gc.disable()
    with pytest.raises(ValueError), collection_paused():
        assert not gc.isenabled()
        raise ValueError("the block's error passes through")
    assert gc.isenabled() == enabled
