"""GA4 /g/collect: recorded hits parsed into canonical events, decoding, totality, and the endpoint."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from router import ga4hit
from router.app import create_app
from router.config import parse
from router.ga4 import SALVAGEABLE, salvage
from router.normalize import SCHEMA
from router.validation import problems, validator_for
from tests.conftest import WEB_KEY, config_text

HITS = Path(__file__).parent / "ga4_hits"
FIXTURES = sorted(HITS.glob("*.json"))
SHOP = "https://www.shop.test"
MEASUREMENT_IDS = ("G-123456", "G-ABCDEF1234", "G-FCES3L0M9M", "G-7Q2RX4LEAD")
SIGNALS = ("ad_storage", "analytics_storage", "ad_user_data", "ad_personalization")
EXAMPLE_EMAIL_SHA256 = "31c5543c1734d25c7206f5fd591525d0295bec6fe84ff82f946a34fe970a1e66"
"""SHA-256 of example@example.com, from confidential-match's EnhancedMatchMapperTest."""


def fixture(path: Path) -> dict[str, Any]:
    """One recorded hit: method, query, body, where its shape comes from, and the expected events."""
    document: dict[str, Any] = json.loads(path.read_text())
    assert document["source"], f"{path.name} must say where its shape comes from"
    return document


def stored_payloads(tmp_path: Path) -> list[dict[str, Any]]:
    """The event payloads in the SQLite queue file, in arrival order."""
    with sqlite3.connect(tmp_path / "queue.db") as db:
        return [json.loads(row[0]) for row in db.execute("SELECT payload FROM events ORDER BY rowid")]


@pytest.fixture
def ga4_client(tmp_path: Path) -> Iterator[TestClient]:
    """The app with a browser source that owns the fixtures' measurement ids."""
    ids = ", ".join(MEASUREMENT_IDS)
    text = config_text(tmp_path / "queue.db").replace(
        f"    key: {WEB_KEY}\n",
        f"    key: {WEB_KEY}\n    ga4_measurement_ids: [{ids}]\n    allowed_origins: [{SHOP}]\n"
        "    allow_missing_origin: true\n",  # gtag.js image hits carry no Origin
    )
    with TestClient(create_app(parse(text, {})), base_url="https://track.shop.test") as client:
        yield client


def send(client: TestClient, document: dict[str, Any], **headers: str) -> Any:
    """Replay a recorded hit against the app."""
    url = f"/g/collect?{document['query']}"
    if document["method"] == "GET":
        return client.get(url, headers=headers)
    return client.post(url, content=document["body"].encode(), headers=headers)


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_recorded_hit_parses_into_expected_events(path: Path) -> None:
    """Each recorded /g/collect request parses into exactly the expected canonical events."""
    document = fixture(path)
    collected = ga4hit.parse(document["query"].encode(), document["body"].encode())
    assert collected.measurement_id == document["expected"]["measurement_id"]
    assert list(collected.events) == document["expected"]["events"]


def test_fixtures_cover_get_post_items_consent_and_user_data() -> None:
    """Recorded hits include GET, multi-line POST, items, both consent strings and both user data forms."""
    documents = [fixture(p) for p in FIXTURES]
    queries = " ".join(d["query"] + d["body"] for d in documents)
    assert {d["method"] for d in documents} == {"GET", "POST"}
    assert any(d["body"].count("\n") > 1 for d in documents)
    for marker in ("pr1=", "gcs=G1", "gcd=", "em=tv.1", "ep.user_data.", "ep.event_id="):
        assert marker in queries


@pytest.mark.parametrize(
    ("gcs", "gcd", "expected"),
    [
        ("G100", "", {"ad_storage": "denied", "analytics_storage": "denied"}),
        ("G101", "", {"ad_storage": "denied", "analytics_storage": "granted"}),
        ("G110", "", {"ad_storage": "granted", "analytics_storage": "denied"}),
        ("G111", "", {"ad_storage": "granted", "analytics_storage": "granted"}),
        ("G1--", "", {}),
        ("", "11p1p1p1p5", dict.fromkeys(SIGNALS, "denied")),
        ("", "13r3r3r3r5", dict.fromkeys(SIGNALS, "granted")),
        ("", "13l3l3l3l1", {}),
        ("", "13t3t3Z2t5l1", dict.fromkeys(SIGNALS, "granted")),
        ("", "11q1u1m1n5", dict(zip(SIGNALS, ("denied", "denied", "denied", "granted"), strict=True))),
        (
            "",
            "11v1t1l1p5",
            {"ad_storage": "granted", "analytics_storage": "granted", "ad_personalization": "denied"},
        ),
        (
            "G100",
            "13r3r3r3r5",
            {**dict.fromkeys(SIGNALS, "granted"), "ad_storage": "denied", "analytics_storage": "denied"},
        ),
        ("G2xx", "1", {}),
        ("", "1!", {}),
    ],
)
def test_consent_strings_decode_to_canonical_consent(gcs: str, gcd: str, expected: dict[str, str]) -> None:
    """gcs gives ad/analytics storage (and wins); gcd letters give all four, the update over the default."""
    assert ga4hit.decode_consent(gcs, gcd) == expected


@pytest.mark.parametrize(
    ("em", "expected"),
    [
        ("tv.1~em.McVUPBc00lxyBvX9WRUl0Clb7G_oT_gvlGo0_pcKHmY", {"email": EXAMPLE_EMAIL_SHA256}),
        (f"tv.1~em.{EXAMPLE_EMAIL_SHA256.upper()}", {"email": EXAMPLE_EMAIL_SHA256}),
        ("tv.1~em.e2~em.McVUPBc00lxyBvX9WRUl0Clb7G_oT_gvlGo0_pcKHmY", {"email": EXAMPLE_EMAIL_SHA256}),
        (
            "tv.1~pn.McVUPBc00lxyBvX9WRUl0Clb7G_oT_gvlGo0_pcKHmY~ct0.bad%20wenigstadt~pc0.11234~rg0.by~co0.DE",
            {
                "phone": EXAMPLE_EMAIL_SHA256,
                "city": "bad wenigstadt",
                "zip": "11234",
                "state": "by",
                "country": "DE",
            },
        ),
        ("tv.1~sa0.McVUPBc00lxyBvX9WRUl0Clb7G_oT_gvlGo0_pcKHmY~fn1.x~foo~.~em.", {}),
        ("tv.2~em.McVUPBc00lxyBvX9WRUl0Clb7G_oT_gvlGo0_pcKHmY", {}),
        ("em.McVUPBc00lxyBvX9WRUl0Clb7G_oT_gvlGo0_pcKHmY", {}),
        ("", {}),
    ],
)
def test_user_provided_data_becomes_hex_hashes_and_raw_address(em: str, expected: dict[str, str]) -> None:
    """gtag's `em` parameter: base64url or hex SHA-256 -> 64 hex; raw city/zip/region/country decoded."""
    assert ga4hit.user_provided(em) == expected


def test_raw_user_data_wins_over_hashed_values() -> None:
    """A raw ep.user_data value is preferred to its sha256_ twin and to the hashed em parameter."""
    query = (
        "tid=G-123456&en=sign_up&em=tv.1~em.McVUPBc00lxyBvX9WRUl0Clb7G_oT_gvlGo0_pcKHmY"
        f"&ep.user_data.sha256_email_address={'a' * 64}&ep.user_data.email_address=jane%40example.com"
        f"&ep.user_data.sha256_phone_number={'b' * 64}&ep.user_data.first_name=Jane"
    )
    event = ga4hit.parse(query.encode(), b"").events[0]
    assert event["user"] == {"email": "jane@example.com", "phone": "b" * 64, "first_name": "Jane"}
    assert "properties" not in event


def test_event_id_comes_from_ep_event_id_then_a_purchases_transaction_id() -> None:
    """ep.event_id wins; a purchase without it uses its transaction id; other events get none here."""
    body = "\n".join(
        [
            "en=purchase&ep.transaction_id=T-1&ep.event_id=evt-9",
            "en=purchase&ep.transaction_id=T-2",
            "en=refund&ep.transaction_id=T-3",
            "en=purchase&ep.transaction_id=has%20space&ep.event_id=bad%20id",
        ]
    )
    events = ga4hit.parse(b"tid=G-123456", body.encode()).events
    assert [e.get("event_id") for e in events] == ["evt-9", "T-2", None, None]
    assert [e["properties"]["order_id"] for e in events] == ["T-1", "T-2", "T-3", "has space"]


def test_custom_parameters_keep_valid_names_and_drop_emails_and_user_data() -> None:
    """ep.* and epn.* become custom properties unless unnamable, mapped elsewhere or carrying an email."""
    query = (
        "tid=G-123456&en=contact&ep.page-type=x&ep.method=phone&epn.count=3&epn.bad=abc"
        "&ep.note=mail%20jane%40example.com&ep.user_data.city=Berlin&ep.search_term=shoes"
        "&epn.value=-5&pr0=idA&pr201=idB&pr2=nmNoId&pr3=idC~qt1.5~pr2"
    )
    properties = ga4hit.parse(query.encode(), b"").events[0]["properties"]
    assert properties == {
        "value": -5,
        "search_string": "shoes",
        "contents": [{"id": "C", "price": 2}],
        "method": "phone",
        "count": 3,
    }


def test_batch_limits_and_malformed_requests_raise_parse_errors() -> None:
    """No tid, no en, mixed tids, bad UTF-8 and oversized batches are ParseErrors with a clear message."""
    cases = {
        (b"en=page_view", b""): "measurement id",
        (b"tid=G-123456", b"en=page_view\nep.x=1"): "hit 2 has no event name",
        (b"tid=G-123456", b"en=a&tid=G-999999\nen=b"): "different measurement ids",
        (b"tid=G-123456&en=%ff", b""): "not UTF-8",
        (b"tid=G-123456", b"\xff"): "not valid UTF-8",
        (b"tid=G-123456&" + b"&".join(b"x%d=1" % i for i in range(600)), b""): "more than 500",
    }
    for (query, body), message in cases.items():
        with pytest.raises(ga4hit.ParseError, match=message):
            ga4hit.parse(query, body)
    with pytest.raises(ga4hit.TooManyHits):
        ga4hit.parse(b"tid=G-123456", b"\n".join([b"en=scroll"] * 51))


GA4_KEYS = st.sampled_from(
    [
        *("en", "tid", "dl", "dr", "dt", "ul", "cu", "cid", "gcs", "gcd", "em", "pr1", "pr2", "pr200"),
        *("ep.event_id", "ep.transaction_id", "ep.value", "epn.value", "ep.user_data.email", "ep.x", "epn.y"),
    ]
)
VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["purchase", "G-123456", "G111", "13r3r3r3r5", "tv.1~em.e2~co0.DE", "idA~qt2~pr9.5"]),
)


def encoded(pairs: list[tuple[str, str]]) -> bytes:
    """Pairs as a percent-encoded query string."""
    return "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs).encode()


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(query=st.binary(max_size=300), body=st.binary(max_size=300))
def test_parser_never_raises_anything_but_parse_error_on_bytes(query: bytes, body: bytes) -> None:
    """Arbitrary bytes: the parser answers or raises ParseError, nothing else."""
    with contextlib.suppress(ga4hit.ParseError):
        ga4hit.parse(query, body)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    shared=st.lists(st.tuples(GA4_KEYS, VALUES), max_size=12),
    lines=st.lists(st.lists(st.tuples(GA4_KEYS, VALUES), max_size=8), max_size=4),
)
def test_salvaged_events_only_fail_the_schema_on_their_name(
    shared: list[tuple[str, str]], lines: list[list[tuple[str, str]]]
) -> None:
    """Hostile GA4-shaped hits parse or raise ParseError; after salvage only event_name problems remain."""
    try:
        collected = ga4hit.parse(encoded(shared), b"\n".join(encoded(line) for line in lines))
    except ga4hit.ParseError:
        return
    for event in collected.events:
        json.dumps(event)
        left = problems(validator_for(SCHEMA), salvage(event))
        assert not [p for p in left if p.path.startswith(SALVAGEABLE)]


def test_salvage_drops_only_the_refused_values() -> None:
    """A 3-letter country, a negative price and an item without id go; the rest of the event stays."""
    event = {
        "event_name": "purchase",
        "user": {"email": "jane@example.com", "country": "USA"},
        "properties": {"value": 5, "contents": [{"id": "A", "price": -1}, {"name": "no id"}, {"id": "B"}]},
    }
    assert salvage(event) == {
        "event_name": "purchase",
        "user": {"email": "jane@example.com"},
        "properties": {"value": 5, "contents": [{"id": "A"}, {"id": "B"}]},
    }
    assert event["user"]["country"] == "USA"


def test_batch_post_is_stored_with_canonical_names_and_cookies(
    ga4_client: TestClient, tmp_path: Path
) -> None:
    """The recorded batch answers 204, lands in the queue folded to canonical names, and mints cookies."""
    response = send(ga4_client, fixture(HITS / "batch_post.json"), **{"user-agent": "Mozilla/5.0 test"})
    assert response.status_code == 204
    assert response.content == b""
    payloads = stored_payloads(tmp_path)
    assert [p["event_name"] for p in payloads] == ["view_content", "add_to_cart"]
    assert {p["source"] for p in payloads} == {"web"}
    assert payloads[1]["properties"]["contents"][0]["quantity"] == 3
    assert payloads[0]["user"]["user_agent"] == "Mozilla/5.0 test"
    assert payloads[0]["ids"]["fbp"].startswith("fb.1.")
    cookies = response.headers.get_list("set-cookie")
    assert any(c.startswith("_fbp=") for c in cookies)
    assert any(c.startswith("_rt_vid=") for c in cookies)


def test_purchase_with_raw_user_data_is_salvaged_hashed_and_deduplicated(
    ga4_client: TestClient, tmp_path: Path
) -> None:
    """The 3-letter country is dropped, raw PII is hashed before storage, and a resent hit is a duplicate."""
    document = fixture(HITS / "purchase_user_data_get.json")
    assert send(ga4_client, document).status_code == 204
    assert send(ga4_client, document).status_code == 204
    payloads = stored_payloads(tmp_path)
    assert len(payloads) == 1
    purchase = payloads[0]
    assert purchase["event_id"] == "1738980736899_1739204876203"
    assert purchase["properties"]["order_id"] == "5502962827364"
    assert purchase["properties"]["currency"] == "USD"
    assert "country" not in purchase["user"]
    raw = json.dumps(purchase)
    assert "user@example.com" not in raw
    assert "John" not in raw


def test_purchase_event_id_is_the_transaction_id(ga4_client: TestClient, tmp_path: Path) -> None:
    """Without ep.event_id, the stored purchase's event_id is its transaction id; consent is kept."""
    assert send(ga4_client, fixture(HITS / "purchase_em_get.json")).status_code == 204
    (purchase,) = stored_payloads(tmp_path)
    assert purchase["event_id"] == "6629248041208"
    assert purchase["consent"] == dict.fromkeys(SIGNALS, "granted")


def test_fbclid_on_the_page_url_sets_the_fbc_cookie(ga4_client: TestClient, tmp_path: Path) -> None:
    """The page URL's fbclid is picked up by enrichment and refreshed into the _fbc cookie."""
    dl = quote("https://shop.test/p?fbclid=IwAR0abc", safe="")
    response = ga4_client.get(f"/g/collect?v=2&tid=G-123456&en=page_view&dl={dl}")
    assert response.status_code == 204
    (event,) = stored_payloads(tmp_path)
    assert event["ids"]["fbclid"] == "IwAR0abc"
    fbc = event["ids"]["fbc"]
    assert fbc.startswith("fb.1.") and fbc.endswith(".IwAR0abc")
    assert any(c.startswith("_fbc=fb.1.") for c in response.headers.get_list("set-cookie"))


def test_refusals_are_json_errors_never_500(ga4_client: TestClient, tmp_path: Path) -> None:
    """Unknown tid 401, unreadable hit 400, too many hits or too big a body 413; nothing stored."""
    cases = [
        (ga4_client.get("/g/collect?v=2&tid=G-UNKNOWN1&en=page_view"), 401, "unknown_measurement_id"),
        (ga4_client.get("/g/collect?v=2&en=page_view"), 400, "bad_hit"),
        (ga4_client.post("/g/collect?tid=G-123456", content=b"ep.x=1"), 400, "bad_hit"),
        (
            ga4_client.post("/g/collect?tid=G-123456", content=b"\n".join([b"en=scroll"] * 51)),
            413,
            "too_many_hits",
        ),
        (
            ga4_client.post("/g/collect?tid=G-123456", content=b"en=a&ep.x=" + b"x" * 200_001),
            413,
            "body_too_large",
        ),
    ]
    for response, status, code in cases:
        assert response.status_code == status
        assert response.json()["error"]["code"] == code
        assert response.json()["error"]["message"]
    assert stored_payloads(tmp_path) == []


def test_a_rejected_hit_is_answered_with_results(ga4_client: TestClient, tmp_path: Path) -> None:
    """When the ingest rejects a hit (an unusable event name), the answer lists each hit's result."""
    body = "en=page_view\nen=" + "x" * 101
    response = ga4_client.post("/g/collect?tid=G-123456", content=body.encode())
    assert response.status_code == 202
    assert [r["status"] for r in response.json()["results"]] == ["accepted", "rejected"]
    assert [p["event_name"] for p in stored_payloads(tmp_path)] == ["page_view"]


def test_only_user_engagement_is_answered_without_storing(ga4_client: TestClient, tmp_path: Path) -> None:
    """GA4's engagement beacon alone is answered 204 and nothing is stored."""
    response = ga4_client.post("/g/collect?tid=G-123456", content=b"en=user_engagement&_et=1200")
    assert response.status_code == 204
    assert stored_payloads(tmp_path) == []


def test_origin_must_be_listed_when_the_request_has_one(ga4_client: TestClient, tmp_path: Path) -> None:
    """A beacon from a listed origin or without Origin is stored; another origin gets 403."""
    hit = b"en=page_view"
    assert (
        ga4_client.post("/g/collect?tid=G-123456", content=hit, headers={"origin": SHOP}).status_code == 204
    )
    assert ga4_client.get("/g/collect?tid=G-123456&en=page_view").status_code == 204
    refused = ga4_client.post("/g/collect?tid=G-123456", content=hit, headers={"origin": "https://evil.test"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden_origin"
    assert len(stored_payloads(tmp_path)) == 2
