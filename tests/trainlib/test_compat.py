"""Each private API in trainlib/compat.py, used for real: an upgrade that moves one fails here."""
from __future__ import annotations

import time

import pytest

from trainlib import compat


def test_add_summary_writes_an_event_tensorboard_reads(tmp_path):
    from tensorboardX import SummaryWriter
    from tensorboardX.proto.summary_pb2 import Summary

    from tests.observed import read_events

    with SummaryWriter(str(tmp_path)) as writer:
        compat.add_summary(writer, Summary(value=[Summary.Value(tag="x", simple_value=1.5)]), 7)
    assert read_events(tmp_path)["simple_value"]["x"] == [7]


def test_mlflow_global_uri_is_set_inside_and_restored_after(tmp_path):
    import mlflow

    before = mlflow.get_tracking_uri()
    uri = f"sqlite:///{tmp_path / 'other.db'}"
    with compat.mlflow_global_uri(uri):
        assert mlflow.get_tracking_uri() == uri
    assert mlflow.get_tracking_uri() == before


@pytest.mark.slow
def test_tune_stop_event_is_the_trials_own(tmp_path, local_ray):
    from ray import tune

    def trainable(config):
        event = compat.tune_stop_event()
        tune.report({"is_event": int(hasattr(event, "is_set") and not event.is_set())})

    tuner = tune.Tuner(trainable, run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0))
    (result,) = tuner.fit()
    assert result.error is None and result.metrics["is_event"] == 1


@pytest.mark.slow
def test_ray_alive_node_ips_of_a_local_ray_are_the_loopback_node(local_ray):
    assert compat.ray_alive_node_ips(local_ray) == ["127.0.0.1"]


def test_a_moved_private_api_is_named_with_its_package_version():
    from importlib.metadata import version

    with pytest.raises(compat.PrivateApiMoved, match=rf"ray {version('ray')} has no ray\._private\.services\.gone"):
        compat.private("ray", "ray._private.services", "gone")


def test_ray_single_machine_mode_is_on_inside_and_restored_after():
    def cluster_mode() -> bool:
        return compat.private("ray", "ray._private.ray_constants", "ENABLE_RAY_CLUSTER")

    before = cluster_mode()
    with compat.ray_single_machine_mode():
        assert cluster_mode() is False
    assert cluster_mode() == before


def test_pin_ray_node_ip_keeps_loopback_addresses_until_undone():
    def services(name: str):
        return compat.private("ray", "ray._private.services", name)

    rays_own = services("get_node_ip_address"), services("resolve_ip_for_localhost")
    undo = compat.pin_ray_node_ip("127.0.0.1")
    try:
        assert services("get_node_ip_address")() == "127.0.0.1"
        assert services("resolve_ip_for_localhost")("127.0.0.1") == "127.0.0.1"
    finally:
        undo()
    assert (services("get_node_ip_address"), services("resolve_ip_for_localhost")) == rays_own


def test_mlflow_tracking_schemes_hold_the_stores_launch_uses():
    assert {"", "file", "sqlite", "http", "https"} <= compat.mlflow_tracking_schemes()


def test_mlflow_create_tables_migrates_an_empty_store_and_adds_no_rows(tmp_path):
    import sqlite3

    compat.mlflow_create_tables(f"sqlite:///{tmp_path / 'm.db'}")
    with sqlite3.connect(tmp_path / "m.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM experiments").fetchone() == (0,)
        assert conn.execute("SELECT COUNT(*) FROM alembic_version").fetchone() == (1,)


def test_torch_scheduler_parts_and_last_lr_are_where_torch_keeps_them():
    import torch

    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    first = torch.optim.lr_scheduler.LinearLR(optimizer, total_iters=2)
    second = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.5)
    chained = torch.optim.lr_scheduler.SequentialLR(optimizer, [first, second], milestones=[2])
    assert compat.torch_scheduler_parts(chained) == (chained, first, second)
    assert getattr(chained, compat.TORCH_LAST_LR) == chained.get_last_lr()


def test_private_apis_are_reached_only_through_compat():
    """Ray's, MLflow's and torch's private names appear in launcher/ and trainlib/ only in compat.py."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    private_names = re.compile(r"\b(_private|_raylet|_internal|_tracking_service|_tracking_store_registry|_last_lr|"
                               r"_schedulers|_get_file_writer|_use_tracking_uri)\b")
    found = [f"{path.relative_to(root)}:{number}: {line.strip()}"
             for package in ("launcher", "trainlib") for path in sorted((root / package).rglob("*.py"))
             if path.name != "compat.py"
             for number, line in enumerate(path.read_text().splitlines(), 1) if private_names.search(line)]
    assert not found, "private APIs outside trainlib/compat.py:\n" + "\n".join(found)


def test_ray_train_pieces_the_ddp_driver_builds_on_are_there():
    import importlib

    steps = compat.ray_torch_worker_steps()
    assert callable(steps.set_env_vars) and callable(steps.shutdown)
    assert compat.ray_train_torch_framework().value == "torch"
    assert callable(steps.context().__enter__)
    from ray.train.torch import TorchTrainer

    trainer = type("Trainer", (TorchTrainer,), {})
    compat.override_ray_train_sigint_hook(trainer, lambda self, controller: None)
    with pytest.raises(compat.PrivateApiMoved, match="has no TorchTrainer._register_sigint_handler"):
        compat.override_ray_train_sigint_hook(object, lambda self, controller: None)
    dispatcher = compat.ray_worker_output_dispatcher()
    assert callable(dispatcher.add_handler) and callable(dispatcher.remove_handler)
    compat.drop_ray_train_datasets_callback_without_datasets(trainer)
    with pytest.raises(compat.PrivateApiMoved, match="has no TorchTrainer._create_default_callbacks"):
        compat.drop_ray_train_datasets_callback_without_datasets(object)
    importlib.import_module(compat.RAY_TOKEN_LOGGER)  # the logger is named after its module


@pytest.mark.parametrize("datasets, kept", [({}, False), ({"train": lambda: None}, True)], ids=["none", "one"])
def test_ray_train_starts_its_dataset_manager_only_for_ray_datasets(datasets, kept):
    from ray.train.torch import TorchTrainer

    trainer = type("Trainer", (TorchTrainer,), {})
    compat.drop_ray_train_datasets_callback_without_datasets(trainer)
    callbacks = {type(c).__name__ for c in trainer(lambda config: None, datasets=datasets)._create_default_callbacks()}
    assert ("DatasetsCallback" in callbacks) == kept
    assert "BackendSetupCallback" in callbacks  # the others stay


def test_a_trainer_adjusts_what_its_controller_starts_with():
    from ray.train.torch import TorchTrainer

    seen = []
    trainer = type("Trainer", (TorchTrainer,), {"_initialize_and_run_controller": lambda self, **kw: seen.append(kw)})
    compat.adjust_ray_train_controller(trainer, lambda self, kwargs: kwargs.update(callbacks=["adjusted"]))
    trainer._initialize_and_run_controller(object(), callbacks=["default"], scaling_policy="policy")
    assert seen == [{"callbacks": ["adjusted"], "scaling_policy": "policy"}]
    with pytest.raises(compat.PrivateApiMoved, match="has no TorchTrainer._initialize_and_run_controller"):
        compat.adjust_ray_train_controller(object, lambda self, kwargs: None)


def test_ray_trains_default_callbacks_hold_the_placement_group_cleaner():
    from ray.train.torch import TorchTrainer

    callbacks = TorchTrainer(lambda config: None)._create_default_callbacks()
    assert any(isinstance(c, compat.ray_train_placement_group_cleaner()) for c in callbacks)


def test_fixed_scaling_without_autoscaler_sends_no_request_and_cancels_none():
    from ray.train import ScalingConfig

    policy_class = compat.ray_train_fixed_scaling_without_autoscaler(__name__, "Policy")
    assert (policy_class.__module__, policy_class.__qualname__) == (__name__, "Policy")
    policy = policy_class(ScalingConfig(num_workers=2))
    policy.after_controller_start(None)  # Ray's would start the coordinator actor and wait for it
    assert getattr(policy, "_coordinator_client", None) is None
    decision = policy.make_decision_for_non_running_worker_group()
    assert decision.num_workers == 2  # Ray's fixed decision, without the request Ray's would send first
    policy.before_controller_abort()  # nothing was requested, nothing to cancel


def test_ray_processes_in_own_session_start_a_session_inside_and_not_after():
    import sys

    def session_of_a_child() -> bool:
        popen = compat.private("ray", "ray._private.services", "ConsolePopen")
        child = popen([sys.executable, "-c", "import os; print(os.getsid(0) == os.getpid())"], stdout=-1, text=True)
        return child.communicate()[0].strip() == "True"

    with compat.ray_processes_in_own_session():
        assert session_of_a_child()
    assert not session_of_a_child()


@pytest.mark.parametrize("services", [["autoscaler monitor"], ["autoscaler monitor", "log monitor", "API server"]])
def test_ray_node_without_services_skips_them_inside_and_restores_them_after(services):
    node = compat.private("ray", "ray._private.node", "Node")
    methods = [*compat.RAY_NODE_SERVICES.values(), "start_raylet"]
    before = {name: getattr(node, name) for name in methods}
    with compat.ray_node_without(services):
        inside = {name: getattr(node, name) for name in methods}
        skipped = {name for name in methods if inside[name] is not before[name]}
        assert skipped == {compat.RAY_NODE_SERVICES[service] for service in services}
        assert all(inside[name](object(), include_dashboard=False) is None for name in skipped)  # no-ops
    assert {name: getattr(node, name) for name in methods} == before


def test_mlflow_requirement_check_is_skipped_inside_and_restored_after():
    from mlflow.utils import requirements_utils

    check = requirements_utils._check_requirement_satisfied
    assert check("torch==0.0.1") is not None  # a mismatch, found
    with compat.mlflow_without_requirement_check():
        assert requirements_utils._check_requirement_satisfied("torch==0.0.1") is None
    assert requirements_utils._check_requirement_satisfied is check


def test_the_gcs_key_value_store_and_actor_table_and_a_placement_group_by_id(local_ray):
    import ray
    from ray.util import placement_group, placement_group_table

    store = compat.ray_key_value("launch-test")
    store.put("a/1", "one")
    store.put("a/2", "two")
    assert store.get("a/1") == "one" and store.get("missing") is None
    assert sorted(store.keys("a/")) == ["a/1", "a/2"]
    store.delete("a/1")
    assert store.keys("a/") == ["a/2"]
    store.delete("a/", by_prefix=True)
    assert store.keys("a/") == []

    @ray.remote(num_cpus=0)
    class Idle:
        def ping(self) -> str:
            return ray.get_runtime_context().get_actor_id()

    actor = Idle.remote()
    actor_id = ray.get(actor.ping.remote())
    assert not compat.ray_actor_dead(actor_id)
    ray.kill(actor)
    deadline = time.monotonic() + 30
    while not compat.ray_actor_dead(actor_id):
        assert time.monotonic() < deadline, "the killed actor never showed dead"
        time.sleep(0.05)
    group = placement_group([{"CPU": 0.01}])
    ray.get(group.ready())
    ray.util.remove_placement_group(compat.ray_placement_group(group.id.hex()))
    assert placement_group_table(group)["state"] == "REMOVED"


def test_a_controller_callback_names_only_hooks_ray_train_has():
    callback = compat.ray_train_controller_callback(__name__, "Probe", {"after_worker_group_start": lambda *_: None})
    assert callback.__module__ == __name__ and callable(callback().after_worker_group_start)
    with pytest.raises(compat.PrivateApiMoved, match="no controller callback hook after_the_moon"):
        compat.ray_train_controller_callback(__name__, "Probe", {"after_the_moon": lambda *_: None})
    with pytest.raises(compat.PrivateApiMoved, match="keeps no placement group"):
        compat.ray_train_worker_group_placement_group(object())


def test_torch_module_hook_tables_show_a_hook_while_it_is_registered():
    from torch import nn

    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    tables = compat.torch_module_hook_tables(model)
    assert not any(tables)
    handle = model[1].register_forward_pre_hook(lambda module, inputs: None)
    assert any(tables)
    handle.remove()
    assert not any(tables)
