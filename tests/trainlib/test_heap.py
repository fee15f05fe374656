"""trainlib.heap: a start-up without collections, its heap frozen once the work starts, the collector
left as it was found."""
from __future__ import annotations

import gc

import pytest

from trainlib.heap import collection_paused, startup, startup_done
from trainlib.observers import EpochObserver
from trainlib.run import run


def test_a_startup_is_paused_then_frozen_and_its_end_restores_the_collector(collector):
    with startup():
        assert not gc.isenabled()
        startup_done()
        assert gc.isenabled() and gc.get_freeze_count() > 0
        startup_done()  # a second time: nothing
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_an_error_in_the_startup_restores_the_collector(collector):
    with pytest.raises(ValueError), startup():
        raise ValueError("bad config")
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_a_nested_startup_leaves_it_to_the_outermost(collector):
    with startup():
        with startup():
            startup_done()
        assert gc.isenabled() and gc.get_freeze_count() > 0  # the inner block's end thawed nothing
    assert gc.get_freeze_count() == 0


def test_outside_a_startup_startup_done_does_nothing(collector):
    startup_done()
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_a_collector_paused_by_the_caller_stays_paused(collector):
    gc.disable()
    with startup():
        startup_done()
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_a_heap_frozen_by_someone_else_is_not_thawed(collector):
    gc.freeze()
    frozen = gc.get_freeze_count()
    with startup():
        startup_done()
    assert gc.get_freeze_count() > frozen // 2  # still frozen (a few may have been freed since)


@pytest.mark.parametrize("enabled", [True, False])
def test_collection_paused_pauses_the_block_and_leaves_the_collector_as_it_was(collector, enabled):
    if not enabled:
        gc.disable()
    with pytest.raises(ValueError), collection_paused():
        assert not gc.isenabled()
        raise ValueError("the block's error passes through")
    assert gc.isenabled() == enabled


def test_a_run_trains_with_the_collector_on_and_its_setup_frozen_then_thaws_it(collector, run_config):
    seen = []
    watch = EpochObserver(lambda report: seen.append((gc.isenabled(), gc.get_freeze_count())))
    run(run_config(epochs=1, batch_size=256), observers=[watch], progress=False, echo=lambda _: None)
    assert seen and seen[0][0] and seen[0][1] > 0
    assert gc.isenabled() and gc.get_freeze_count() == 0


@pytest.mark.parametrize("pause", [collection_paused, startup])
def test_what_a_pause_made_is_not_swept_all_at_once_when_it_ends(collector, pause):
    with pause():
        kept = [[] for _ in range(50_000)]
    young = gc.get_objects(generation=0) + gc.get_objects(generation=1)
    assert not any(obj is kept for obj in young)  # handed to the oldest generation, unscanned
