"""`router serve` as a pinned child process on a fresh queue, and fresh PostgreSQL databases.

Unlike tests/e2e/process.RouterProcess, the router is started under `taskset`, so every thread it
creates later (the SQLite worker, executors) runs on the same CPU; its CPU time and memory are read
from /proc. `fresh_queue()` yields a queue URL nobody used before: SQLite in a new temporary folder on
the local disk (never tmpfs, so fsync costs what it costs), or a new PostgreSQL database that is
dropped afterwards.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Self
from urllib.parse import urlsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench import machine

PG_URL = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
"""The PostgreSQL server for `--queue postgres` (trust auth); a database is created per run."""
BENCH_TMP = Path(os.environ.get("BENCH_TMP", "/var/tmp"))
"""Where SQLite queues and logs go: a real disk, so fsync is real."""


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    """A fresh folder under BENCH_TMP, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"adrouter-{prefix}-", dir=BENCH_TMP) as path:
        yield Path(path)


@contextmanager
def fresh_queue(kind: str, folder: Path) -> Iterator[str]:
    """A new, empty queue URL: `sqlite` (WAL file in `folder`) or `postgres` (a new database)."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'queue.db'}"
        return
    if kind != "postgres":
        raise ValueError(f"unknown queue kind {kind!r}")
    name = f"router_bench_{uuid.uuid4().hex[:10]}"
    base = PG_URL.rstrip("/")
    host_args = _pg_args(base)
    subprocess.run(["createdb", *host_args, name], check=True)
    try:
        yield f"{base}/{name}"
    finally:
        subprocess.run(["dropdb", "--force", *host_args, name], check=False)


def _pg_args(url: str) -> list[str]:
    parts = urlsplit(url)
    return [
        "-h",
        parts.hostname or "127.0.0.1",
        "-p",
        str(parts.port or 5432),
        "-U",
        parts.username or "postgres",
    ]


class Served:
    """An HTTP server as a child process pinned to `cpu_list`, its output in a log file; ready when
    GET /readyz answers 200."""

    def __init__(self, log: Path, cpu_list: str | None, env: dict[str, str] | None = None) -> None:
        self.log_path, self.cpu_list = log, cpu_list
        self.port = free_port()
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the running router."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The router's process id (started)."""
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 120.0) -> Self:
        """Spawn the router and wait until /readyz answers 200 (a router that starts on a backlog may
        keep its event loop busy with delivery for seconds at a time)."""
        self._log = self.log_path.open("ab")
        command = machine.pinned(
            [*self.command(), "--host", "127.0.0.1", "--port", str(self.port)], self.cpu_list
        )
        self.proc = subprocess.Popen(command, stdout=self._log, stderr=self._log, env=self.env)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.command()} exited with {self.proc.returncode}: {self.log_path.read_text()}"
                )
            try:
                if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"{self.command()} not ready: {self.log_path.read_text()[-2000:]}")

    def command(self) -> list[str]:
        """The command line, without --host and --port."""
        raise NotImplementedError

    def depth(self) -> int:
        """Deliveries waiting in the queue (pending or in flight), from /readyz."""
        answer = httpx.get(f"{self.url}/readyz", timeout=60)
        for _ in range(30):  # a router just restarted on a backlog may answer 503 for a moment
            if answer.status_code == 200:
                break
            time.sleep(1.0)
            answer = httpx.get(f"{self.url}/readyz", timeout=60)
        if answer.status_code != 200:
            raise RuntimeError(f"/readyz answered {answer.status_code} for 30 s: {answer.text}")
        depth: int = answer.json()["queue_depth"]
        return depth

    def memory(self) -> machine.Memory:
        """The router's VmRSS and VmHWM."""
        return machine.memory(self.pid)

    def cpu_seconds(self) -> float:
        """CPU seconds the router has used."""
        return machine.cpu_seconds(self.pid)

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL if it lingers; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.proc.returncode

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class Router(Served):
    """`python -m router serve --config <file>`."""

    def __init__(
        self, config: Path, log: Path, cpu_list: str | None, env: dict[str, str] | None = None
    ) -> None:
        super().__init__(log, cpu_list, env)
        self.config = config

    def command(self) -> list[str]:
        """`router serve` on the config."""
        return [sys.executable, "-m", "router", "serve", "--config", str(self.config)]

    def gc_seconds(self) -> float:
        """Seconds the router's garbage collector has run, all generations (router/collector.py,
        from /metrics); 0.0 for a router older than that metric."""
        text = httpx.get(f"{self.url}/metrics", timeout=60).text
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "router_gc_pause_seconds_total"
        )


class BareApp(Served):
    """bench/ingest/bare_app.py: the JSON-parsing baseline."""

    def command(self) -> list[str]:
        """The bare app's module."""
        return [sys.executable, "-m", "bench.ingest.bare_app"]
