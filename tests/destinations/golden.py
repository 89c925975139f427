"""Golden files of every destination: request cases and response-classification fixtures.

Layout, per destination folder `tests/destinations/<type>/`:

- `cases/*.json`: {"description", "config": <YAML block>, "now": <epoch s>, "events": [<stored events>],
  "expect": {"requests": [<HttpRequest.masked()>, ...]} | {"skipped": "<reason part>"} | {"error": "..."}}
- `responses/*.json`: {"description", "batch_size": n, "response": {"status", "headers", "body"},
  "expect": "ok" | "retry" | "drop" | [one per event], "reason_contains"?: str, "retry_after"?: number,
  "config"?: <YAML block>, "batch"?: [<payload bodies>]}. Without "config", the config of the first
  case file (by name) is used; without "batch", `batch_size` empty payloads.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from destinations.base import Destination, EventError, HttpResponse, Payload, SkipEvent
from router.decisions import Decision, Drop, Ok, Retry
from router.secret import Secret

ROOT = Path(__file__).parent
VERDICTS: Mapping[type, str] = {Ok: "ok", Retry: "retry", Drop: "drop"}


@dataclass(frozen=True, slots=True)
class GoldenFile:
    """One golden JSON file of one destination."""

    type: str
    path: Path
    data: dict[str, Any]

    @property
    def id(self) -> str:
        """`<type>/<file stem>`, the pytest id."""
        return f"{self.type}/{self.path.stem}"


def golden_files(kind: str) -> list[GoldenFile]:
    """Every `<type>/<kind>/*.json` under tests/destinations, sorted."""
    return [
        GoldenFile(path.parent.parent.name, path, json.loads(path.read_text()))
        for path in sorted(ROOT.glob(f"*/{kind}/*.json"))
    ]


def adapter_class(type_: str) -> type[Destination[Any]]:
    """The Destination subclass in `destinations.<type>.adapter` whose `type` is the folder name."""
    module = importlib.import_module(f"destinations.{type_}.adapter")
    found = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, Destination)
        and value is not Destination
        and getattr(value, "type", None) == type_
    ]
    assert len(found) == 1, f"destinations.{type_}.adapter must define exactly one Destination, got {found}"
    return found[0]


def build(type_: str, block: Mapping[str, Any]) -> Destination[Any]:
    """An adapter from a YAML block, validated against the destination's config.schema.json first."""
    cls = adapter_class(type_)
    schema = json.loads(cls.schema_path().read_text())
    Draft202012Validator.check_schema(schema)
    Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(block)
    return cls(cls.parse_config(block))


def secrets_of(destination: Destination[Any]) -> list[str]:
    """The revealed values of every Secret in the destination's config."""
    values = (getattr(destination.config, f.name) for f in dataclasses.fields(destination.config))
    return [value.reveal() for value in values if isinstance(value, Secret) and value.reveal()]


@dataclass
class Outcome:
    """What mapping a case's events produced."""

    requests: list[dict[str, Any]]
    skipped: list[str]
    errors: list[str]


def run_case(case: GoldenFile) -> Outcome:
    """Map every event at `now`, batch by batch_key and max_batch_size, build each request (masked)."""
    destination = build(case.type, case.data["config"])
    payloads: list[Payload] = []
    outcome = Outcome([], [], [])
    for event in case.data["events"]:
        try:
            payloads.extend(destination.map(event, float(case.data["now"])))
        except SkipEvent as skip:
            outcome.skipped.append(skip.reason)
        except EventError as error:
            outcome.errors.append(error.reason)
    for batch in batches(payloads, destination.max_batch_size):
        outcome.requests.append(destination.build_request(batch).masked())
    return outcome


def batches(payloads: Sequence[Payload], size: int) -> Iterator[list[Payload]]:
    """Payloads grouped by batch_key (in order of first appearance), in chunks of at most `size`."""
    groups: dict[str, list[Payload]] = {}
    for payload in payloads:
        groups.setdefault(payload.batch_key, []).append(payload)
    for group in groups.values():
        for start in range(0, len(group), size):
            yield group[start : start + size]


def response_of(fixture: Mapping[str, Any]) -> HttpResponse:
    """The fixture's response: header names lower-cased, a JSON body re-encoded, a string body as is."""
    raw = fixture["response"]
    body = raw.get("body", "")
    encoded = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    headers = {name.lower(): value for name, value in raw.get("headers", {}).items()}
    return HttpResponse(status=raw["status"], headers=headers, body=encoded)


def build_for_response(fixture: GoldenFile, cases: Sequence[GoldenFile]) -> Destination[Any]:
    """The adapter a response fixture is classified with: its own config, or its first case's."""
    return build(fixture.type, fixture.data.get("config") or _first_config(fixture.type, cases))


def classify(destination: Destination[Any], fixture: GoldenFile) -> list[Decision]:
    """The adapter's decisions for the fixture's response, one per batch item."""
    bodies = fixture.data.get("batch") or [{} for _ in range(fixture.data["batch_size"])]
    batch = [Payload(body) for body in bodies]
    decision = destination.classify(response_of(fixture.data), batch)
    return list(decision) if isinstance(decision, Sequence) else [decision] * len(batch)


def _first_config(type_: str, cases: Sequence[GoldenFile]) -> Mapping[str, Any]:
    for case in cases:
        if case.type == type_:
            return case.data["config"]  # type: ignore[no-any-return]
    raise AssertionError(f"responses of {type_} need a `config` or at least one case file")


def verdict(decision: Decision) -> str:
    """`ok`, `retry` or `drop`."""
    return VERDICTS[type(decision)]
