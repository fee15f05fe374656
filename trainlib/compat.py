"""The private APIs of torch, Ray, MLflow and tensorboardX this project relies on, one function each,
so an upgrade that moves one breaks this file (and tests/trainlib/test_compat.py) only, with a
message naming the package and its version.

Each library is imported inside its function: trainlib imports no Ray or MLflow at module level.
"""
from __future__ import annotations

import contextlib
import importlib
import threading
from importlib.metadata import version
from typing import Any, Callable, Iterable, Iterator, NamedTuple

# torch LR schedulers keep their last learning rates per param group under this attribute
TORCH_LAST_LR = "_last_lr"


class PrivateApiMoved(RuntimeError):
    """A private API this project uses is gone from the installed package."""


def private(package: str, module: str, attr: str) -> Any:
    """`module.attr`, or PrivateApiMoved naming the installed version of `package`."""
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        raise PrivateApiMoved(f"{package} {version(package)} has no {module}.{attr}: trainlib/compat.py needs "
                              f"updating for it") from None


def tune_stop_event() -> threading.Event:
    """Set when Tune stops the calling trial (a scheduler's decision); Ray has no public handle on it."""
    from ray.train._internal.session import get_session

    return get_session().stop_event


@contextlib.contextmanager
def mlflow_global_uri(uri: str) -> Iterator[None]:
    """Point MLflow's global tracking URI at `uri` for a call that takes no client (mlflow.pytorch.log_model),
    restoring it after: thread-safe, unlike mlflow.set_tracking_uri."""
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    with _use_tracking_uri(uri):
        yield


@contextlib.contextmanager
def mlflow_without_requirement_check() -> Iterator[None]:
    """Skip MLflow's check of a model's pip requirements against the installed packages while inside
    (on saving it and on loading it back to validate its input example): it maps every installed
    distribution's files to its modules first (~0.5 s), and the requirements trainlib logs are the
    installed versions themselves, so the check could only ever pass."""
    module = "mlflow.utils.requirements_utils"
    name = "_check_requirement_satisfied"
    check = private("mlflow", module, name)
    requirements = importlib.import_module(module)
    setattr(requirements, name, lambda *_: None)  # None: satisfied
    try:
        yield
    finally:
        setattr(requirements, name, check)


def finish_interpreter_work() -> None:
    """What the interpreter does at exit before it tears its modules down: tell library worker threads
    to stop and join every non-daemon thread (threading._shutdown), then run the exit handlers
    (atexit._run_exitfuncs); after this, only the teardown is left, which writes nothing."""
    import atexit
    import sys
    import threading

    for module, name in ((threading, "_shutdown"), (atexit, "_run_exitfuncs")):
        step = getattr(module, name, None)
        if not callable(step):
            raise PrivateApiMoved(f"Python {sys.version.split()[0]} has no {module.__name__}.{name}: "
                                  f"trainlib/compat.py needs updating for it")
        step()


def add_summary(writer: Any, summary: Any, step: int) -> None:
    """Write a ready-made Summary proto through a tensorboardX SummaryWriter (e.g. an image already PNG-encoded)."""
    writer._get_file_writer().add_summary(summary, step)


@contextlib.contextmanager
def ray_single_machine_mode() -> Iterator[None]:
    """Ray nodes started inside (ray.init) keep the node IP they are given, 127.0.0.1 included: Ray's
    switch for a single-machine instance (ENABLE_RAY_CLUSTER off), restored after."""
    module = "ray._private.ray_constants"
    before = private("ray", module, "ENABLE_RAY_CLUSTER")
    constants = importlib.import_module(module)
    constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        constants.ENABLE_RAY_CLUSTER = before


def pin_ray_node_ip(ip: str) -> Callable[[], None]:
    """Make this process's Ray (e.g. the `ray start` CLI) take `ip` as its node IP and keep a loopback
    address as given (on Linux Ray swaps it for the machine's address). Returns the undo."""
    module = "ray._private.services"
    originals = {name: private("ray", module, name) for name in ("resolve_ip_for_localhost", "get_node_ip_address")}
    services = importlib.import_module(module)
    services.resolve_ip_for_localhost = lambda host: host
    services.get_node_ip_address = lambda address=None: ip

    def undo() -> None:
        for name, function in originals.items():
            setattr(services, name, function)
    return undo


def ray_alive_node_ips(gcs_address: str, timeout_s: int = 10) -> list[str]:
    """The node IP of each alive node of the Ray cluster whose GCS is at `gcs_address` (asked without
    joining it: no driver, no raylet needed here)."""
    gcs_client = private("ray", "ray._raylet", "GcsClient")
    alive = private("ray", "ray.core.generated.gcs_pb2", "GcsNodeInfo").ALIVE
    nodes = gcs_client(address=gcs_address).get_all_node_info(timeout=timeout_s).values()
    return [n.node_manager_address for n in nodes if n.state == alive]


def mlflow_tracking_schemes() -> set[str]:
    """The URI schemes MLflow has a tracking store for (plugins included)."""
    return set(private("mlflow", "mlflow.tracking._tracking_service.utils", "_tracking_store_registry")._registry)


def mlflow_create_tables(sqlite_uri: str) -> None:
    """Create and migrate MLflow's tables in the SQLite database at `sqlite_uri`, as a store's first
    open does, and nothing else (no Default experiment: each store makes its own when first opened)."""
    import sqlalchemy

    initialize = private("mlflow", "mlflow.store.db.utils", "_initialize_tables")
    engine = sqlalchemy.create_engine(sqlite_uri)
    try:
        initialize(engine)
    finally:
        engine.dispose()


def torch_module_hook_tables(model: Any) -> list[dict]:
    """The forward and forward-pre hook tables of `model` and its submodules (torch mutates them in place)."""
    return [table for module in model.modules() for table in (module._forward_hooks, module._forward_pre_hooks)]


def torch_scheduler_parts(scheduler: Any) -> tuple[Any, ...]:
    """The scheduler and the schedulers it chains (SequentialLR / ChainedScheduler keep them privately)."""
    return (scheduler, *getattr(scheduler, "_schedulers", ()))


# Ray's logger of its token-authentication notes (launcher.cluster.ray_logs keeps them off the console)
RAY_TOKEN_LOGGER = "ray._private.authentication.authentication_token_setup"


def private_method(cls: type, name: str, owner: str = "TorchTrainer") -> Callable[..., Any]:
    """Ray's private method `name` of `cls` (a subclass of Ray's `owner`), or PrivateApiMoved naming Ray's version."""
    method = getattr(cls, name, None)
    if not callable(method):
        raise PrivateApiMoved(f"ray {version('ray')} has no {owner}.{name}: trainlib/compat.py needs updating for it")
    return method


def override_ray_train_sigint_hook(trainer_class: type, handler: Callable[[Any, Any], None]) -> None:
    """Make `handler(trainer, controller)` what a TorchTrainer subclass runs where Ray Train installs its
    SIGINT handler in the driver (its private `_register_sigint_handler` hook)."""
    hook = "_register_sigint_handler"
    private_method(trainer_class, hook)
    setattr(trainer_class, hook, handler)


def drop_ray_train_datasets_callback_without_datasets(trainer_class: type) -> None:
    """A TorchTrainer subclass given no Ray Datasets starts no DatasetManager actor. Ray Train's default
    callbacks (its private `_create_default_callbacks`) start one per job whatever it is given: a
    process of its own (~1.4 CPU-s here) while the workers start."""
    hook = "_create_default_callbacks"
    datasets_callback = private("ray", "ray.train.v2._internal.callbacks.datasets", "DatasetsCallback")
    defaults = private_method(trainer_class, hook)

    def without_unused_datasets_callback(trainer: Any) -> list:
        callbacks = defaults(trainer)
        return callbacks if trainer.datasets else [c for c in callbacks if not isinstance(c, datasets_callback)]

    setattr(trainer_class, hook, without_unused_datasets_callback)


class RayTorchWorkerSteps(NamedTuple):
    """Ray Train's torch pieces that run on the workers (and the driver's wrapper of their function)."""
    context: type  # wraps the workers' function (the driver passes it with the function)
    set_env_vars: Callable[[], None]  # RANK, WORLD_SIZE, LOCAL_RANK... as torchrun sets them
    shutdown: Callable[..., None]  # destroy_process_group=...: the process group destroyed, CUDA cache emptied


def ray_torch_worker_steps() -> RayTorchWorkerSteps:
    """What Ray's torch backend does on each worker, for a backend of our own (importing it imports torch)."""
    module = "ray.train.torch.config"
    return RayTorchWorkerSteps(private("ray", module, "TorchConfigContextManager"),
                               private("ray", module, "_set_torch_distributed_env_vars"),
                               private("ray", module, "_shutdown_torch"))


def ray_train_torch_framework() -> Any:
    """Ray Train's name for the torch framework (its run state records it), without importing torch."""
    return private("ray", "ray.train.v2._internal.util", "TrainingFramework").TORCH


def adjust_ray_train_controller(trainer_class: type, adjust: Callable[[Any, dict[str, Any]], None]) -> None:
    """Let `adjust(trainer, kwargs)` change what a TorchTrainer subclass starts Ray Train's controller with
    (its private `_initialize_and_run_controller(**kwargs)`: `scaling_policy`, `callbacks`, ...)."""
    hook = "_initialize_and_run_controller"
    start = private_method(trainer_class, hook)

    def adjusted_start(trainer: Any, **kwargs: Any) -> Any:
        adjust(trainer, kwargs)
        return start(trainer, **kwargs)

    setattr(trainer_class, hook, adjusted_start)


def ray_train_placement_group_cleaner() -> type:
    """The controller callback that starts Ray Train's placement-group cleaner (an actor process per job)."""
    return private("ray", "ray.train.v2._internal.callbacks.placement_group_callback",
                   "PlacementGroupCleanerCallback")


def ray_train_controller_callback(module: str, name: str, hooks: dict[str, Callable[..., Any]]) -> type:
    """A callback of Ray Train's controller (its ControllerCallback and WorkerGroupCallback hooks: `hooks`),
    as class `name` of `module`: Ray pickles it to the controller by reference."""
    callbacks = "ray.train.v2._internal.execution.callback"
    bases = (private("ray", callbacks, "ControllerCallback"), private("ray", callbacks, "WorkerGroupCallback"))
    for hook in hooks:
        if not any(callable(getattr(base, hook, None)) for base in bases):
            raise PrivateApiMoved(f"ray {version('ray')} has no controller callback hook {hook}: trainlib/compat.py "
                                  f"needs updating for it")
    return type(name, bases, {"__module__": module, "__qualname__": name, **hooks})


def ray_train_worker_group_placement_group(worker_group: Any) -> Any:
    """The placement group a started Ray Train worker group runs in."""
    try:
        return worker_group.get_worker_group_state().placement_group_handle.placement_group
    except AttributeError:
        raise PrivateApiMoved(f"ray {version('ray')} keeps no placement group in a worker group's state: "
                              f"trainlib/compat.py needs updating for it") from None


def ray_placement_group(id_hex: str) -> Any:
    """A handle on the placement group with this id (what ray.util.remove_placement_group takes)."""
    group_id = private("ray", "ray._raylet", "PlacementGroupID")
    return private("ray", "ray.util.placement_group", "PlacementGroup")(group_id(bytes.fromhex(id_hex)))


def ray_actor_dead(actor_id_hex: str) -> bool:
    """The actor is dead (or unknown) by the GCS's actor table: no dashboard or state API needed."""
    info = private("ray", "ray._private.state", "actors")(actor_id=actor_id_hex)
    return not info or info.get("State") == "DEAD"


class RayKeyValue(NamedTuple):
    """The GCS's key-value store (ray.experimental.internal_kv), in this project's namespace."""
    put: Callable[[str, str], Any]
    get: Callable[[str], str | None]
    keys: Callable[[str], list[str]]
    delete: Callable[[str], Any]  # a key, or with by_prefix=True every key under it


def ray_key_value(namespace: str = "launch") -> RayKeyValue:
    module = "ray.experimental.internal_kv"
    put, get = private("ray", module, "_internal_kv_put"), private("ray", module, "_internal_kv_get")
    keys, delete = private("ray", module, "_internal_kv_list"), private("ray", module, "_internal_kv_del")

    def read(key: str) -> str | None:
        value = get(key, namespace=namespace)
        return None if value is None else value.decode()

    return RayKeyValue(lambda key, value: put(key, value, overwrite=True, namespace=namespace), read,
                       lambda prefix: [k.decode() for k in keys(prefix, namespace=namespace)],
                       lambda key, by_prefix=False: delete(key, del_by_prefix=by_prefix, namespace=namespace))


def ray_train_fixed_scaling_without_autoscaler(module: str, name: str) -> type:
    """Ray Train's fixed scaling policy without its resource requests to the cluster autoscaler's
    coordinator (an actor process of its own, which the controller waits for before it starts the
    workers), as class `name` of `module`: Ray pickles it to the controller by reference."""
    base = private("ray", "ray.train.v2._internal.execution.scaling_policy.fixed", "FixedScalingPolicy")
    requests = ("after_controller_start", "_maybe_send_resource_request")  # the cancel skips a request never sent
    for hook in requests:
        private_method(base, hook, "FixedScalingPolicy")
    return type(name, (base,), {"__module__": module, "__qualname__": name,
                                **{hook: _no_request for hook in requests}})


def _no_request(*_: Any) -> None:
    return None


def ray_worker_output_dispatcher() -> Any:
    """The driver's dispatcher of its workers' stdout/stderr lines (handlers by name; Ray's printer: ray_print_logs)."""
    return private("ray", "ray._private.ray_logging", "global_worker_stdstream_dispatcher")


# The services of a Ray node that a job on a Ray of its own can do without: the Node method starting each
RAY_NODE_SERVICES = {"autoscaler monitor": "start_monitor", "log monitor": "start_log_monitor",
                     "API server": "start_api_server"}


@contextlib.contextmanager
def ray_node_without(services: Iterable[str]) -> Iterator[None]:
    """The Ray node ray.init starts inside starts none of `services` (keys of RAY_NODE_SERVICES)."""
    node = private("ray", "ray._private.node", "Node")
    originals = {name: private_method(node, RAY_NODE_SERVICES[name], owner="Node") for name in services}
    for name in originals:
        setattr(node, RAY_NODE_SERVICES[name], lambda self, *args, **kwargs: None)
    try:
        yield
    finally:
        for name, method in originals.items():
            setattr(node, RAY_NODE_SERVICES[name], method)


# Ray's raylet setting (read from RAY_<name> when it starts; an unknown name is ignored, not an error)
RAY_PRESTART_FOR_FIRST_DRIVER = "RAY_prestart_worker_first_driver"


@contextlib.contextmanager
def ray_without_prestarted_workers() -> Iterator[None]:
    """The raylet ray.init starts inside prestarts no idle workers for its first driver. Tune's trials and
    Ray Train's actors each carry a runtime env, so they never take those workers: each imported Ray
    (~0.4 CPU-s) and was killed idle a second or two later, while the job's own actors were starting.
    A user's own setting of the variable is kept."""
    import os

    before = os.environ.get(RAY_PRESTART_FOR_FIRST_DRIVER)
    os.environ.setdefault(RAY_PRESTART_FOR_FIRST_DRIVER, "0")
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(RAY_PRESTART_FOR_FIRST_DRIVER, None)


@contextlib.contextmanager
def ray_processes_in_own_session() -> Iterator[None]:
    """The processes ray.init starts inside (GCS, raylet, dashboard; the workers the raylet starts later)
    run in a session of their own: a terminal's Ctrl-C, sent to its foreground process group, does not
    reach them. Ray's own guard (SIGINT blocked in each child) did not hold for its dashboard."""
    module = "ray._private.services"
    popen = private("ray", module, "ConsolePopen")
    services = importlib.import_module(module)

    class OwnSession(popen):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs, start_new_session=True)

    setattr(services, "ConsolePopen", OwnSession)
    try:
        yield
    finally:
        setattr(services, "ConsolePopen", popen)
