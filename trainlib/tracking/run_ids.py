"""A run named by its full MLflow id or by a unique prefix (`launch runs` prints 8 characters)."""
from __future__ import annotations

import re

from trainlib.errors import ConfigError

MIN_PREFIX = 4
RUN_ID_LENGTH = 32
SHOWN = 5  # matches listed when a prefix is ambiguous


def looks_like_run_id(ref: str) -> bool:
    return bool(re.fullmatch(r"[0-9a-f]+", ref)) and MIN_PREFIX <= len(ref) <= RUN_ID_LENGTH


def find_run(client, ref: str):
    """The one run whose id is `ref` or starts with it, in any experiment of the store."""
    if not re.fullmatch(r"[0-9a-f]+", ref):
        raise ConfigError(f"unknown run '{ref}': run ids are hexadecimal; list runs with: launch runs")
    if len(ref) < MIN_PREFIX:
        raise ConfigError(f"run id '{ref}' is too short; give at least {MIN_PREFIX} characters")
    experiments = [e.experiment_id for e in client.search_experiments()]
    matches = client.search_runs(experiments, filter_string=f"attributes.run_id LIKE '{ref}%'",
                                 max_results=SHOWN + 1) if experiments else []
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ConfigError(f"unknown run '{ref}' in {client.tracking_uri}; list runs with: launch runs")
    listed = ", ".join(f"{r.info.run_id} ({r.info.run_name}, {r.info.status})" for r in matches[:SHOWN])
    more = " and more" if len(matches) > SHOWN else ""
    raise ConfigError(f"run id '{ref}' is ambiguous: {listed}{more}; give more characters")
