"""Run web servers (MLflow UI, TensorBoard) as child process groups: start, wait, stop.

Each server runs in its own session so that stopping it reaches every process it forked
(uvicorn workers, ...) and no orphan outlives `launch ui`; under launcher.server_guard, which
ends that session when `launch ui` dies without stopping it (kill -9).
"""
from __future__ import annotations

import errno
import functools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from trainlib.errors import UserError

READY_TIMEOUT_S = 180.0  # MLflow's server imports a lot; on a busy small machine that takes a while
STOP_TIMEOUT_S = 10.0
POLL_S = 0.5


@dataclass
class Server:
    name: str
    command: list[str]
    host: str
    port: int
    ready_path: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    hint: str = ""  # shown with the URL
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    @property
    def log_path(self) -> Path:
        slug = self.name.lower().replace(" ", "-")
        return log_dir() / f"{slug}-{self.port}.log"


class ServerError(UserError):
    """A server would not start (port taken, bad store...): reported as one line, exit 2."""


@functools.lru_cache(maxsize=1)
def log_dir() -> Path:
    """This process's private folder for server logs (mode 0700, an unpredictable name): a
    planted file or symlink in the shared temp folder is never written through."""
    return Path(tempfile.mkdtemp(prefix="launch-ui-"))


def bindable_port(host: str, port: int) -> int:
    """`port` (0: a free one) if a server can listen on host:port now; else one line saying why."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except (socket.gaierror, UnicodeError) as exc:
        raise ServerError(f"--host {host!r} is not a usable address ({exc}); use 127.0.0.1, ::1 or 0.0.0.0") from None
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ServerError(f"port {port} on {host} is in use (by another server); "
                                  f"pick another --port, or omit it for a free one") from None
            raise ServerError(f"cannot listen on --host {host} --port {port}: {exc.strerror}") from None
        return sock.getsockname()[1]


def start(server: Server) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    with open(os.open(server.log_path, flags, 0o600), "wb") as log:
        guarded = [sys.executable, "-m", "launcher.server_guard", str(os.getpid()), "--", *server.command]
        server.process = subprocess.Popen(guarded, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, env={**os.environ, **server.env},
                                          start_new_session=True)


def wait_ready(servers: list[Server], timeout_s: float = READY_TIMEOUT_S) -> None:
    """Until each server answers its ready path with HTTP 200; a server that exits first is an error."""
    deadline = time.monotonic() + timeout_s
    pending = list(servers)
    while pending:
        for server in list(pending):
            check_alive(server)
            if answers(server):
                pending.remove(server)
        if pending and time.monotonic() > deadline:
            raise ServerError(f"{pending[0].name} did not answer at {pending[0].url} within {timeout_s:.0f}s; "
                              f"log: {pending[0].log_path}")
        if pending:
            time.sleep(POLL_S)


def answers(server: Server) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(server.url.rstrip("/") + server.ready_path, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def check_alive(server: Server) -> None:
    code = server.process.poll()
    if code is not None:
        raise ServerError(f"{server.name} exited with code {code}: {last_log_line(server)} "
                          f"(log: {server.log_path})")


def last_log_line(server: Server) -> str:
    text = server.log_path.read_text(errors="replace") if server.log_path.exists() else ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def watch(servers: list[Server]) -> None:
    """Block until interrupted; raise if a server exits meanwhile."""
    while True:
        for server in servers:
            check_alive(server)
        time.sleep(POLL_S)


def stop_all(servers: list[Server]) -> None:
    """SIGTERM each server's process group; SIGKILL what is left of them after a grace period."""
    running = [s.process for s in servers if s.process is not None]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for proc in running:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + STOP_TIMEOUT_S
        running = [proc for proc in running if not group_gone(proc, deadline)]
        if not running:
            return


def remove_logs(servers: list[Server]) -> None:
    for server in servers:
        server.log_path.unlink(missing_ok=True)
    if not any(log_dir().iterdir()):
        log_dir().rmdir()
        log_dir.cache_clear()  # a later server gets a new private folder


def group_gone(proc: subprocess.Popen, deadline: float) -> bool:
    while True:
        proc.poll()  # reap the group leader, else its zombie keeps the group alive
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
