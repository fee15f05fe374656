"""`launch train`: one training run, tracked in MLflow and TensorBoardX."""
from __future__ import annotations

import click

from launcher.config_args import cli_layers, command_line, config_options, flag_values
from launcher.guard import guarded


@click.command("train")
@config_options
@click.option("--workers", type=int, help="DDP: data-parallel workers started by Ray Train (batch size is per worker).")
@click.option("--gpus-per-worker", type=float, help="DDP: GPUs per Ray Train worker (whole numbers; default 0 = CPU).")
@click.option("--resume", metavar="RUN_ID|PATH",
              help="Continue a run from its last complete epoch (MLflow run id, run folder or checkpoint file).")
@click.option("--finetune", metavar="SOURCE",
              help="Start a NEW run from these weights (finetune.source): RUN_ID[:best|last], a run folder, "
                   "a checkpoint or a state-dict file (.pt/.pth/.pkl); matching layers load, the head is new.")
@click.option("--reproduce", metavar="RUN_ID",
              help="A new run from RUN_ID's resolved config and seed; at the end, whether its metrics match "
                   "(bit for bit on a CPU; exit 1 if not) and the first difference.")
@click.option("--threads", type=click.IntRange(min=1),
              help="torch intra-op threads (default auto: a Ray worker's CPUs, else $OMP_NUM_THREADS, else the "
                   "CPUs this process may use: its affinity capped by its cgroup CPU quota).")
@click.option("-v", "--verbose", is_flag=True,
              help="DDP: show Ray's own messages and every worker's output (else kept in OUTPUT_DIR/ray/console.log).")
@click.option("--print-config", is_flag=True, help="Print the resolved config as YAML and exit.")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar per epoch (only when stderr is a terminal).")
@guarded
def train(config_file, overrides, resume, finetune, reproduce, print_config, progress, verbose, **flags):
    """Train a model: `launch train` trains the seed's Net on the bundled digits."""
    from launcher.cluster.reachability import ClusterProbe, check_named_store

    check_named_store(flags.get("tracking_uri"))
    probe = ClusterProbe.start(None)  # $RAY_ADDRESS: a DDP job's cluster answers while the config loads
    from trainlib.config import resolve
    from trainlib.errors import ConfigError

    if resume and finetune:
        raise ConfigError("--resume continues a run, --finetune starts a new one from weights: pass one of them")
    layers = cli_layers(config_file, overrides, flag_values(flags))
    if finetune:
        layers.append({"finetune": {"source": finetune}})
    point = original = None
    if reproduce:
        from launcher.reproduction import check_alone, original_config

        check_alone(config=config_file, set=overrides, resume=resume, finetune=finetune)
        original, config = original_config(reproduce, flags.get("tracking_uri"))
        layers = [config, *layers]
    if resume:
        from trainlib import lease
        from trainlib.resume import locate, refuse_sweep_trial

        point = locate(resume, flags.get("tracking_uri"))
        refuse_sweep_trial(point, flags.get("tracking_uri") or point.config.get("tracking", {}).get("uri"))
        lease.acquire(point.run_dir, point.run_id)  # held until this process ends (a DDP job's driver too)
        layers = [point.config, *layers]
    cfg = resolve(layers)
    if print_config:
        click.echo(cfg.to_yaml(), nl=False)
        return
    from launcher.cluster import reachability
    from trainlib.distributed import launched_as_worker

    ddp = cfg.distributed.workers > 1 and not launched_as_worker()
    if original and ddp:
        raise ConfigError(f"--reproduce: run {original} is a DDP job ({cfg.distributed.workers} workers); "
                          "only single-process runs can be reproduced")
    if probe is not None and not ddp:  # one process here: the cluster plays no part
        probe.cancel()
    reachability.before_start(cfg.tracking.uri, cfg.tracking.mlflow, cfg.output.dir, cfg.output.shared,
                           probe=probe if ddp else None, what="the DDP job")

    if ddp:  # under torchrun: this process is one worker
        from launcher.cluster.ddp import train_ddp

        train_ddp(cfg, resume=resume, echo=click.echo, command=command_line(), verbose=verbose)
        return
    if original:
        reproduce_run(cfg, original, progress)
        return
    from trainlib.run import run

    run(cfg, resume=point, progress=progress, echo=click.echo, command=command_line())


def reproduce_run(cfg, original: str, progress: bool) -> None:
    import sys

    from launcher.reproduction import now_ms, report_match
    from trainlib import tags as tag
    from trainlib.run import run

    started = now_ms()
    run(cfg, progress=progress, echo=click.echo, command=command_line(), tags={tag.REPRODUCES: original})
    if not report_match(original, cfg.tracking.uri, started, click.echo):
        sys.exit(1)
