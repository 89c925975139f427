"""Config: load router.yaml, interpolate ${ENV}, validate it whole, build typed settings and adapters."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import yaml

from destinations.base import Destination
from destinations.registry import REGISTRY
from router import consent as consent_gate
from router import durations, secretcheck
from router.aliases import canonical_name
from router.envsubst import interpolate
from router.errors import ConfigError, Problem
from router.secret import Secret
from router.validation import problems, validator_for
from router.yamlpath import format_path, load_with_lines

SCHEMA: Final = Path(__file__).parent / "schema" / "config.schema.json"
MAX_BATCH_EVENTS: Final = 500
LOOPBACK: Final = frozenset({"127.0.0.1", "localhost", "::1"})
CLOUD_RUN_SQLITE: Final = (
    "this is Cloud Run, where the disk is memory that disappears with the instance, so events queued "
    "in SQLite are lost on every deploy or scale-in; use postgresql://... (Cloud SQL), or set "
    "queue.allow_ephemeral_disk: true to accept that loss"
)
ROUTER_KEYS: Final = frozenset({"enabled", "retry_window", "consent"})
"""Destination keys the router itself reads; the adapter's schema never sees them."""
MAX_RETRY_WINDOW: Final = 47 * 3600.0
"""Retries stay inside the platforms' 48-hour dedup window, so a resend can never double count."""


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """The HTTP ingest's limits and proxy trust."""

    trusted_proxy_hops: int = 0
    max_body_bytes: int = 1_000_000
    max_batch_events: int = MAX_BATCH_EVENTS
    cookie_domain: str | None = None
    country_header: str | None = None
    """A header a trusted proxy sets to the visitor's ISO-2 country; fills browser events' user.country."""
    body_timeout: float = 10.0
    rate_limits: dict[str, str] = field(default_factory=dict)
    """`per_ip` and `per_key` in the `limits` notation ("200/second"); router.ratelimit has the defaults."""
    openapi: bool = False


@dataclass(frozen=True, slots=True)
class QueueSettings:
    """Where events are stored."""

    url: str = "sqlite:///./var/router.db"
    max_depth: int | None = 1_000_000
    allow_ephemeral_disk: bool = False
    pool_max: int = 5

    def options(self) -> dict[str, Any]:
        """Keyword options for router.queue.factory.open_queue."""
        if self.url.startswith("sqlite"):
            return {"max_depth": self.max_depth}
        return {"max_depth": self.max_depth, "pool_max": self.pool_max}


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    """How the dispatcher polls, batches and retries."""

    poll_interval: float = 1.0
    linger: float = 0.05
    lease: float = 60.0
    backoff_base: float = 10.0
    backoff_cap: float = 300.0
    probe_base: float = 5.0
    retry_window: float = 4 * 3600.0
    max_claim: int = 500
    """Most deliveries a destination claims per round: bounds memory while a backlog drains."""


@dataclass(frozen=True, slots=True)
class Source:
    """Who may send events: a browser tag (public key) or a backend (secret)."""

    id: str
    kind: str
    credential: Secret
    allowed_origins: tuple[str, ...] = ()
    ga4_measurement_ids: tuple[str, ...] = ()
    allow_missing_origin: bool = False
    events: tuple[str, ...] | None = None
    """Canonical names of the only events this source may send; None: any event."""
    allow_money_events: bool = False
    require_signature: bool = False
    """Server sources: accept only HMAC-signed requests, never the secret itself as a bearer."""


@dataclass(frozen=True, slots=True)
class Config:
    """The whole validated configuration."""

    sources: tuple[Source, ...]
    destinations: tuple[Destination[Any], ...]
    server: ServerSettings = field(default_factory=ServerSettings)
    queue: QueueSettings = field(default_factory=QueueSettings)
    dispatch: DispatchSettings = field(default_factory=DispatchSettings)
    default_phone_region: str | None = None
    keep_postal_code: bool = False
    admin_token: Secret | None = None
    disabled: tuple[str, ...] = ()
    retry_windows: Mapping[str, float] = field(default_factory=dict)
    consent_policies: Mapping[str, consent_gate.Policy] = field(default_factory=dict)
    default_consent: consent_gate.Policy = consent_gate.DEFAULT
    """The top-level `consent:` block over the built-in default; destinations inherit what they omit."""
    warnings: tuple[str, ...] = ()
    """Advice that does not stop the router (`router check` prints it), e.g. secrets written inline."""

    def retry_window(self, destination_id: str) -> float:
        """How long a failing delivery to this destination is retried (default: dispatch.retry_window)."""
        return min(self.retry_windows.get(destination_id, self.dispatch.retry_window), MAX_RETRY_WINDOW)

    def consent_policy(self, destination_id: str) -> consent_gate.Policy:
        """The destination's consent policy (router/consent.py), the default when YAML sets none."""
        return self.consent_policies.get(destination_id, self.default_consent)

    def identity_variants(self) -> frozenset[str]:
        """Every hashed identifier variant an enabled destination reads."""
        return frozenset().union(*(d.identity_variants for d in self.destinations))


def load(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate a config file; raises ConfigError listing every problem with `file:line: path`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([Problem(str(path), f"cannot read the config file: {exc.strerror}")]) from exc
    return parse(text, env if env is not None else os.environ, name=str(path))


def parse(text: str, env: Mapping[str, str], name: str = "router.yaml") -> Config:
    """Validate YAML text and build the Config."""
    try:
        raw, lines = load_with_lines(text)
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(name, f"not valid YAML: {exc}")]) from exc
    document, found = interpolate(raw, env)
    unset = {p.path for p in found}
    later = problems(validator_for(SCHEMA), document, format_path)
    if isinstance(document, dict):
        later += _destination_problems(document) + _uniqueness_problems(document)
        later += _cloud_run_problems(document, env)
    found += [p for p in later if p.path not in unset]
    if found:
        raise ConfigError([_located(p, name, lines) for p in found])
    return dataclasses.replace(_build(document), warnings=tuple(secretcheck.warnings(raw, lines, name)))


def _located(problem: Problem, name: str, lines: Mapping[str, int]) -> Problem:
    path = problem.path
    while path not in lines and ("." in path or "[" in path):
        path = path[: max(path.rfind("."), path.rfind("["))]
    line = lines.get(path)
    return Problem(f"{name}:{line}: {problem.path}" if line else f"{name}: {problem.path}", problem.message)


def _destination_problems(document: Mapping[str, Any]) -> list[Problem]:
    found: list[Problem] = []
    for index, block in enumerate(_blocks(document, "destinations")):
        where = f"destinations[{index}]"
        if not isinstance(block.get("type"), str):
            continue
        adapter = REGISTRY.get(block["type"])
        if adapter is None:
            found.append(Problem(f"{where}.type", f"unknown destination type; known: {', '.join(REGISTRY)}"))
            continue
        own = {k: v for k, v in block.items() if k not in ROUTER_KEYS}
        found += [
            Problem(f"{where}{p.path}" if p.path.startswith("[") else f"{where}.{p.path}", p.message)
            for p in problems(validator_for(adapter.schema_path()), own, format_path)
        ]
        found += _base_url_problems(block.get("base_url"), where)
    return [Problem(p.path.replace(".(top level)", ""), p.message) for p in found]


def _cloud_run_problems(document: Mapping[str, Any], env: Mapping[str, str]) -> list[Problem]:
    """On Cloud Run the disk is memory and vanishes with the instance: SQLite only on explicit opt-in."""
    queue = document.get("queue")
    settings: Mapping[str, Any] = queue if isinstance(queue, dict) else {}
    url = str(settings.get("url", QueueSettings().url))
    if "K_SERVICE" not in env or not url.startswith("sqlite") or settings.get("allow_ephemeral_disk") is True:
        return []
    return [Problem("queue.url", CLOUD_RUN_SQLITE)]


def _base_url_problems(url: Any, where: str) -> list[Problem]:
    if url is None:
        return []
    parts = urlsplit(str(url))
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK):
        return []
    return [Problem(f"{where}.base_url", "must be https, or http on a loopback address")]


def _uniqueness_problems(document: Mapping[str, Any]) -> list[Problem]:
    found: list[Problem] = []
    for section in ("sources", "destinations"):
        seen: set[Any] = set()
        for index, block in enumerate(_blocks(document, section)):
            if block.get("id") in seen:
                found.append(Problem(f"{section}[{index}].id", "is used twice"))
            seen.add(block.get("id"))
    credentials = [s.get("key") or s.get("secret") for s in _blocks(document, "sources")]
    for index, credential in enumerate(credentials):
        if credential and credentials.index(credential) != index:
            found.append(Problem(f"sources[{index}]", "has the same key or secret as another source"))
    return found


def _blocks(document: Mapping[str, Any], section: str) -> list[dict[str, Any]]:
    """The well-formed blocks of a section (the schema reports the others)."""
    blocks = document.get(section)
    return [b if isinstance(b, dict) else {} for b in blocks] if isinstance(blocks, list) else []


def _build(document: Mapping[str, Any]) -> Config:
    blocks = document.get("destinations") or []
    enabled = [b for b in blocks if b.get("enabled", True)]
    admin = (document.get("admin") or {}).get("token")
    default_consent = consent_gate.parse_policy(document.get("consent"))
    return Config(
        sources=tuple(_source(s) for s in document["sources"]),
        destinations=tuple(_destination(b) for b in enabled),
        server=_settings(ServerSettings, document.get("server")),
        queue=_settings(QueueSettings, document.get("queue")),
        dispatch=_settings(DispatchSettings, document.get("dispatch")),
        default_phone_region=(document.get("identity") or {}).get("default_phone_region"),
        keep_postal_code=(document.get("identity") or {}).get("keep_postal_code") is True,
        admin_token=Secret(admin) if admin else None,
        disabled=tuple(b["id"] for b in blocks if not b.get("enabled", True)),
        retry_windows={b["id"]: durations.seconds(b["retry_window"]) for b in enabled if "retry_window" in b},
        consent_policies={
            b["id"]: consent_gate.parse_policy(b.get("consent"), default_consent) for b in enabled
        },
        default_consent=default_consent,
    )


def _destination(block: Mapping[str, Any]) -> Destination[Any]:
    adapter = REGISTRY[block["type"]]
    own = {k: v for k, v in block.items() if k not in ROUTER_KEYS}
    return adapter(adapter.parse_config(own))


def _source(block: Mapping[str, Any]) -> Source:
    credential = block.get("key") or block["secret"]
    return Source(
        block["id"],
        block["kind"],
        Secret(credential),
        tuple(block.get("allowed_origins", ())),
        tuple(block.get("ga4_measurement_ids", ())),
        allow_missing_origin=block.get("allow_missing_origin") is True,
        events=tuple(canonical_name(e) for e in block["events"]) if "events" in block else None,
        allow_money_events=block.get("allow_money_events") is True,
        require_signature=block.get("require_signature") is True,
    )


def _settings(cls: Any, block: Mapping[str, Any] | None) -> Any:
    defaults = cls()
    values = {k: _typed(getattr(defaults, k), v) for k, v in (block or {}).items()}
    return cls(**values)


def _typed(default: Any, value: Any) -> Any:
    """A YAML or environment value in the type of the setting's default (`"8"` -> 8)."""
    if isinstance(default, bool):
        return value is True or str(value).lower() == "true"
    if default is None:
        return value  # optional text settings (cookie_domain); the schema checked the type
    return type(default if default is not None else 0)(value)
