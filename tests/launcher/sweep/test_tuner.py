"""launcher.sweep.tuner without Ray: Tune's default loggers switched off for a new sweep's fit alone."""
from __future__ import annotations

import contextlib
import os

import pytest

from launcher.sweep.tuner import NO_DEFAULT_LOGGERS_ENV, no_default_loggers


@pytest.mark.parametrize("fails", [False, True], ids=["fit returns", "fit raises"])
def test_a_new_sweeps_fit_alone_runs_without_tunes_default_loggers(monkeypatch, fails):
    monkeypatch.delenv(NO_DEFAULT_LOGGERS_ENV, raising=False)
    with pytest.raises(KeyboardInterrupt) if fails else contextlib.nullcontext():
        with no_default_loggers(True):
            assert os.environ[NO_DEFAULT_LOGGERS_ENV] == "1"
            if fails:
                raise KeyboardInterrupt
    assert NO_DEFAULT_LOGGERS_ENV not in os.environ  # a Tuner fitted later in this process gets them


@pytest.mark.parametrize("active, user_value", [(False, None), (True, "0"), (False, "1")],
                         ids=["resumed sweep", "user wants them", "user set it"])
def test_a_resumed_sweep_or_the_users_own_setting_is_left_alone(monkeypatch, active, user_value):
    monkeypatch.delenv(NO_DEFAULT_LOGGERS_ENV, raising=False)
    if user_value is not None:
        monkeypatch.setenv(NO_DEFAULT_LOGGERS_ENV, user_value)
    with no_default_loggers(active):
        assert os.environ.get(NO_DEFAULT_LOGGERS_ENV) == user_value
    assert os.environ.get(NO_DEFAULT_LOGGERS_ENV) == user_value

