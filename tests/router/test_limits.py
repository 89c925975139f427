"""Resource limits on the ingest: gzip sizes, JSON shape, rate limits with Retry-After, slow bodies."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
import tracemalloc
import zlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient
from starlette.types import Message

from router import jsonlimits
from router.app import create_app
from router.config import Config, parse
from tests.conftest import BACKEND_SECRET, WEB_KEY, config_text

WEB = {"Authorization": f"Bearer {WEB_KEY}", "Content-Type": "application/json"}
GZIP = {**WEB, "Content-Encoding": "gzip"}
TEXT = {"Content-Type": "text/plain;charset=UTF-8"}


def event(event_id: str = "order-1", **extra: Any) -> dict[str, Any]:
    """A valid lead event (browser sources may not send money events)."""
    return {
        "event_name": "Lead",
        "event_id": event_id,
        "page": {"url": "https://shop.example.com/thanks"},
        **extra,
    }


def limited(config: Config, **server: Any) -> Config:
    """The config with some server settings replaced."""
    return replace(config, server=replace(config.server, **server))


def nested(depth: int) -> Any:
    """A value with `depth` nested arrays (depth 0: a number)."""
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def rejected_count(client: TestClient, reason: str) -> float:
    """The router_requests_rejected_total counter for one reason, read from /metrics."""
    prefix = f'router_requests_rejected_total{{reason="{reason}"}} '
    lines = [line for line in client.get("/metrics").text.splitlines() if line.startswith(prefix)]
    return float(lines[0].removeprefix(prefix)) if lines else 0.0


def zero_bomb(megabytes: int) -> bytes:
    """A gzip stream of `megabytes` MB of zeros, built without holding them in memory."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    parts = [packer.compress(block) for _ in range(megabytes)]
    return b"".join([*parts, packer.flush()])


def test_gzip_body_within_the_limit_is_accepted(client: TestClient) -> None:
    """A gzip /v1/events body is inflated and stored like a plain one."""
    body = gzip.compress(json.dumps({"events": [event("g1"), event("g2")]}).encode())
    response = client.post("/v1/events", headers=GZIP, content=body)
    assert response.status_code == 202
    assert [r["status"] for r in response.json()["results"]] == ["accepted", "accepted"]


def test_gzip_beacon_on_collect_is_accepted(client: TestClient) -> None:
    """/collect reads gzip beacons through the same decoder."""
    beacon = {"key": WEB_KEY, "events": [{"event_name": "page_view", "event_id": "pv-1"}]}
    headers = {**TEXT, "Content-Encoding": "gzip"}
    response = client.post("/collect", headers=headers, content=gzip.compress(json.dumps(beacon).encode()))
    assert response.status_code == 200, response.text


def test_gzip_body_over_the_limit_once_inflated_is_413(client: TestClient) -> None:
    """The decompressed size counts: a small gzip of 300 KB of JSON is over max_body_bytes (200 KB)."""
    padding = " " * 300_000
    body = gzip.compress(json.dumps(event("big")).replace("{", "{" + padding, 1).encode())
    assert len(body) < 10_000
    response = client.post("/v1/events", headers=GZIP, content=body)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"


def test_gzip_bomb_is_413_with_bounded_memory(client: TestClient) -> None:
    """100 MB of zeros in ~100 KB of gzip: 413, and the request peaks far under 50 MB of allocations."""
    bomb = zero_bomb(100)
    assert len(bomb) < 200_000
    tracemalloc.start()
    try:
        response = client.post("/v1/events", headers=GZIP, content=bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 413
    assert peak < 50 * 1024 * 1024


@pytest.mark.parametrize(
    ("encoding", "body", "status", "code"),
    [
        ("br", b"{}", 415, "unsupported_encoding"),
        ("gzip", b"not gzip at all", 400, "bad_request"),
        ("gzip", gzip.compress(b'{"event_name": "x"}')[:-12], 400, "bad_request"),
    ],
)
def test_unreadable_encodings_are_clear_4xx(
    client: TestClient, encoding: str, body: bytes, status: int, code: str
) -> None:
    """An unknown coding is 415 and broken or truncated gzip is 400, each saying what to send."""
    response = client.post("/v1/events", headers={**WEB, "Content-Encoding": encoding}, content=body)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_depth_32_passes_the_shape_check_and_33_does_not() -> None:
    """The limit is exactly 32 levels of objects and arrays."""
    jsonlimits.check(nested(32))
    with pytest.raises(jsonlimits.TooComplex, match="deeper than 32"):
        jsonlimits.check(nested(33))


@pytest.mark.parametrize("depth", [33, 5000, 100_000])
def test_deep_json_is_400_not_500(client: TestClient, depth: int) -> None:
    """Depth 33, and depths that would blow the parser's recursion, answer 400 saying the limit."""
    body = "[" * depth + "]" * depth
    response = client.post("/v1/events", headers=WEB, content=body.encode())
    assert response.status_code == 400
    assert "nested deeper than 32" in response.json()["error"]["message"]


@pytest.mark.parametrize("path", ["/collect", "/v1/track"])
def test_deep_json_on_browser_endpoints_is_400(client: TestClient, path: str) -> None:
    """/collect and the Segment endpoints apply the same depth limit."""
    document = {"key": WEB_KEY, "writeKey": WEB_KEY, "events": nested(40), "properties": nested(40)}
    response = client.post(path, headers=TEXT, content=json.dumps(document).encode())
    assert response.status_code == 400
    assert "nested deeper than 32" in response.text


def test_a_long_string_anywhere_is_400(client: TestClient) -> None:
    """Any string over 8 KB, even in a field the schema does not cap, is refused with the limit."""
    body = event(properties={"note": "x" * 9000})
    response = client.post("/v1/events", headers=WEB, json=body)
    assert response.status_code == 400
    assert "at most 8192" in response.json()["error"]["message"]


def test_too_many_keys_in_one_object_is_400(client: TestClient) -> None:
    """An object with more than 1000 keys is refused."""
    body = event(properties={f"k{i}": i for i in range(1001)})
    response = client.post("/v1/events", headers=WEB, json=body)
    assert response.status_code == 400
    assert "1001 keys" in response.json()["error"]["message"]


def rate_config(make_config: Callable[..., Config], tmp_path: Path, rates: str) -> Config:
    """A config whose YAML sets server.rate_limits (so the schema and the loader are exercised)."""
    text = config_text(tmp_path / "queue.db").replace(
        "  max_body_bytes: 200000\n", f"  max_body_bytes: 200000\n  rate_limits: {rates}\n"
    )
    return parse(text, {})


def test_per_ip_limit_is_exact_with_retry_after_and_counted(
    make_config: Callable[..., Config], tmp_path: Path
) -> None:
    """50/minute: exactly 50 of 60 requests pass, the rest are 429 with Retry-After, counted rate_limited."""
    config = rate_config(make_config, tmp_path, '{per_ip: "50/minute"}')
    with TestClient(create_app(config)) as client:
        answers = [client.post("/v1/events", headers=WEB, json=event(f"r{i}")) for i in range(60)]
        passed = [a for a in answers if a.status_code != 429]
        refused = [a for a in answers if a.status_code == 429]
        assert abs(len(passed) - 50) <= 2
        assert all(a.status_code == 202 for a in passed)
        assert refused and all(1 <= int(a.headers["Retry-After"]) <= 60 for a in refused)
        assert refused[0].json()["error"]["code"] == "rate_limited"
        assert rejected_count(client, "rate_limited") == len(refused)


def test_per_key_limit_applies_per_credential(make_config: Callable[..., Config]) -> None:
    """3/minute per key: the fourth request with one key is 429; another key still passes."""
    config = limited(make_config(), rate_limits={"per_key": "3/minute"})
    backend = {"Authorization": f"Bearer {BACKEND_SECRET}", "Content-Type": "application/json"}
    with TestClient(create_app(config)) as client:
        codes = [client.post("/v1/events", headers=WEB, json=event(f"k{i}")).status_code for i in range(4)]
        assert codes == [202, 202, 202, 429]
        assert client.post("/v1/events", headers=backend, json=event("other")).status_code == 202


@pytest.mark.parametrize(
    "forged",
    ["203.0.113.7", "203.0.113.8, 10.9.9.9", "garbage", "::1", "198.51.100.2, 203.0.113.9, 192.0.2.77"],
)
def test_forged_forwarded_for_does_not_get_a_new_bucket(
    make_config: Callable[..., Config], forged: str
) -> None:
    """One proxy hop is trusted: whatever the client puts left of the proxy's entry, it is one client."""
    config = limited(make_config(), rate_limits={"per_ip": "5/minute"})
    real = "192.0.2.10"
    with TestClient(create_app(config)) as client:
        for i in range(5):
            headers = {**WEB, "X-Forwarded-For": f"198.51.100.{i}, {forged}, {real}"}
            assert client.post("/v1/events", headers=headers, json=event(f"f{i}")).status_code == 202
        forged_headers = {**WEB, "X-Forwarded-For": f"{forged}, {real}"}
        assert client.post("/v1/events", headers=forged_headers, json=event("f6")).status_code == 429
        other = {**WEB, "X-Forwarded-For": f"{forged}, 192.0.2.11"}
        assert client.post("/v1/events", headers=other, json=event("f7")).status_code == 202


def test_health_and_metrics_are_never_rate_limited(make_config: Callable[..., Config]) -> None:
    """Only the ingest endpoints are limited; probes keep answering."""
    config = limited(make_config(), rate_limits={"per_ip": "1/minute"})
    with TestClient(create_app(config)) as client:
        assert [client.get("/healthz").status_code for _ in range(5)] == [200] * 5
        assert client.get("/metrics").status_code == 200


async def slow_request(config: Config, path: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, float]:
    """Send one chunk of a body and then nothing; the status answered and the seconds it took."""
    app = create_app(config)
    sent: list[Message] = []
    chunks: list[Message] = [{"type": "http.request", "body": b'{"event', "more_body": True}]

    async def receive() -> Message:
        if chunks:
            return chunks.pop()
        await asyncio.sleep(30)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("192.0.2.1", 5000),
        "server": ("router.test", 80),
    }
    started = time.monotonic()
    await app(scope, receive, send)
    return sent[0]["status"], time.monotonic() - started


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        (
            "/v1/events",
            [(b"authorization", f"Bearer {WEB_KEY}".encode()), (b"content-type", b"application/json")],
        ),
        ("/collect", [(b"content-type", b"text/plain")]),
        ("/v1/track", [(b"content-type", b"application/json")]),
        ("/g/collect", [(b"content-type", b"text/plain")]),
    ],
)
def test_a_trickling_body_gets_408(
    make_config: Callable[..., Config], path: str, headers: list[tuple[bytes, bytes]]
) -> None:
    """Slowloris: a body still incomplete after server.body_timeout answers 408, not a hung worker."""
    config = limited(make_config(), body_timeout=0.3)
    status, took = asyncio.run(slow_request(config, path, headers))
    assert status == 408
    assert took < 3


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=6),
    max_leaves=60,
)


@given(json_values)
def test_a_body_within_the_size_bound_always_passes_the_walk(document: Any) -> None:
    """`within_by_size` lets the ingest skip the walk only where the walk could not fail."""
    raw = json.dumps(document).encode()
    if jsonlimits.within_by_size(raw):
        jsonlimits.check(document)


def test_what_only_the_walk_can_refuse_is_never_within_the_size_bound() -> None:
    """Each limit's smallest breach is too big (or too nested) for the size bound."""
    breaches = [
        nested(33),
        {"k": "x" * (jsonlimits.MAX_STRING + 1)},
        {str(i): 0 for i in range(jsonlimits.MAX_KEYS + 1)},
        {"": 0, **{chr(0x61 + i % 26) * (1 + i // 26): 0 for i in range(jsonlimits.MAX_KEYS)}},
    ]
    for document in breaches:
        raw = json.dumps(document, separators=(",", ":")).encode()
        assert not jsonlimits.within_by_size(raw)
        with pytest.raises(jsonlimits.TooComplex):
            jsonlimits.check(document)
