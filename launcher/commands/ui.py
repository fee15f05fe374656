"""`launch ui`: the MLflow UI on this project's store, and/or TensorBoard on the run folders."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from launcher.guard import guarded
from launcher.tracking_reads import tracking_uri_option


@click.command("ui")
@click.option("--mlflow", "tool", flag_value="mlflow", default=True, help="The MLflow UI (default).")
@click.option("--tensorboard", "tool", flag_value="tensorboard", help="TensorBoard on --logdir instead.")
@click.option("--both", "tool", flag_value="both", help="The MLflow UI and TensorBoard.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to bind; 0.0.0.0 serves your network (MLflow then allows private-network hosts).")
@click.option("--port", type=click.IntRange(0, 65535), default=0,
              help="Port (default: a free one); with --both the MLflow UI's, TensorBoard takes a free one.")
@click.option("--logdir", default="runs", show_default=True, type=click.Path(file_okay=False),
              help="TensorBoard's log root: the output dir whose run folders hold tb/ event files.")
@tracking_uri_option
@guarded
def ui(tool, host, port, logdir, tracking_uri):
    """Browse runs: the MLflow UI on this project's store (Ctrl-C stops it)."""
    from launcher import servers
    from trainlib.heap import startup_done
    from trainlib.tracking.mlflow_tracker import is_server, resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri)
    if tool in ("mlflow", "both") and is_server(uri):
        click.echo(f"MLflow UI: {uri.rstrip('/')}/  (the tracking server serves its own UI)")
        if tool == "mlflow":
            return
        tool = "tensorboard"
    planned = []
    if tool in ("mlflow", "both"):
        planned.append(mlflow_server(tracking_uri, host, port))
    if tool in ("tensorboard", "both"):
        planned.append(tensorboard_server(logdir, host, 0 if planned else port))
    try:
        for server in planned:
            click.echo(f"starting {server.name} ...", err=True)
            servers.start(server)
        servers.wait_ready(planned)
        for server in planned:
            click.echo(f"{server.name}: {server.url}")
            if server.hint:
                click.echo(f"  {server.hint}", err=True)
        click.echo("Ctrl-C stops", err=True)
        startup_done()  # watching the servers until Ctrl-C, with the collector on (trainlib.heap)
        servers.watch(planned)
    except KeyboardInterrupt:
        click.echo("stopping", err=True)
    finally:
        servers.stop_all(planned)
    servers.remove_logs(planned)  # kept when a server failed: the error names its log


def mlflow_server(tracking_uri: str | None, host: str, port: int):
    from launcher.servers import Server, bindable_port
    from launcher.tracking_reads import existing_store
    from trainlib.tracking.mlflow_tracker import artifact_root_for

    uri = existing_store(tracking_uri)
    port = bindable_port(host, port)
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri,
               "--host", host, "--port", str(port), "--workers", "1"]
    root = artifact_root_for(uri)
    if root:  # where `launch train` puts this store's artifacts, so the UI serves them
        command += ["--default-artifact-root", root]
    # The job runner serves GenAI evaluation jobs; browsing runs needs none of its ~8 processes.
    return Server("MLflow UI", command, host, port, ready_path="/health",
                  env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
                  hint="runs are under 'Model training' in the sidebar; a sweep's trials under its parent run (+)")


def tensorboard_server(logdir: str, host: str, port: int):
    from launcher.servers import Server, bindable_port
    from trainlib.errors import ConfigError

    root = Path(logdir).resolve()
    if not root.is_dir():
        raise ConfigError(f"no run folders at {root}; train a run first (launch train) or pass --logdir")
    port = bindable_port(host, port)
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(root), "--host", host, "--port", str(port)]
    return Server("TensorBoard", command, host, port)
