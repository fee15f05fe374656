"""`launch train --reproduce RUN_ID`: a new run from RUN_ID's resolved config (its config.yaml artifact,
seed included), tagged with the run it reproduces, then its metrics compared with the original's."""
from __future__ import annotations

import time
from typing import Any, Callable

from trainlib import tags as tag


def original_config(ref: str, tracking_uri: str | None) -> tuple[str, dict[str, Any]]:
    """The run's full id and its resolved config, writing into the store it was found in, with the torch
    threads it used where its config left them to the machine."""
    from launcher.tracking_reads import existing_store, find_run, open_client
    from trainlib.diagnose.doctor import run_config

    uri = existing_store(tracking_uri)
    run = find_run(open_client(uri), ref)
    config = run_config(open_client(uri), run.info.run_id).to_dict()
    config["tracking"]["uri"] = uri
    if config.get("threads") in (None, "auto") and run.data.tags.get(tag.THREADS, "").isdigit():
        config["threads"] = int(run.data.tags[tag.THREADS])  # CPU sums depend on it: a sweep trial ran on 1
    return run.info.run_id, config


def check_alone(**given: Any) -> None:
    """--reproduce takes the config from the run: nothing may change it."""
    from trainlib.errors import ConfigError

    clashing = [f"--{name.replace('_', '-')}" for name, value in given.items() if value]
    if clashing:
        raise ConfigError(f"--reproduce re-runs the run's own config; drop {', '.join(clashing)}")


def report_match(original_id: str, tracking_uri: str, started_ms: int, echo: Callable[[str], None]) -> bool:
    """Compare the newest run reproducing `original_id` (started after `started_ms`) with it; print the result."""
    from launcher.tracking_reads import open_client
    from trainlib.reproduce import compare_runs, tolerance_for

    client = open_client(tracking_uri)
    original = client.get_run(original_id)
    (new,) = client.search_runs([original.info.experiment_id], max_results=1, order_by=["attributes.start_time DESC"],
                                filter_string=f"tags.`{tag.REPRODUCES}` = '{original_id}' and "
                                              f"attributes.start_time >= {started_ms}")
    comparison = compare_runs(client, original_id, new.info.run_id, tolerance_for(new.data.tags.get(tag.DEVICE, "")))
    for line in comparison.lines():
        echo(line)
    return comparison.matched


def now_ms() -> int:
    return int(time.time() * 1000)
