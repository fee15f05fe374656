"""torch's intra-op threads follow the CPUs a run was given, and the run records the figure."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner
from mlflow import MlflowClient

from launcher.cli import main
from tests.conftest import train_args
from trainlib.threads import auto_threads, available_cpus, cgroup_quota, use_cpu_threads


@pytest.fixture(autouse=True)
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_a_plain_process_uses_the_cores_it_may_run_on_unless_told(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
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
    expected = "1" if flag else str(auto_threads())
    assert run.data.tags["launch.threads"] == expected


def test_threads_below_one_is_refused(tmp_path, store):
    result = CliRunner().invoke(main, train_args(tmp_path, store, "--threads", "0"))
    assert result.exit_code == 2 and "--threads" in result.output


THREADS_OF_A_FRESH_PROCESS = ("import sys; from trainlib.config import parse_override, resolve; "
                              "from trainlib.threads import use_cpu_threads; key, value = parse_override(sys.argv[1]); "
                              "print(use_cpu_threads(resolve([{key: value}]).threads))")


def threads_in_process(threads: str, env: dict[str, str], one_cpu: bool = False) -> int:
    """torch's threads in a fresh process started with `env` (and pinned to one CPU when asked)."""
    pin = (lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})) if one_cpu else None
    environment = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"} | env
    out = subprocess.run([sys.executable, "-c", THREADS_OF_A_FRESH_PROCESS, f"threads={threads}"], env=environment,
                         preexec_fn=pin, capture_output=True, text=True, check=True).stdout
    return int(out.split()[-1])


@pytest.mark.slow
def test_auto_honours_omp_num_threads_and_the_config_key_still_wins():
    assert threads_in_process("auto", {"OMP_NUM_THREADS": "1"}) == 1
    assert threads_in_process("null", {"OMP_NUM_THREADS": "3"}) == 3  # null: auto, as older configs say
    assert threads_in_process("2", {"OMP_NUM_THREADS": "1"}) == 2


@pytest.mark.slow
def test_auto_follows_the_cpu_affinity_the_process_was_given():
    assert threads_in_process("auto", {}, one_cpu=True) == 1
    assert threads_in_process("auto", {}) == available_cpus()


@pytest.mark.parametrize("cpu_max, quota", [("50000 100000\n", 1), ("150000 100000\n", 2), ("400000 100000\n", 4),
                                            ("max 100000\n", None), ("", None)])
def test_the_cgroup_cpu_quota_caps_the_cpus(tmp_path, cpu_max, quota):
    path = tmp_path / "cpu.max"
    path.write_text(cpu_max)
    assert cgroup_quota(path) == quota
    cpus = len(os.sched_getaffinity(0))
    assert available_cpus(path) == (min(cpus, quota) if quota else cpus)
    assert cgroup_quota(tmp_path / "absent") is None
