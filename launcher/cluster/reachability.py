"""Checks before a run, a DDP job or a sweep starts anything: the tracking server answers, the
Ray cluster answers and lets us in, and every node of a cluster can reach the store and the
output location. Each failure is one line (a ConfigError), within seconds, with nothing written.

Ray is not imported here at module level: `launch --help` stays fast.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

from trainlib.errors import ConfigError
from trainlib.output_location import is_remote
from trainlib.tracking.reachable import check_tracking_server

RAY_CONNECT_TIMEOUT_S = 5.0
RAY_PROBE_TIMEOUT_S = 22.0  # from the command's start; the limit users are promised is 30 s
SNIFF_TIMEOUT_S = 3.0  # a head's gRPC server sends its HTTP/2 SETTINGS at once
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])  # + an empty SETTINGS
LOCAL_ADDRESSES = (None, "", "local")
SERVER_HINT = "--tracking-uri http://HOST:PORT (an `mlflow server` every node reaches)"
STORAGE_HINT = ("--output-dir s3://BUCKET/PATH (storage every node reaches), or --shared-storage when "
                "the paths are on a filesystem every node mounts")


def cluster_address(address: str | None) -> str | None:
    """The Ray cluster a command joins: --address, else $RAY_ADDRESS; None for a local Ray."""
    address = address or os.environ.get("RAY_ADDRESS")
    return None if address in LOCAL_ADDRESSES else address


# ---- the Ray cluster


class ClusterProbe:
    """Whether the cluster at an address answers, lets this process in (token auth) and how many
    nodes it has. Started as early as the address is known, in a child process (importing Ray
    takes seconds, and an unauthorised client makes Ray retry for minutes): the command loads its
    config meanwhile, and `wait` gives the verdict within RAY_PROBE_TIMEOUT_S of the start."""

    def __init__(self, address: str):
        self.address = address
        self.started = time.monotonic()
        self.nodes: int | None = None  # alive nodes, once `wait` has answered
        self.process: subprocess.Popen | None = None

    @classmethod
    def start(cls, address: str | None) -> "ClusterProbe | None":
        """None for a local Ray; never raises (the verdict comes from `wait`)."""
        address = cluster_address(address)
        if address is None:
            return None
        probe = cls(address)
        if probe.gcs:
            probe.process = subprocess.Popen([sys.executable, "-c", PROBE, address], stdin=subprocess.DEVNULL,
                                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return probe

    @property
    def gcs(self) -> bool:
        """A head's GCS address we can ask (not a Ray Client ray:// server, not "auto")."""
        return self.address != "auto" and not self.address.startswith("ray://")

    @property
    def on_this_machine(self) -> bool:
        """The head runs here: then only a second node makes it a cluster whose disks may differ."""
        if self.address == "auto":
            return True
        host, _ = split_address(self.address.removeprefix("ray://"), self.address)
        return is_this_machine(host)

    def wait(self) -> None:
        if self.address == "auto":
            return
        try:
            self.dial()
            if self.process is not None:
                self.nodes = self.answer()
        finally:
            self.cancel()

    def dial(self) -> None:
        host, port = split_address(self.address.removeprefix("ray://"), self.address)
        try:
            connection = socket.create_connection((host, port), timeout=RAY_CONNECT_TIMEOUT_S)
        except OSError as exc:
            raise ConfigError(f"no Ray cluster answers at {self.address} ({exc.strerror or exc}); start one "
                              f"(ray start --head --port {port}) or fix --address / $RAY_ADDRESS") from None
        with connection:
            reply = http2_reply(connection)
        if reply:  # it answered, but not as a gRPC server (Ray's GCS and client server are gRPC)
            raise ConfigError(f"the Ray cluster at {self.address} answers on its port but not as a Ray head does: "
                              f"it speaks no gRPC (it said {reply!r}); is it a Ray head (its GCS port, "
                              f"ray start --head --port {port})?")

    def answer(self) -> int:
        remaining = max(1.0, RAY_PROBE_TIMEOUT_S - (time.monotonic() - self.started))
        try:
            stdout, stderr = self.process.communicate(timeout=remaining)
        except subprocess.TimeoutExpired:
            self.process.kill()
            stdout, stderr = self.process.communicate()
        lines = stdout.strip().splitlines()
        if self.process.returncode != 0 or len(lines) < 2 or not lines[-1].isdigit():
            raise ConfigError(refusal(self.address, stderr or "", time.monotonic() - self.started))
        node_ips = lines[-2].split()
        if node_ips and not any(map(is_this_machine, node_ips)):  # a driver needs a node (a raylet) here
            raise ConfigError(f"no node of the Ray cluster at {self.address} runs on this machine (its nodes: "
                              f"{', '.join(node_ips)}): run launch on one of them (a machine where `ray start` ran)")
        return int(lines[-1])

    def cancel(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


def http2_reply(connection: socket.socket) -> str:
    """What a server that is no gRPC server said to an HTTP/2 greeting (its first bytes); "" when it
    answered with HTTP/2 SETTINGS as a gRPC server does, or stayed silent or closed (then Ray's own
    client gives the verdict). Skipped when Ray speaks TLS (RAY_USE_TLS): the greeting would be wrong."""
    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        return ""
    try:
        connection.settimeout(SNIFF_TIMEOUT_S)
        connection.sendall(HTTP2_PREFACE)
        head = connection.recv(64)
    except OSError:
        return ""
    if not head or (len(head) >= 4 and head[3] == 4):  # a frame header: 3 bytes of length, then the type
        return ""
    return (head[:24].decode("latin-1").strip().splitlines() or [repr(head[:24])])[0]


def is_this_machine(host: str) -> bool:
    try:
        address = socket.gethostbyname(host)
    except OSError:
        return False
    if address.startswith("127.") or host in ("localhost", "::1"):
        return True
    try:
        return address in socket.gethostbyname_ex(socket.gethostname())[2]
    except OSError:
        return False


def split_address(hostport: str, address: str) -> tuple[str, int]:
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"Ray address '{address}' is not HOST:PORT (e.g. 10.0.0.1:6379, or ray://HOST:10001)")
    return host.strip("[]"), int(port)


PROBE = """
import sys
from trainlib.compat import ray_alive_node_ips
ips = ray_alive_node_ips(sys.argv[1])
print(" ".join(sorted(set(ips))))
print(len(ips))
"""


TOKEN_FIX = ("set RAY_AUTH_MODE=token and the cluster's token (RAY_AUTH_TOKEN=..., or RAY_AUTH_TOKEN_PATH=FILE; "
             "`ray get-auth-token` on the head prints it)")


def refusal(address: str, stderr: str, seconds: float) -> str:
    """Why the head did not let us in: token authentication when Ray says so, else what it said."""
    text = stderr.lower()
    if "auth" in text or "token" in text:
        given = "a token it does not accept" if os.environ.get("RAY_AUTH_MODE") == "token" else "no token"
        return f"the Ray cluster at {address} uses token authentication and we came with {given}: {TOKEN_FIX}"
    last = next((line.strip() for line in reversed(stderr.splitlines()) if line.strip()), "no reply")
    return (f"the Ray cluster at {address} answers on its port but did not let us in within {seconds:.0f}s "
            f"({last[:160]}); is it a Ray head (its GCS port)? If it uses token authentication: {TOKEN_FIX}")


# ---- the resources a DDP job asks for


def local_resources() -> dict[str, float]:
    """What a local Ray started here offers: this machine's CPUs and the GPUs torch sees."""
    import torch

    return {"CPU": float(os.cpu_count() or 1), "GPU": float(torch.cuda.device_count())}


def live_nodes() -> list[dict[str, float]]:
    """The resources of each live node of the Ray instance this process joined."""
    import ray

    return [n["Resources"] for n in ray.nodes() if n.get("Alive")]


def workers_hosted(nodes: list[dict[str, float]], cpu: float, gpu: float) -> int:
    """How many workers of `cpu` CPUs and `gpu` GPUs the nodes hold, each worker on one node."""
    return sum(int(min(node.get("CPU", 0) // cpu if cpu else float("inf"),
                       node.get("GPU", 0) // gpu if gpu else float("inf"))) for node in nodes)


def check_worker_resources(workers: int, cpu: float, gpu: float, nodes: list[dict[str, float]], where: str) -> None:
    """Refuse, before anything starts, a DDP job whose workers do not all fit (Ray would wait for
    them forever, with an autoscaler message every minute)."""
    if workers_hosted(nodes, cpu, gpu) >= workers:
        return
    have = {key: sum(node.get(key, 0) for node in nodes) for key in ("GPU", "CPU")}
    asked = f"{workers * gpu:g} GPUs and " if gpu else ""
    hint = "--workers / --gpus-per-worker" if gpu else "--workers"
    raise ConfigError(f"the DDP job asks for {asked}{workers * cpu:g} CPUs ({workers} workers x "
                      f"{f'{gpu:g} GPU, ' if gpu else ''}{cpu:g} CPU) but {where} has {have['GPU']:g} GPUs and "
                      f"{have['CPU']:g} CPUs; lower {hint}, or run it on a Ray cluster that has them "
                      f"($RAY_ADDRESS)")


# ---- everything, in order


def check_named_store(tracking_uri: str | None) -> None:
    """The tracking server named by --tracking-uri / $MLFLOW_TRACKING_URI, asked before torch and
    MLflow load: a dead one is one line within seconds (`before_start` asks the config's again)."""
    from trainlib.tracking.mlflow_tracker import resolve_tracking_uri

    check_tracking_server(resolve_tracking_uri(tracking_uri))


def before_start(tracking_uri: str | None, mlflow: bool, output_dir: str, shared: bool,
                 probe: ClusterProbe | None, what: str) -> None:
    """The checks of a run about to start: the tracking server answers; the cluster (`probe`,
    started for an --address or $RAY_ADDRESS) answers and lets us in; and when its nodes may not
    share this machine's disk (a head elsewhere, or several nodes), the store and the output
    location are ones every node reaches."""
    from trainlib.tracking.mlflow_tracker import resolve_tracking_uri

    try:
        uri = resolve_tracking_uri(tracking_uri) if mlflow else ""
        local = probe is not None and probe.on_this_machine
        if probe is not None and not local:  # what the command line says first, then who answers
            check_cluster_storage(uri, output_dir, shared, f"{what} runs on the Ray cluster at {probe.address}")
        check_tracking_server(uri)
        if probe is not None:
            probe.wait()
        if local and (probe.nodes or 1) > 1:  # a head on this machine, workers maybe elsewhere
            check_cluster_storage(uri, output_dir, shared,
                                  f"{what} runs on the Ray cluster at {probe.address} ({probe.nodes} nodes)")
    finally:
        if probe is not None:
            probe.cancel()


def after_connect(tracking_uri: str | None, mlflow: bool, output_dir: str, shared: bool, what: str) -> None:
    """Once connected (Ray may have been started before us): a cluster of several nodes needs
    storage every node reaches, whatever the address was."""
    import ray

    from trainlib.tracking.mlflow_tracker import resolve_tracking_uri

    nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    if nodes > 1:
        uri = resolve_tracking_uri(tracking_uri) if mlflow else ""
        check_cluster_storage(uri, output_dir, shared, f"{what} runs on a Ray cluster of {nodes} nodes")


# ---- storage every node reaches


def check_cluster_storage(tracking_uri: str, output_dir: str, shared: bool, where: str) -> None:
    """On a cluster whose nodes may not see this machine's disk, a SQLite store or a local output
    folder would be written on whichever node a worker lands: refuse them, unless declared shared."""
    from trainlib.tracking.mlflow_tracker import sqlite_file

    if shared:
        return
    local = []
    if sqlite_file(tracking_uri):
        local.append(f"the MLflow store is the SQLite file {sqlite_file(tracking_uri)} ({SERVER_HINT})")
    if not is_remote(output_dir):
        local.append(f"the output dir {output_dir} is a local folder ({STORAGE_HINT})")
    if local:
        raise ConfigError(f"{where}, whose nodes may not see this machine's disk, but " + "; and ".join(local))
