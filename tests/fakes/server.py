"""Run any ASGI app (a fake platform) with uvicorn on a free loopback port in a background thread.

``FakeServer`` binds ``127.0.0.1:0`` itself (so there is no race for the port), starts uvicorn in a
daemon thread with its own event loop, and waits until it accepts connections. It works as a sync
context manager, as an async one (start and stop run in a worker thread so the test's event loop is
never blocked), and through ``serve()`` in a pytest fixture::

    @pytest.fixture
    def meta_server(meta_fake: MetaFake) -> Iterator[FakeServer]:
        with serve(meta_fake.app) as server:
            yield server            # server.url == "http://127.0.0.1:<port>"

Shutdown is graceful for ``graceful_timeout`` seconds (in-flight requests, e.g. a fake in
``timeout`` mode, are then cancelled), and forced if the thread still has not ended.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Self

import uvicorn
from starlette.types import ASGIApp


class FakeServer:
    """One ASGI app served by uvicorn on a loopback port in a background thread."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout: float = 10.0,
        graceful_timeout: int = 1,
    ) -> None:
        self.host, self._port, self._startup_timeout = host, port, startup_timeout
        config = uvicorn.Config(
            app,
            loop="asyncio",
            http="h11",
            ws="none",
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=graceful_timeout,
        )
        self._server = uvicorn.Server(config)
        self._socket: socket.socket | None = None
        self._bound_port: int | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (known once started)."""
        if self._bound_port is None:
            raise RuntimeError("the server is not started")
        return self._bound_port

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:45678`` (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        """Bind, start the uvicorn thread and wait until it serves; raise if it fails to start."""
        if self._thread is not None:
            raise RuntimeError("the server was already started")
        self._socket = socket.create_server((self.host, self._port))
        self._bound_port = self._socket.getsockname()[1]
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name=f"fake-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        self._wait_started()
        return self

    def _wait_started(self) -> None:
        deadline = time.monotonic() + self._startup_timeout
        while not self._server.started:
            if self._thread is None or not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the fake server did not start")
            time.sleep(0.005)

    def stop(self) -> None:
        """Ask uvicorn to exit, wait for the thread, force the exit if it lingers; idempotent."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._server.should_exit = True
            thread.join(timeout=(self._server.config.timeout_graceful_shutdown or 0) + 5.0)
            if thread.is_alive():
                self._server.force_exit = True
                thread.join(timeout=5.0)
        if self._socket is not None:
            self._socket.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)


@contextmanager
def serve(app: ASGIApp, *, host: str = "127.0.0.1", graceful_timeout: int = 1) -> Iterator[FakeServer]:
    """Serve ``app`` on a free port for the duration of a ``with`` block (handy in pytest fixtures)."""
    with FakeServer(app, host=host, graceful_timeout=graceful_timeout) as server:
        yield server
