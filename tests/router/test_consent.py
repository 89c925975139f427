"""Consent gate: the state table, every policy x consent state x real adapter through plan(), and flags."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from destinations.base import Destination
from destinations.registry import REGISTRY
from router.config import parse
from router.consent import DEFAULT, Full, Policy, Refused, Stripped, decide, parse_policy, state, strip
from router.context import RequestContext
from router.delivery import plan
from router.errors import ConfigError
from router.metrics import Metrics
from router.normalize import normalize
from router.preview import preview
from router.queue.base import Dead, Job, Skipped

NOW = 1_767_225_600.0
CASES = Path(__file__).resolve().parents[1] / "destinations"
GRANTED = {"ad_storage": "granted", "ad_user_data": "granted", "ad_personalization": "granted"}
DENIED = {"ad_storage": "denied", "ad_user_data": "denied", "ad_personalization": "denied"}
CONSENTS: dict[str, dict[str, Any]] = {"granted": GRANTED, "denied": DENIED, "unknown": {}}
ACTIONS = ("send", "strip", "drop")
IP = "203.0.113.9"
UA = "Mozilla/5.0 (Test) ConsentUA"
IDS = {
    "fbp": "fb.1.1700000000000.FBPMARK",
    "fbc": "fb.1.1700000000000.FBCMARK",
    "gclid": "GCLIDMARK",
    "ttclid": "TTCLIDMARK",
    "ttp": "TTPMARK",
    "rdt_cid": "RDTMARK",
    "epik": "EPIKMARK",
    "sccid": "SCCIDMARK",
    "scid": "SCIDMARK",
    "li_fat_id": "LIFATMARK",
}


def golden_config(kind: str) -> dict[str, Any]:
    """A working config block for the destination type, from its golden cases (one mapping `purchase`)."""
    for path in sorted((CASES / kind / "cases").glob("*.json")):
        block: dict[str, Any] = json.loads(path.read_text())["config"]
        if "purchase" in json.dumps(block) or kind not in ("google", "linkedin"):
            return {k: v for k, v in block.items() if k != "base_url"}
    raise AssertionError(f"no golden config for {kind}")


ADAPTERS: list[Destination[Any]] = [cls(cls.parse_config(golden_config(t))) for t, cls in REGISTRY.items()]
VARIANTS = frozenset().union(*(a.identity_variants for a in ADAPTERS))


def event(consent: dict[str, Any], country: str = "us") -> dict[str, Any]:
    """A stored purchase with every kind of identifier, each value recognisable in a request."""
    raw = {
        "event_name": "purchase",
        "event_id": "order-1",
        "action_source": "website",
        "page": {"url": "https://shop.example.com/thanks?gclid=GCLIDMARK&utm_source=x"},
        "user": {
            "email": "joe@example.com",
            "phone": "+14155550123",
            "external_id": "customer-42",
            "ip": IP,
            "user_agent": UA,
            "country": country,
            "zip": "94105",
        },
        "ids": IDS,
        "consent": consent,
        "properties": {"value": 10, "currency": "USD", "order_id": "order-1"},
    }
    stored = normalize(raw, RequestContext("web", True, int(NOW * 1000)), VARIANTS).event
    assert stored is not None
    return stored


def identifiers(stored: dict[str, Any]) -> list[str]:
    """Every identifier value of the event as it could appear in a request: raw, hashed, IP hashed."""
    hashed = [v for v in stored["hashed"].values() if isinstance(v, str) and v != _sha("us")]
    return [IP, UA, _sha(IP), *IDS.values(), *hashed]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def sent(adapter: Destination[Any], stored: dict[str, Any], policy: Policy) -> tuple[str, list[Any]]:
    """The requests (masked, as text) plan() would send for the event, and what it settled."""
    result = plan(adapter, [Job(1, adapter.id, stored, 0, None)], NOW, policy)
    return json.dumps([s.request.masked() for s in result.shipments]), result.settled


# --- the state table and decide() ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("consent", "expected"),
    [
        ({}, "unknown"),
        ({"ad_storage": "granted"}, "unknown"),
        ({"ad_storage": "granted", "ad_user_data": "granted"}, "granted"),
        ({"ad_storage": "denied"}, "denied"),
        ({"ad_user_data": "denied", "ad_storage": "granted"}, "denied"),
        ({"ad_storage": "granted", "ad_user_data": "granted", "ad_personalization": "denied"}, "granted"),
        ({"analytics_storage": "denied"}, "unknown"),
        ({"ldu": True, "ad_storage": "granted", "ad_user_data": "granted"}, "granted"),
    ],
)
def test_state_follows_the_table(consent: dict[str, Any], expected: str) -> None:
    """Denied when ad_storage or ad_user_data is denied; ad_personalization alone does not deny."""
    assert state({"consent": consent}) == expected


def test_default_policy_is_safe_for_eea_traffic() -> None:
    """The default: denied -> Refused everywhere; unknown -> stripped in the EEA, UK, Switzerland and
    where the country is unknown, sent in full elsewhere; granted -> Full."""
    for country in ("us", "de", None):
        refused = decide({"consent": DENIED, "user": {"country": country}})
        assert isinstance(refused, Refused) and refused.reason.startswith("consent: ")
        assert decide({"consent": GRANTED, "user": {"country": country}}, DEFAULT) == Full("granted")
    for country in ("de", "FR", "no", "is", "li", "gb", "ch", None):
        stripped = decide({"consent": {}, "user": {"country": country}, "hashed": {"email": "e" * 64}})
        assert isinstance(stripped, Stripped) and stripped.event["hashed"] == {}, country
    assert decide({"consent": {}}) == Stripped(strip({"consent": {}}), "unknown")
    for country in ("us", "br", "jp"):
        assert decide({"consent": {}, "user": {"country": country}}) == Full("unknown")


def test_strip_removes_every_identifier_and_keeps_the_rest() -> None:
    """Hashed PII, IP, UA, click ids, cookies and URL click ids go; value, country and other params stay."""
    stored = event(DENIED)
    stripped = strip(stored)
    assert stripped["hashed"] == {} and stripped["ids"] == {}
    assert stripped["user"] == {"country": "us"}
    assert stripped["page"]["url"] == "https://shop.example.com/thanks?utm_source=x"
    assert stripped["properties"] == stored["properties"]
    assert stored["ids"] == IDS  # the stored event is not modified


def test_regions_limit_when_unknown_and_unknown_country_counts_as_inside() -> None:
    """`regions` limits when_unknown to listed countries and events without a country; a denial is
    honoured everywhere."""
    policy = parse_policy({"when_denied": "drop", "when_unknown": "drop", "regions": ["EEA", "ch"]})
    assert isinstance(decide({"consent": {}, "user": {"country": "de"}}, policy), Refused)
    assert isinstance(decide({"consent": {}, "user": {"country": "ch"}}, policy), Refused)
    assert isinstance(decide({"consent": {}, "user": {}}, policy), Refused)
    assert decide({"consent": {}, "user": {"country": "us"}}, policy) == Full("unknown")
    assert isinstance(decide({"consent": DENIED, "user": {"country": "us"}}, policy), Refused)
    assert decide({"consent": DENIED}, parse_policy({"when_denied": "send"})) == Full("denied")


def test_a_block_inherits_what_it_does_not_name() -> None:
    """A destination block over the top-level block over the default; `when_unknown` without `regions`
    means everywhere, regions named alone keep the inherited action."""
    top = parse_policy({"when_unknown": "drop"})
    assert top == Policy("drop", "drop", None)
    assert parse_policy({"when_denied": "strip"}, top) == Policy("strip", "drop", None)
    assert parse_policy({"regions": ["us"]}, top) == Policy("drop", "drop", frozenset({"us"}))
    assert parse_policy({"when_denied": "strip"}) == Policy("strip", "strip", DEFAULT.regions)
    assert parse_policy(None, top) == top


# --- the matrix: every policy x consent state x real adapter --------------------------------------


@pytest.mark.parametrize("adapter", ADAPTERS, ids=[a.type for a in ADAPTERS])
@pytest.mark.parametrize("consent_state", list(CONSENTS))
@pytest.mark.parametrize("when_denied", ACTIONS)
@pytest.mark.parametrize("when_unknown", ACTIONS)
def test_no_identifier_leaves_without_consent(
    adapter: Destination[Any], consent_state: str, when_denied: str, when_unknown: str
) -> None:
    """drop sends nothing (Skipped, `consent:` reason); strip sends no identifier; send and granted go out."""
    stored = event(CONSENTS[consent_state])
    policy = Policy(when_denied, when_unknown, None)  # type: ignore[arg-type]
    text, settled = sent(adapter, stored, policy)
    action = {"granted": "send", "denied": when_denied, "unknown": when_unknown}[consent_state]
    if action == "drop":
        assert text == "[]"
        assert [type(o) for o in settled] == [Skipped]
        assert settled[0].reason.startswith("consent: ")
    elif action == "strip":
        assert not [marker for marker in identifiers(stored) if marker in text]
        assert not [o for o in settled if isinstance(o, Dead)]
    else:
        assert text != "[]", settled
        assert any(marker in text for marker in identifiers(stored))


def test_plan_counts_decisions_for_metrics() -> None:
    """plan() records one decision per job; the dispatcher counts them as router_consent_decisions_total."""
    meta = next(a for a in ADAPTERS if a.type == "meta")
    jobs = [Job(i, meta.id, event(c), 0, None) for i, c in enumerate((GRANTED, DENIED, {}))]
    result = plan(meta, jobs, NOW, Policy("drop", "strip", None))
    assert result.consent == {0: "full:granted", 1: "refused:denied", 2: "stripped:unknown"}
    metrics = Metrics()
    metrics.consented(meta.id, [d.partition(":")[0] for d in result.consent.values()])
    value = metrics.registry.get_sample_value(
        "router_consent_decisions_total", {"destination": meta.id, "decision": "refused"}
    )
    assert value == 1.0


# --- the platforms' own flags, set by the adapters from consent -----------------------------------

SEND = Policy("send", "send", None)
LDU = {**GRANTED, "ldu": True}


@pytest.mark.parametrize(
    ("kind", "consent", "flag"),
    [
        ("meta", LDU, '"data_processing_options": ["LDU"]'),
        ("tiktok", LDU, '"limited_data_use": true'),
        ("snap", LDU, '"data_processing_options": ["LDU"]'),
        ("reddit", LDU, '"modes": ["LDU"]'),
        (
            "pinterest",
            {"ad_storage": "granted", "ad_user_data": "granted", "ad_personalization": "denied"},
            '"opt_out": true',
        ),
        ("google", DENIED, '"adUserData": "DENIED"'),
        ("google", {**GRANTED, "ad_personalization": "denied"}, '"gclid": "GCLIDMARK"'),
    ],
)
def test_platform_flag_is_in_the_request(kind: str, consent: dict[str, Any], flag: str) -> None:
    """A consent-limited event that is sent carries the platform's own flag in the request."""
    adapter = next(a for a in ADAPTERS if a.type == kind)
    text, settled = sent(adapter, event(consent), SEND)
    assert flag in text, (text, settled)


def test_config_reads_the_consent_block_and_refuses_a_bad_one(tmp_path: Path) -> None:
    """`consent:` is a router key: parsed per destination, and an unknown action is a config error."""
    base = f"""
queue:
  url: sqlite:///{tmp_path}/q.db
sources:
  - id: backend
    kind: server
    secret: sk_backend_secret_0123456789abcdef
destinations:
  - id: meta_main
    type: meta
    pixel_id: "1234567890"
    access_token: EAAGfaketoken123
"""
    config = parse(base + "    consent: {when_denied: strip, when_unknown: drop, regions: [EEA]}\n", {})
    policy = config.consent_policy("meta_main")
    assert (policy.when_denied, policy.when_unknown) == ("strip", "drop")
    assert policy.regions is not None and "de" in policy.regions
    assert parse(base, {}).consent_policy("meta_main") == DEFAULT
    top = parse("consent: {when_unknown: drop}\n" + base, {})
    assert top.consent_policy("meta_main") == Policy("drop", "drop", None)
    with pytest.raises(ConfigError) as caught:
        parse(base + "    consent: {when_denied: maybe}\n", {})
    assert "consent.when_denied" in str(caught.value)


def test_preview_applies_the_destination_policy(tmp_path: Path) -> None:
    """`router preview` shows a consent-refused event as skipped, with the consent reason."""
    text = f"""
queue:
  url: sqlite:///{tmp_path}/q.db
sources:
  - id: backend
    kind: server
    secret: sk_backend_secret_0123456789abcdef
destinations:
  - id: meta_main
    type: meta
    pixel_id: "1234567890"
    access_token: EAAGfaketoken123
    consent: {{when_unknown: drop}}
"""
    raw = {"event_name": "lead", "event_id": "l1", "action_source": "crm", "user": {"email": "a@b.co"}}
    shown = preview(parse(text, {}), [raw], NOW)
    assert shown["meta_main"]["skipped"].startswith("consent: ")


def test_the_eea_example_drops_everything_without_granted_consent() -> None:
    """config/examples/eea.yaml: top-level drop/drop everywhere, TikTok's unknown rule only in Europe."""
    env = {
        "QUEUE_URL": "postgresql://router@127.0.0.1/router",
        "WEB_SOURCE_KEY": "pk_web_example_key_0123",
        "BACKEND_SECRET": "sk_backend_example_secret_0123456789",
        "META_PIXEL_ID": "1234567890",
        "META_ACCESS_TOKEN": "EAAexample",
        "TIKTOK_PIXEL_CODE": "CEXAMPLE",
        "TIKTOK_ACCESS_TOKEN": "ttexample",
        "GOOGLE_ADS_CUSTOMER_ID": "1234567890",
        "GOOGLE_PURCHASE_CONVERSION_ACTION_ID": "987654321",
    }
    example = Path(__file__).resolve().parents[2] / "config" / "examples" / "eea.yaml"
    config = parse(example.read_text(), env)
    assert config.consent_policy("meta_main") == Policy("drop", "drop", None)
    assert config.consent_policy("google_main") == Policy("drop", "drop", None)
    tiktok = config.consent_policy("tiktok_main")
    assert (tiktok.when_denied, tiktok.when_unknown) == ("drop", "drop")
    assert tiktok.regions is not None and {"de", "gb", "ch"} <= tiktok.regions and "us" not in tiktok.regions
