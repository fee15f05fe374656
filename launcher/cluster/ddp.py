"""DDP on Ray Train: a TorchTrainer whose N workers each run `trainlib.run`.

`launch train --workers N` calls `train_ddp`; a Tune trial calls `make_trainer(...).fit()`
(pass a `TuneReportCallback` in its `run_config` to forward each epoch's report to Tune).
Ray and trainlib are imported inside functions so `launch --help` stays fast.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from trainlib import tags as tag
from trainlib.heap import startup, startup_done

CONSOLE_LOG = "console.log"  # under `output.dir`/ray: Ray's output a DDP driver keeps off the console
# Ray Train's controller polls its workers every 2 s by default, and a worker's report of an epoch
# waits for that poll: a small model's epoch took 2 s whatever its size. The driver's value of this
# variable is passed on to the controller; a value the user set is kept.
CONTROLLER_POLL_ENV = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"
CONTROLLER_POLL_S = "0.2"
# Ray Train starts a preemption watcher (an actor process polling Ray for nodes being drained) per job.
# When every node is this machine, nothing drains a node the job could outlive; a value the user set is kept.
PREEMPTION_WATCHER_ENV = "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER"


def make_trainer(config, *, workers: int | None = None, gpus_per_worker: float | None = None,
                 cpus_per_worker: float = 1, resume: str | None = None, run_config=None,
                 tags: dict[str, str] | None = None, observers: Sequence[Any] = (),
                 fail_on_nonfinite: bool = False, command: str | None = None, own_instance: bool = False):
    """A Ray Train TorchTrainer running `config` (a TrainConfig or a train-config dict).

    workers / gpus_per_worker: override `distributed.workers` / `.gpus_per_worker` (the run
    records what it ran with); DDP workers never share a GPU (fractional GPUs: ConfigError).
    resume: an MLflow run id, run folder or checkpoint file; every rank loads it and rank 0
    continues the same MLflow run. When Ray Train restores its own run (same `run_config`
    name and storage), the state comes from the last checkpoint it was reported instead.
    run_config: a ray.train.RunConfig; default: Ray's files under `output.dir`/ray, one
    checkpoint kept. Every epoch each worker calls ray.train.report(metrics + epoch + run_id),
    rank 0 with its checkpoint folder; the last epoch comes with the test metrics.
    tags, observers: as `trainlib.run` takes them (trainlib Observers; they run on every rank).
    fail_on_nonfinite: a NaN/Inf train loss fails the job (a sweep trial's rule).
    own_instance: the Ray instance lives and dies with this job (launcher.cluster.own_instance).
    Ctrl-C / SIGTERM of a driver running `fit` in its main thread abort the job and raise
    KeyboardInterrupt; on one machine every socket of the job listens on 127.0.0.1 (ddp_trainer).
    """
    from ray.train import ScalingConfig
    from ray.train.torch import TorchConfig

    from launcher.cluster.ddp_trainer import InterruptibleTrainer, single_machine
    from launcher.cluster.loopback_backend import LoopbackTorchConfig
    from trainlib.distributed import resolve_backend

    cfg = ddp_config(config, workers, gpus_per_worker)
    gpus = cfg.distributed.gpus_per_worker
    resources = {"CPU": cpus_per_worker, "GPU": gpus} if gpus else {"CPU": cpus_per_worker}
    loop_config = {"config": cfg.to_dict(), "resume": absolute_source(resume), "command": command,
                   "tags": dict(tags or {}), "observers": list(observers), "fail_on_nonfinite": fail_on_nonfinite}
    backend = resolve_backend(cfg.distributed.backend, "cuda" if gpus else "cpu")  # refused before Ray is asked
    on_one_machine = single_machine()
    torch_config = LoopbackTorchConfig if on_one_machine else TorchConfig
    os.environ.setdefault(CONTROLLER_POLL_ENV, CONTROLLER_POLL_S)
    if on_one_machine:
        os.environ.setdefault(PREEMPTION_WATCHER_ENV, "0")
    trainer = InterruptibleTrainer(
        ddp_train_loop,
        train_loop_config=loop_config,
        torch_config=torch_config(backend=backend),
        scaling_config=ScalingConfig(num_workers=cfg.distributed.workers, use_gpu=gpus > 0,
                                     resources_per_worker=resources),
        run_config=run_config or default_run_config(cfg),
    )
    trainer.own_instance = own_instance
    return trainer


def ddp_config(config, workers: int | None, gpus_per_worker: float | None):
    """The validated config the workers run, with paths made absolute: a Ray Train worker
    runs in its own working directory, maybe on another machine."""
    from trainlib.config import TrainConfig, resolve
    from trainlib.diskspace import check_writable
    from trainlib.output_location import is_remote
    from trainlib.tracking.mlflow_tracker import resolve_tracking_uri

    given = {"workers": workers, "gpus_per_worker": gpus_per_worker}
    base = config.to_dict() if isinstance(config, TrainConfig) else config
    cfg = resolve([base, {"distributed": {k: v for k, v in given.items() if v is not None}}])
    check_placement(cfg)
    output = cfg.output.dir
    if not is_remote(output):
        check_writable(Path(output))
        output = str(Path(output).resolve())
    return resolve([cfg.to_dict(), {"output": {"dir": output},
                                    "tracking": {"uri": resolve_tracking_uri(cfg.tracking.uri)}}])


def check_placement(cfg) -> None:
    """Ray Train places each worker on its GPU(s) when it has some, else on CPU."""
    from trainlib.distributed import check_sync_batchnorm
    from trainlib.errors import ConfigError

    gpus = cfg.distributed.gpus_per_worker
    placed = "cuda" if gpus > 0 else "cpu"
    if cfg.device not in ("auto", placed):
        raise ConfigError(f"device '{cfg.device}' does not fit distributed.gpus_per_worker={gpus:g}: "
                          f"Ray Train runs these workers on {placed}; use --device auto"
                          + ("" if gpus else " or give them GPUs with --gpus-per-worker 1"))
    check_sync_batchnorm(cfg.distributed.sync_batchnorm, placed)


def absolute_source(resume: str | None) -> str | None:
    """A resume path relative to here, made absolute; run ids pass through."""
    if resume is not None and Path(resume).exists():
        return str(Path(resume).resolve())
    return resume


def default_run_config(cfg):
    from ray.train import CheckpointConfig, LoggingConfig, RunConfig

    from trainlib.output_location import child

    return RunConfig(storage_path=child(cfg.output.dir, "ray"), checkpoint_config=CheckpointConfig(num_to_keep=1),
                     logging_config=LoggingConfig(log_level="WARNING"))


def report_to_train(metrics: dict[str, Any], checkpoint_dir: Path) -> None:
    """ray.train.report on every rank; rank 0 attaches last.pt (what a restored job continues from)."""
    import ray.train

    if ray.train.get_context().get_world_rank() != 0:
        ray.train.report(metrics, checkpoint=None)
        return
    with last_only(checkpoint_dir) as folder:
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder))


def locate_resume(source: str | None, tracking_uri: str):
    """The run `source` names, continued from Ray Train's restored checkpoint when there is one
    (a retried sweep trial: the run folder may hold a later, failed epoch)."""
    import ray.train

    from trainlib.checkpoint import LAST, load_safely
    from trainlib.resume import ResumePoint, locate

    point = locate(source, tracking_uri) if source else None
    restored = ray.train.get_checkpoint()
    if point is None or restored is None:
        return point
    with restored.as_directory() as folder:
        return ResumePoint(load_safely(Path(folder) / LAST), point.run_id, point.run_dir)


def placement_tags() -> dict[str, str]:
    """`launch.placement`: each rank's node id, node IP, hostname and GPU ids (gathered to rank 0,
    which tags the run): two nodes on one host differ by node id."""
    import json
    import socket

    import ray
    import torch.distributed as dist

    mine = {"rank": dist.get_rank(), "node_id": ray.get_runtime_context().get_node_id(),
            "node_ip": ray.util.get_node_ip_address(), "hostname": socket.gethostname(),
            "gpu_ids": [str(g) for g in ray.get_gpu_ids()]}
    everyone: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, mine)
    return {tag.PLACEMENT: json.dumps(everyone)}


@startup()  # until the run's training starts: see trainlib.heap
def ddp_train_loop(loop_config: dict[str, Any]) -> dict[str, Any]:
    """One Ray Train worker: `trainlib.run` on the device Ray gave it (its process group is
    already up), reporting every epoch. Rank 0's return value reaches `Result.return_value`."""
    import click
    import ray.train.torch

    from launcher.cluster.epoch_relay import EpochRelay
    from launcher.cluster.ray_logs import quiet_train_console
    from trainlib.run import run

    quiet_train_console()
    config = {**loop_config["config"], "device": str(ray.train.torch.get_device())}
    point = locate_resume(loop_config.get("resume"), config["tracking"]["uri"])
    relay = EpochRelay(config["epochs"], report_to_train, loop_config.get("fail_on_nonfinite", False))
    tags = {**loop_config.get("tags", {}), **placement_tags()}
    # click.echo, not print: Ray Train's patched print would show every line twice; the driver prints the summary
    metrics = run(config, resume=point, observers=[*loop_config.get("observers", ()), relay], progress=False,
                  echo=click.echo, tags=tags, command=loop_config.get("command"), summary=False)
    relay.finish(metrics)
    last = relay.last
    run_id, run_dir = (last.run_id, last.checkpoint_dir.parent) if last else (point.run_id, point.run_dir)
    uri = config["tracking"]["uri"] if config["tracking"]["mlflow"] else None
    return {"metrics": metrics, "run_id": run_id, "run_dir": str(run_dir), "tracking_uri": uri}


def train_ddp(cfg, *, resume: str | None = None, echo: Callable[[str], None] = print,
              command: str | None = None, verbose: bool = False) -> dict[str, float]:
    """`launch train --workers N`: fit on Ray Train, then print the run's summary here. Ctrl-C /
    SIGTERM end it as a single run's: the run KILLED (checkpoints logged), KeyboardInterrupt raised;
    a failed rank: the run FAILED and JobFailed naming the rank and its error. The console shows
    rank 0's lines; Ray's own output goes to `output.dir`/ray/console.log (`verbose`: the console)."""
    import signal

    import ray
    from ray.train import WorkerGroupError

    from launcher.guard import raise_interrupt
    from launcher.cluster.job_failure import job_error, new_job_id, runs_end_failed
    from launcher.cluster.local_ray import ensure_ray
    from launcher.cluster.ray_logs import workers_console
    from trainlib.output_location import is_remote
    from trainlib.tracking import NullTracker
    from trainlib.tracking.mlflow_tracker import resolve_tracking_uri
    from trainlib.tracking.open import RunHandle

    check_resources(cfg, started=False)
    log_file = None if is_remote(cfg.output.dir) else Path(cfg.output.dir) / "ray" / CONSOLE_LOG
    own_instance = ensure_ray(verbose, log_file)
    workers_console(verbose, log_file)
    signal.signal(signal.SIGTERM, raise_interrupt)  # ray.init put its own (sys.exit; and a C++ stack dump)
    check_resources(cfg, started=True)
    job = new_job_id()
    uri = resolve_tracking_uri(cfg.tracking.uri) if cfg.tracking.mlflow else None
    startup_done()  # this process now waits on the job for as long as it trains (trainlib.heap)
    try:
        with runs_end_failed(uri, job):
            result = make_trainer(cfg, resume=resume, command=command, tags={tag.JOB_ID: job},
                                  own_instance=own_instance).fit()
        out = result.return_value
        for line in RunHandle(NullTracker(), out["run_id"], Path(out["run_dir"]), out["tracking_uri"]).summary():
            echo(line)
        return out["metrics"]
    except WorkerGroupError as exc:
        raise job_error(exc) from None
    finally:
        if own_instance:  # now: at exit, Ray's own hook first sleeps 0.5 s "to print extra error messages"
            ray.shutdown()


def check_resources(cfg, started: bool, cpus_per_worker: float = 1) -> None:
    """The job's workers fit: a local Ray's machine checked before Ray starts (`started` False),
    a cluster's live nodes once joined (`started` True)."""
    from launcher.cluster.reachability import check_worker_resources, cluster_address, live_nodes, local_resources

    address = cluster_address(None)
    if started != (address is not None):
        return
    nodes, where = ([local_resources()], "this machine") if address is None else (live_nodes(), f"the Ray cluster at {address}")
    check_worker_resources(cfg.distributed.workers, cpus_per_worker, cfg.distributed.gpus_per_worker, nodes, where)


@contextlib.contextmanager
def last_only(checkpoint_dir: Path) -> Iterator[str]:
    """What a run hands to Tune or Ray Train each epoch: a folder holding only last.pt, the state a
    retried or resumed trial restores (best.pt is kept by the run itself and its MLflow artifacts),
    hard-linked from the run folder so nothing is copied on this node."""
    from trainlib.checkpoint import LAST

    with tempfile.TemporaryDirectory(dir=checkpoint_dir.parent, prefix=".report-") as folder:
        try:
            os.link(checkpoint_dir / LAST, Path(folder) / LAST)
        except OSError:  # another filesystem: copy
            shutil.copy2(checkpoint_dir / LAST, Path(folder) / LAST)
        yield folder
