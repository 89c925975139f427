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
from router.consent import DEFAULT, Full, Policy, Refused, decide, parse_policy, state, strip
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


def test_default_policy_drops_denied_and_sends_unknown() -> None:
    """The default: denied -> Refused with a reason, unknown -> Full, granted -> Full."""
    assert isinstance(decide({"consent": DENIED}), Refused)
    assert decide({"consent": {}}) == Full("unknown")
    assert decide({"consent": GRANTED}, DEFAULT) == Full("granted")
    refused = decide({"consent": DENIED})
    assert isinstance(refused, Refused) and refused.reason.startswith("consent: ")


def test_strip_removes_every_identifier_and_keeps_the_rest() -> None:
    """Hashed PII, IP, UA, click ids, cookies and URL click ids go; value, country and other params stay."""
    stored = event(DENIED)
    stripped = strip(stored)
    assert stripped["hashed"] == {} and stripped["ids"] == {}
    assert stripped["user"] == {"country": "us"}
    assert stripped["page"]["url"] == "https://shop.example.com/thanks?utm_source=x"
    assert stripped["properties"] == stored["properties"]
    assert stored["ids"] == IDS  # the stored event is not modified


def test_regions_limit_the_policy_and_unknown_country_counts_as_inside() -> None:
    """A regional policy applies to listed countries and to events without a country; others go in full."""
    policy = parse_policy({"when_denied": "drop", "when_unknown": "drop", "regions": ["EEA", "ch"]})
    assert isinstance(decide({"consent": {}, "user": {"country": "de"}}, policy), Refused)
    assert isinstance(decide({"consent": {}, "user": {"country": "ch"}}, policy), Refused)
    assert isinstance(decide({"consent": {}, "user": {}}, policy), Refused)
    assert decide({"consent": DENIED, "user": {"country": "us"}}, policy) == Full("denied")


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
    policy = Policy(when_denied, when_unknown)  # type: ignore[arg-type]
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
    result = plan(meta, jobs, NOW, Policy("drop", "strip"))
    assert result.consent == ["full", "refused", "stripped"]
    metrics = Metrics()
    metrics.consented(meta.id, result.consent)
    value = metrics.registry.get_sample_value(
        "router_consent_decisions_total", {"destination": meta.id, "decision": "refused"}
    )
    assert value == 1.0


# --- the platforms' own flags, set by the adapters from consent -----------------------------------

SEND = Policy("send", "send")
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
