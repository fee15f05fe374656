"""torch's intra-op threads follow the CPUs a run was given, and the run records the figure."""
from __future__ import annotations

import os

import pytest
import torch
from click.testing import CliRunner
from mlflow import MlflowClient

from launcher.cli import main
from tests.conftest import train_args
from trainlib.threads import use_cpu_threads


@pytest.fixture(autouse=True)
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_a_plain_process_uses_the_cores_it_may_run_on_unless_told():
    torch.set_num_threads(7)
    assert use_cpu_threads() == len(os.sched_getaffinity(0)) == torch.get_num_threads()
    assert use_cpu_threads(1) == 1 == torch.get_num_threads()


@pytest.mark.parametrize("flag", [[], ["--threads", "1"]], ids=["cores", "--threads 1"])
def test_a_run_records_its_thread_count_as_a_tag(tmp_path, store, flag):
    args = train_args(tmp_path, store, "--epochs", "1", "--batch-size", "256", *flag)
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    client = MlflowClient(tracking_uri=store)
    (run,) = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    expected = "1" if flag else str(len(os.sched_getaffinity(0)))
    assert run.data.tags["launch.threads"] == expected


def test_threads_below_one_is_refused(tmp_path, store):
    result = CliRunner().invoke(main, train_args(tmp_path, store, "--threads", "0"))
    assert result.exit_code == 2 and "--threads" in result.output
