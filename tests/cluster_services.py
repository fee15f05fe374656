"""Real services for the multi-node tests, all on 127.0.0.1: a Ray head and worker nodes started
with the `ray start` CLI (a worker may live in its own mount namespace, with a tmpfs over a
folder, so it cannot see the head's files), an `mlflow server`, and moto's S3 server.

Every service runs in its own process group (`ray start --block`), so stopping it reaches
exactly what it started: never `ray stop`, which would stop every Ray on the machine.
"""
from __future__ import annotations

import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
BIN = Path(sys.executable).parent
RAY_START = [sys.executable, "-m", "launcher.cluster.local_ray", "start"]  # `ray start`, nodes kept on 127.0.0.1
# On SIGTERM a `ray start --block` node first asks its GCS to drain it, for up to 30 s; stopped as a
# process group, its GCS is gone too and the head waited out the test's 20 s before its SIGKILL.
NO_DRAIN = {"RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}


LISTEN_PORTS = range(20_000, 32_000)  # below Linux's ephemeral range (32768-60999), above Ray's worker ports
_handed_out: set[int] = set()


def free_port() -> int:
    """A port nobody listens on, that no outgoing connection can take meanwhile (those get ports
    from the ephemeral range: one took a Ray head's client-server port between pick and bind)."""
    for port in random.sample(LISTEN_PORTS, 500):
        if port not in _handed_out and port_free(port):
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no free port in {LISTEN_PORTS}")


def free_port_range(size: int = 40) -> tuple[int, int]:
    """A run of ports nobody listens on now, for a node's workers (Ray's default range is shared)."""
    for _ in range(200):
        start = random.randrange(LISTEN_PORTS.start, LISTEN_PORTS.stop - size)
        ports = range(start, start + size)
        if not _handed_out.intersection(ports) and all(port_free(p) for p in ports):
            _handed_out.update(ports)
            return start, start + size - 1
    raise RuntimeError("no free port range")


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
            return True
        except OSError:
            return False


@dataclass
class Service:
    name: str
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout=20)
                time.sleep(0.5)  # the group's other processes follow their leader
            except subprocess.TimeoutExpired:
                continue
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


def start(name: str, command: list[str] | str, log: Path, env: dict[str, str] | None = None) -> Service:
    log.parent.mkdir(parents=True, exist_ok=True)
    shell = isinstance(command, str)
    with open(log, "wb") as out:
        process = subprocess.Popen(command, shell=shell, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})},
                                   start_new_session=True)
    return Service(name, process, log)


def wait_http(service: Service, url: str, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(f"{service.name} exited: {service.tail()}")
        try:
            with urllib.request.urlopen(url, timeout=3):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{service.name} did not answer at {url}: {service.tail()}")


def short_dir() -> Path:
    """A Ray temp dir short enough for its sockets' paths (at most 107 bytes)."""
    return Path(tempfile.mkdtemp(prefix="lr-", dir="/tmp"))


@dataclass
class RayCluster:
    """A head (and workers) from `ray start`; `address` is the head's GCS address. Logs go to
    `root`; the nodes' Ray temp dirs to a short folder of their own."""

    root: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    temp: Path = field(default_factory=short_dir)
    services: list[Service] = field(default_factory=list)
    node_manager_ports: dict[str, int] = field(default_factory=dict)  # label -> port: tells the nodes apart

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def node_args(self, label: str, temp_dir: Path, num_cpus: int) -> list[str]:
        low, high = free_port_range()
        self.node_manager_ports[label] = free_port()
        ports = {"--node-manager-port": self.node_manager_ports[label], "--object-manager-port": free_port(),
                 "--metrics-export-port": free_port(), "--dashboard-agent-listen-port": free_port(),
                 "--dashboard-agent-grpc-port": free_port(), "--runtime-env-agent-port": free_port()}
        args = ["--node-ip-address", HOST, "--temp-dir", str(temp_dir), "--num-cpus", str(num_cpus),
                "--num-gpus", "0", "--min-worker-port", str(low), "--max-worker-port", str(high),
                "--object-store-memory", str(200 * 2**20), "--disable-usage-stats", "--block"]
        for flag, port in ports.items():
            args += [flag, str(port)]
        return args

    def start_head(self, num_cpus: int = 1) -> None:
        args = ["--head", "--port", str(self.port), "--ray-client-server-port", str(free_port()),
                "--dashboard-host", HOST, "--dashboard-port", str(free_port()),
                *self.node_args("head", self.temp / "head", num_cpus)]
        self.services.append(start("ray head", [*RAY_START, *args], self.root / "head.log", {**self.env, **NO_DRAIN}))

    def start_worker(self, num_cpus: int = 1, isolate: Path | None = None, label: str = "worker",
                     env: dict[str, str] | None = None) -> None:
        """A worker node; with `isolate`, in its own mount namespace with an empty tmpfs over that
        folder and another over its Ray temp dir: it sees none of the head's files there."""
        temp = self.temp / label
        temp.mkdir(parents=True)
        ray_cmd = [*RAY_START, "--address", self.address, *self.node_args(label, temp, num_cpus)]
        if isolate is None:
            command: list[str] | str = ray_cmd
        else:
            mounts = " && ".join(f"mount -t tmpfs -o size=512m tmpfs {shlex.quote(str(p))}" for p in (isolate, temp))
            inner = f"{mounts} && cd {shlex.quote(str(isolate))} && exec {shlex.join(ray_cmd)}"
            command = f"exec unshare --mount --propagation private sh -c {shlex.quote(inner)}"
        self.services.append(start(f"ray {label}", command, self.root / f"{label}.log",
                                   {**self.env, **NO_DRAIN, **(env or {})}))

    def wait_nodes(self, count: int, timeout_s: float = 240) -> None:
        """Until `count` nodes are alive (asked in a subprocess: this process stays out of Ray)."""
        probe = ("import ray, sys; from launcher.cluster.local_ray import join_ray; "
                 "join_ray(sys.argv[1], logging_level='ERROR'); print(sum(n['Alive'] for n in ray.nodes()))")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for service in self.services:
                if service.process.poll() is not None:
                    raise RuntimeError(f"{service.name} exited: {service.tail()}")
            try:
                out = subprocess.run([sys.executable, "-c", probe, self.address], capture_output=True, text=True,
                                     env={**os.environ, **self.env}, timeout=120)
            except subprocess.TimeoutExpired:
                continue
            if out.returncode == 0 and out.stdout.strip().splitlines()[-1:] == [str(count)]:
                return
            time.sleep(2)
        raise RuntimeError(f"{count} Ray nodes not alive: " + " | ".join(s.tail() for s in self.services))

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()
        shutil.rmtree(self.temp, ignore_errors=True)


def mlflow_server(root: Path, artifacts: str, env: dict[str, str] | None = None,
                  port: int | None = None) -> tuple[Service, str]:
    """An `mlflow server` on `root`'s store; `port`: the one of a server started here before (a restart)."""
    port = port or free_port()
    command = [str(BIN / "mlflow"), "server", "--host", HOST, "--port", str(port), "--workers", "1",
               "--backend-store-uri", f"sqlite:///{root / 'server.db'}", "--artifacts-destination", artifacts]
    service = start("mlflow server", command, root / "mlflow-server.log",
                    {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **(env or {})})
    url = f"http://{HOST}:{port}"
    wait_http(service, url + "/health")
    return service, url


S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def s3_server(root: Path) -> tuple[Service, dict[str, str]]:
    """moto's standalone S3 server; returns it and the environment that points boto3, pyarrow and
    MLflow at it (AWS_ENDPOINT_URL, MLFLOW_S3_ENDPOINT_URL, test credentials)."""
    port = free_port()
    service = start("moto S3", [str(BIN / "moto_server"), "-H", HOST, "-p", str(port)], root / "moto.log")
    url = f"http://{HOST}:{port}"
    wait_http(service, url + "/moto-api/")
    return service, {**S3_ENV, "AWS_ENDPOINT_URL": url, "AWS_ENDPOINT_URL_S3": url, "MLFLOW_S3_ENDPOINT_URL": url}


def make_bucket(env: dict[str, str], bucket: str) -> None:
    import boto3

    boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                 aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                 region_name=env["AWS_DEFAULT_REGION"]).create_bucket(Bucket=bucket)


ROOT = str(Path(__file__).resolve().parents[1])


def launch(*args: str, cwd: Path, env: dict[str, str | None] | None = None,
           timeout: float = 120) -> tuple[subprocess.CompletedProcess, float]:
    """`python -m launcher ARGS` in a fresh process, as a user runs it; (result, seconds).
    `env` adds to this environment; a None value removes the variable."""
    start = time.monotonic()
    full_env = {**os.environ, "PYTHONPATH": ROOT, **(env or {})}
    out = subprocess.run([sys.executable, "-m", "launcher", *args], cwd=cwd, capture_output=True, text=True,
                         timeout=timeout, env={k: v for k, v in full_env.items() if v is not None})
    return out, time.monotonic() - start


def one_error(out: subprocess.CompletedProcess) -> str:
    """The one `error:` line of a refused command (exit 2, nothing else on stderr)."""
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2, out.stdout + out.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    return lines[0]
