"""The adapter contract every destination implements: pure map, build_request and classify."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeAlias, TypeVar

from mypy_extensions import mypyc_attr

from router import jsoncodec
from router.decisions import Decision, Drop, Ok, Retry
from router.secret import Secret

if TYPE_CHECKING:
    import httpx

Event: TypeAlias = Mapping[str, Any]
"""A stored canonical event (see router/normalize.py): identifiers already hashed under `hashed`."""

BatchDecision: TypeAlias = Decision | Sequence[Decision]
"""One decision for the whole batch, or one per batch item, in batch order."""


class SkipEvent(Exception):
    """A deliberate skip: the event is not for this destination (not mapped, filtered, consent)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EventError(Exception):
    """A permanent problem with one event for this destination: it can never be sent."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Payload:
    """One platform payload for one event; events with equal `batch_key` may share a request."""

    body: dict[str, Any]
    batch_key: str = ""


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """What to send: exactly one of `json` or `form` is set; `secrets` are masked wherever shown."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    form: Mapping[str, str] | None = None
    secrets: tuple[str, ...] = ()

    def masked(self) -> dict[str, Any]:
        """The request as a JSON-ready dict with every secret replaced by `***`."""
        shown: dict[str, Any] = {"method": self.method, "url": self.url, "headers": dict(self.headers)}
        if self.form is not None:
            shown["form"] = dict(self.form)
        else:
            shown["json"] = self.json
        text = json.dumps(shown)
        for secret in self.secrets:
            if secret:
                text = text.replace(json.dumps(secret)[1:-1], "***")
        masked: dict[str, Any] = json.loads(text)
        return masked


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """What came back: status, headers (lower-case names) and at most a capped body."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> Any:
        """The body parsed as JSON (as `json.loads` would, with orjson's speed), or None when it is not."""
        try:
            return jsoncodec.loads(self.body)
        except ValueError:
            return None

    def retry_after(self) -> float | None:
        """Seconds from a `Retry-After: <seconds>` header, when present and sane."""
        value = self.headers.get("retry-after", "").strip()
        try:
            seconds = float(value)
        except ValueError:
            return None
        return seconds if 0 <= seconds <= 86_400 else None


# a Python class even when compiled: a plugin's config dataclass (slots and all) subclasses it as usual
@mypyc_attr(native_class=False)
@dataclass(frozen=True, slots=True)
class BaseConfig:
    """The keys every destination block has."""

    id: str
    type: str
    events: frozenset[str] | None = None
    event_map: Mapping[str, str] = field(default_factory=dict)
    base_url: str | None = None
    timeout: float = 10.0


C = TypeVar("C", bound=BaseConfig)


class AuthError(Exception):
    """Credentials that cannot work (revoked refresh token, `invalid_grant`): a configuration error,
    reported loudly and never retried."""


class Authenticator(Protocol):
    """Adds short-lived credentials to a request: the one I/O a destination may own, run by the dispatcher.

    Platforms with static tokens need none; OAuth platforms (Google) fetch, cache and refresh tokens here.
    """

    async def apply(self, request: HttpRequest, client: httpx.AsyncClient) -> HttpRequest:
        """The request with credentials added; raises AuthError (permanent), or router.sender.TransportError
        or an httpx error (transient: retried)."""

    def invalidate(self) -> None:
        """Forget the cached credential (the platform answered 401)."""


def default_classify(response: HttpResponse) -> Decision:
    """The shared rule: 2xx OK; 408, 429 and 5xx but 501 retry (honouring Retry-After); other 4xx drop."""
    status = response.status
    if 200 <= status < 300:
        return Ok()
    if status in (408, 429) or (status >= 500 and status != 501):
        return Retry(f"HTTP {status}", after=response.retry_after())
    return Drop(f"HTTP {status}")


@mypyc_attr(allow_interpreted_subclasses=True)  # a plugin or a test may add its own adapter
class Destination(ABC, Generic[C]):
    """An ad platform's adapter. Pure: no I/O, no clock reads; the dispatcher does the rest."""

    type: ClassVar[str]
    api_version: ClassVar[str]
    max_batch_size: ClassVar[int]
    max_event_age: ClassVar[float | None]
    """Seconds; an older event is never sent (the dispatcher checks it again at send time)."""
    identity_variants: ClassVar[frozenset[str]]
    """The hashed identifier variants (router/identity.py) that `map` reads."""

    def __init__(self, config: C) -> None:
        self.config = config

    @property
    def id(self) -> str:
        """The destination's unique id from YAML."""
        return self.config.id

    @classmethod
    def schema_path(cls) -> Path:
        """The JSON Schema of this destination's YAML block, next to its adapter."""
        return Path(__file__).parent / cls.type / "config.schema.json"

    @classmethod
    @abstractmethod
    def parse_config(cls, block: Mapping[str, Any]) -> C:
        """Build the typed config from a YAML block already validated against the schema."""

    @abstractmethod
    def map(self, event: Event, now: float) -> list[Payload]:
        """The platform payloads for one event; raises SkipEvent or EventError."""

    @abstractmethod
    def build_request(self, batch: Sequence[Payload]) -> HttpRequest:
        """One HTTP request carrying the batch (all with one batch_key, at most max_batch_size)."""

    def classify(self, response: HttpResponse, batch: Sequence[Payload]) -> BatchDecision:
        """The outcome of a response; adapters override only for documented platform quirks."""
        return default_classify(response)

    def authenticator(self) -> Authenticator | None:
        """The credential source for OAuth platforms; None when build_request already carries the auth."""
        return None

    def canonical_name(self, event: Event) -> str:
        """The event's canonical name; SkipEvent when the YAML `events` list leaves it out."""
        name = str(event["event_name"])
        if self.config.events is not None and name not in self.config.events:
            raise SkipEvent(f"event {name!r} is not in this destination's `events` list")
        return name

    def api_base(self, default: str) -> str:
        """The YAML `base_url` (a proxy, a test fake), else the platform's `default`; no trailing slash."""
        return (self.config.base_url or default).rstrip("/")


def secret_of(block: Mapping[str, Any], key: str) -> Secret:
    """A secret from a config block (already interpolated from the environment)."""
    value = block[key]
    return value if isinstance(value, Secret) else Secret(str(value))


def base_fields(block: Mapping[str, Any]) -> dict[str, Any]:
    """The BaseConfig keyword arguments read from a YAML block."""
    events = block.get("events")
    return {
        "id": block["id"],
        "type": block["type"],
        "events": frozenset(events) if events is not None else None,
        "event_map": dict(block.get("event_map", {})),
        "base_url": block.get("base_url"),
        "timeout": float(block.get("timeout", 10.0)),
    }
