"""The placement groups of a sweep's DDP trials, freed by the sweep's driver instead of a Ray Train
cleaner actor per trial.

A Ray Train controller holds its workers' placement group. Stopped from outside (Tune stops the
trial: the trial's actor dies, and its controller and workers with it), it cannot remove the group,
which outlives it as long as the job, the whole sweep, does: its CPUs/GPUs held for nothing. Ray
Train starts a detached cleaner actor per job for that (an actor process of its own, ~1.6 CPU-s,
asking the dashboard's state API whether the controller lives). In a sweep the driver lives as long
as the job and can do it itself, with no process and no dashboard:

- each controller records its current group in the GCS's key-value store under the sweep's Ray job
  (`RecordsPlacementGroup`), and deletes the record when it shuts its workers down itself;
- the sweep's driver (`Sweeper`, from a Tune callback) looks at the records every second and removes
  the group of a controller the GCS says is dead.

A controller keeps Ray's own cleaner when no sweeper announced itself for its job (a sweep resumed
from a Tune state saved before this existed: its callbacks come from that state).

Ray Train's controller imports this module (the callback is pickled by reference): keep it light.
"""
from __future__ import annotations

from typing import Any

from launcher.cluster.own_instance import without_cleaner
from trainlib.compat import (ray_actor_dead, ray_key_value, ray_placement_group, ray_train_controller_callback,
                             ray_train_worker_group_placement_group)

SWEEPER = "sweeper"  # the key a sweep's driver announces itself under, in its job's records


def job_records(job_id: str) -> str:
    return f"placement-groups/{job_id}/"


def current_job_records() -> str:
    import ray

    return job_records(ray.get_runtime_context().get_job_id())


def swept_by_driver() -> bool:
    """A sweeper frees the placement groups of this job's dead controllers (asked from a trial's actor)."""
    return ray_key_value().get(current_job_records() + SWEEPER) is not None


def _start(callback: Any, *_: Any) -> None:
    import ray

    callback.key = current_job_records() + ray.get_runtime_context().get_actor_id()


def _record(callback: Any, worker_group: Any) -> None:
    ray_key_value().put(callback.key, ray_train_worker_group_placement_group(worker_group).id.hex())


def _forget(callback: Any, *_: Any) -> None:
    ray_key_value().delete(callback.key)


RecordsPlacementGroup = ray_train_controller_callback(__name__, "RecordsPlacementGroup", {
    "after_controller_start": _start, "after_worker_group_start": _record,
    "after_worker_group_shutdown": _forget, "after_worker_group_abort": _forget})


def for_sweep(controller_args: dict[str, Any]) -> None:
    """What a sweep trial's controller starts with: the record instead of Ray's cleaner, when a sweeper runs."""
    if swept_by_driver():
        without_cleaner(controller_args)
        controller_args["callbacks"].append(RecordsPlacementGroup())


class Sweeper:
    """The driver's side: announced for its Ray job, it removes the recorded groups of dead controllers."""

    def __init__(self) -> None:
        self.records = current_job_records()
        ray_key_value().put(self.records + SWEEPER, "1")

    def sweep(self) -> int:
        """Remove the groups of the controllers that died; how many."""
        from ray.util import remove_placement_group

        store, removed = ray_key_value(), 0
        for key in store.keys(self.records):
            controller = key[len(self.records):]
            if controller == SWEEPER or not ray_actor_dead(controller):
                continue
            group = store.get(key)
            if group is not None:
                remove_placement_group(ray_placement_group(group))
                removed += 1
            store.delete(key)
        return removed

    def close(self) -> None:
        ray_key_value().delete(self.records, by_prefix=True)
