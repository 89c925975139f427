"""The machinery every loopback fake shares: fault modes, a locked ledger, Retry-After checks, admin.

A platform fake (meta.py, tiktok.py, ...) holds that platform's contract, records and answers, and
subclasses `Fake` for the rest:

- the ledger (`Ledger`): accepted events, requests seen, protocol violations, the fault mode and the
  Retry-After last given per key (a pixel, an ad account, an API), all under one condition lock;
- fault modes: ``set_mode`` or ``POST /_admin/mode``, used up one request at a time (``Fault.used``);
- Retry-After tracking: a request for a key before the Retry-After it was given has expired is a
  ``retry_after`` violation, in the platform's own `Violation` record;
- admin endpoints: ``/_admin/mode``, ``/_admin/received``, ``/_admin/requests``,
  ``/_admin/violations`` and ``/_admin/clear``;
- `ConnectionReset`, the answer of the ``reset`` fault mode.

The reset is a raw-ASGI trick: uvicorn's ``receive`` is a bound method of its request cycle, whose
``transport`` the fake aborts with ``SO_LINGER`` 0 (the client sees a connection reset). If the
transport cannot be found (another server), the fake starts a response and then raises, so the server
drops the connection mid-answer.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import socket
import struct
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

Json = dict[str, Any]
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
DEFAULT_DELAY = 30.0  # "timeout" mode: well past any sane client timeout
DEFAULT_RETRY_AFTER = 1.0  # "429" mode without an explicit retry_after
MODE_EXAMPLE = '{"mode": "429", "count": 2, "retry_after": 5}'
MODE_KEYS = frozenset({"mode", "count", "retry_after", "delay"})

R = TypeVar("R")  # an accepted event (or row) in the ledger
Q = TypeVar("Q")  # a request record
V = TypeVar("V")  # a protocol violation


def is_int(value: object) -> bool:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """An int or a float, not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_json(raw: bytes) -> Any:
    """The JSON value of a body, or None when it is not JSON."""
    try:
        return json.loads(raw)
    except ValueError:
        return None


def media_type(request: Request) -> str:
    """The request's media type, lower case, without parameters."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def bearer(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def payload_hash(item: Json) -> str:
    """SHA-256 of the canonical JSON of an accepted item: equal hashes, equal payloads."""
    canonical = json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


# ---------------------------------------------------------------------------------------------------
# Fault modes.


@dataclass(frozen=True)
class Fault:
    """The current fault mode; ``remaining`` counts the requests left before going back to ok."""

    mode: str = "ok"
    remaining: int | None = None
    retry_after: float | None = None
    delay: float = DEFAULT_DELAY

    def used(self) -> Fault:
        """The fault after one more request: one use fewer, and ok once the count runs out."""
        if self.remaining is None:
            return self
        left = self.remaining - 1
        return Fault(self.mode, left, self.retry_after, self.delay) if left else Fault()


def make_fault(
    mode: str, modes: frozenset[str], count: int | None, retry_after: float | None, delay: float | None
) -> Fault:
    """A validated fault: a known mode, a positive count, non-negative seconds; else ValueError."""
    if mode not in modes:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(sorted(modes))}")
    if count is not None and (not is_int(count) or count < 1):
        raise ValueError("count must be a positive integer")
    for name, value in (("retry_after", retry_after), ("delay", delay)):
        if value is not None and (not is_number(value) or value < 0):
            raise ValueError(f"{name} must be a non-negative number")
    return Fault(mode, count, retry_after, DEFAULT_DELAY if delay is None else float(delay))


def mode_arguments(payload: Any, example: str = MODE_EXAMPLE) -> Json:
    """Validate the JSON of ``POST /_admin/mode`` into ``set_mode`` keyword arguments."""
    if not isinstance(payload, dict) or not isinstance(payload.get("mode"), str):
        raise ValueError(f"expected a JSON object like {example}")
    unknown = set(payload) - MODE_KEYS
    if unknown:
        raise ValueError(f"unknown key(s): {', '.join(sorted(unknown))}")
    return dict(payload)


def retry_seconds(fault: Fault) -> int | None:
    """The Retry-After a forced answer carries: ``retry_after`` rounded up; a 429 always has one."""
    if fault.mode == "429":
        return _whole(DEFAULT_RETRY_AFTER if fault.retry_after is None else fault.retry_after)
    return None if fault.retry_after is None else _whole(fault.retry_after)


def _whole(seconds: float) -> int:
    return max(0, math.ceil(seconds))


async def read_body(request: Request, fault: Fault) -> bytes | None:
    """The body as the transport fault modes allow: None under ``reset`` (answer ``ConnectionReset()``
    without reading it); under ``timeout`` it is read first (a client that gave up cannot be read from),
    then the answer waits ``delay`` seconds."""
    if fault.mode == "reset":
        return None
    raw = await request.body()
    if fault.mode == "timeout":
        await asyncio.sleep(fault.delay)
    return raw


class ConnectionReset(Response):
    """A response that aborts the TCP connection (RST) instead of answering."""

    def __init__(self) -> None:
        super().__init__(status_code=500)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Abort uvicorn's transport; fall back to dropping the connection mid-answer."""
        transport = getattr(getattr(receive, "__self__", None), "transport", None)
        if not isinstance(transport, asyncio.Transport):
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1")]})
            raise ConnectionResetError("fake platform dropped the connection")
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        for _ in range(3):  # let connection_lost run, so uvicorn does not try to answer 500
            await asyncio.sleep(0)


# ---------------------------------------------------------------------------------------------------
# The ledger and the fake.


@dataclass
class Ledger(Generic[R, Q, V]):
    """All mutable state of one fake (guarded by the fake's condition lock); fakes add their own."""

    received: list[R] = field(default_factory=list)
    requests: list[Q] = field(default_factory=list)
    violations: list[V] = field(default_factory=list)
    retry_until: dict[str, float] = field(default_factory=dict)
    fault: Fault = field(default_factory=Fault)
    seq: int = 0


class Fake(ABC, Generic[R, Q, V]):
    """A fake platform's thread-safe ledger, fault mode, Retry-After checks and admin endpoints."""

    modes: ClassVar[frozenset[str]]
    """The fault modes ``set_mode`` accepts."""
    mode_example: ClassVar[str] = MODE_EXAMPLE
    app: Starlette
    """The ASGI app: the platform's routes after ``_admin_routes()``."""

    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now
        self._cond = threading.Condition()
        self._state = self._ledger()

    def _ledger(self) -> Ledger[R, Q, V]:
        """A fresh, empty ledger (fakes with more state return their own subclass)."""
        return Ledger()

    @abstractmethod
    def _violation(self, seq: int, key: str, now: float, until: float, detail: str) -> V:
        """The platform's record of a request that came before its Retry-After expired."""

    # -- Python API ------------------------------------------------------------------------------

    @property
    def received(self) -> list[R]:
        """Every accepted event (or row), in arrival order (a copy)."""
        with self._cond:
            return list(self._state.received)

    @property
    def requests(self) -> list[Q]:
        """Every request seen on a platform path, with its answer (a copy)."""
        with self._cond:
            return list(self._state.requests)

    @property
    def violations(self) -> list[V]:
        """Protocol breaches by the client (a copy)."""
        with self._cond:
            return list(self._state.violations)

    @property
    def fault(self) -> Fault:
        """The current fault mode."""
        with self._cond:
            return self._state.fault

    def set_mode(
        self,
        mode: str,
        *,
        count: int | None = None,
        retry_after: float | None = None,
        delay: float | None = None,
    ) -> Fault:
        """Switch the fault mode, for the next ``count`` requests only when count is given."""
        fault = make_fault(mode, self.modes, count, retry_after, delay)
        with self._cond:
            self._state.fault = fault
        return fault

    def clear(self) -> None:
        """Forget everything: ledger, requests, violations, pending Retry-After, fault mode."""
        with self._cond:
            self._state = self._ledger()

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        """Block until ``count`` events are accepted; only call it from a thread the fake does not run on."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._state.received) >= count, timeout)

    async def wait_for_async(self, count: int, timeout: float = 5.0) -> bool:
        """Like ``wait_for`` without blocking the event loop (polls every 10 ms)."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    # -- for the platform's handlers -------------------------------------------------------------

    def _turn(self, key: str | None, *, faulty: bool = True) -> tuple[int, Fault]:
        """Number a request, note a Retry-After violation for ``key``, and use up one turn of the fault.

        ``faulty=False`` (a path the platform does not serve) answers without the fault and leaves it.
        """
        with self._cond:
            state = self._state
            state.seq += 1
            if key is not None:
                self._note_early_request(state.seq, key)
            if not faulty:
                return state.seq, Fault()
            fault, state.fault = state.fault, state.fault.used()
            return state.seq, fault

    def _note_early_request(self, seq: int, key: str) -> None:
        now, until = self.now(), self._state.retry_until.get(key)
        if until is not None and now < until:
            detail = f"request arrived {until - now:.3f}s before the Retry-After sent earlier expired"
            self._state.violations.append(self._violation(seq, key, now, until, detail))

    def _hold_off(self, key: str | None, retry_after: int | None) -> None:
        """Remember that ``key`` was told to wait ``retry_after`` seconds (nothing when either is None)."""
        if key is not None and retry_after is not None:
            with self._cond:
                self._state.retry_until[key] = self.now() + retry_after

    def _accept_all(self, entries: Sequence[R]) -> None:
        """Add accepted entries to the ledger and wake ``wait_for``."""
        with self._cond:
            self._state.received.extend(entries)
            self._cond.notify_all()

    def _note_request(self, record: Q) -> None:
        with self._cond:
            self._state.requests.append(record)

    # -- admin -----------------------------------------------------------------------------------

    def _admin_routes(self) -> list[Route]:
        return [
            Route("/_admin/mode", self._admin_mode, methods=["GET", "POST"]),
            Route("/_admin/received", self._admin_list("received"), methods=["GET"]),
            Route("/_admin/requests", self._admin_list("requests"), methods=["GET"]),
            Route("/_admin/violations", self._admin_list("violations"), methods=["GET"]),
            Route("/_admin/clear", self._admin_clear, methods=["POST"]),
        ]

    def _mode_arguments(self, payload: Any) -> Json:
        return mode_arguments(payload, self.mode_example)

    async def _admin_mode(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                self.set_mode(**self._mode_arguments(parse_json(await request.body())))
            except (TypeError, ValueError) as exc:
                return JSONResponse({"detail": str(exc)}, status_code=400)
        return JSONResponse(asdict(self.fault))

    def _admin_list(self, name: str) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            items: Sequence[Any] = getattr(self, name)
            return JSONResponse([asdict(item) for item in items])

        return endpoint

    async def _admin_clear(self, request: Request) -> Response:
        self.clear()
        return JSONResponse({"cleared": True})


# ---------------------------------------------------------------------------------------------------
# Running a fake standalone (end-to-end tests): ``python -m tests.fakes.<platform> ...``.


def command(platform: str, description: str, port: int, modes: frozenset[str]) -> argparse.ArgumentParser:
    """The standalone command's options every fake has; the platform adds its own (token, ids)."""
    parser = argparse.ArgumentParser(prog=f"python -m tests.fakes.{platform}", description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument("--mode", default="ok", choices=sorted(modes), help="initial fault mode")
    parser.add_argument("--log-level", default="warning")
    return parser


def run(fake: Fake[Any, Any, Any], args: argparse.Namespace) -> None:
    """Serve the fake with uvicorn in its initial fault mode until interrupted."""
    fake.set_mode(args.mode)
    uvicorn.run(
        fake.app, host=args.host, port=args.port, log_level=args.log_level, http="h11", lifespan="off"
    )
