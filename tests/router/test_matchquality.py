"""Match quality: crafted canonical events -> the exact identifiers and score per platform."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from destinations.registry import REGISTRY
from router.matchquality import FBC as FBC_SHAPE
from router.matchquality import PLATFORM_IDS, WEIGHTS, event_score, identifiers, per_destination, score

H = "a" * 64
FBC = "fb.1.1554763741205.IwAR2F4-dbP0l7Mn1IawQQGCINEz7PYXQvwjNwB_qa2ofrHyiLjcbCRxTDMgE"


def event(
    hashed: dict[str, str] | None = None, ids: dict[str, str] | None = None, **user: str
) -> dict[str, Any]:
    """A stored canonical event with the given hashed variants, raw user fields and ids."""
    return {"event_name": "purchase", "hashed": hashed or {}, "user": user, "ids": ids or {}}


def found(platform: str, stored: dict[str, Any], warned: frozenset[str] = frozenset()) -> frozenset[str]:
    """The identifiers `stored` carries for a destination of that platform type."""
    return identifiers(stored, platform, REGISTRY[platform].identity_variants, warned)


def test_the_weights_add_up_to_ten() -> None:
    """Every identifier present gives the maximum score."""
    assert sum(WEIGHTS.values()) == 10.0
    assert event_score(frozenset(WEIGHTS)) == 10.0


def test_meta_reads_email_phone_ip_ua_fbc_fbp_and_external_id() -> None:
    """A fully identified Meta event carries every identifier and scores 10."""
    stored = event(
        {"email": H, "phone": H, "external_id": H},
        {"fbc": FBC, "fbp": "fb.1.1554763741205.1098115397"},
        ip="203.0.113.7",
        user_agent="Mozilla/5.0",
    )
    assert found("meta", stored) == frozenset(WEIGHTS)
    assert event_score(found("meta", stored)) == 10.0


def test_a_malformed_fbc_is_no_click_id_but_fbclid_is() -> None:
    """An fbc without a 13-digit creation time is flagged and not counted; a raw fbclid counts."""
    assert found("meta", event(ids={"fbc": "fb.1.155476.abc"})) == {"malformed_fbc"}
    assert found("meta", event(ids={"fbc": "fb.1.155476.abc", "fbclid": "IwAR2"})) == {
        "malformed_fbc",
        "click_id",
    }


def test_ip_without_user_agent_does_not_count() -> None:
    """IP and user agent only count together."""
    assert found("meta", event(ip="203.0.113.7")) == frozenset()
    assert event_score(found("meta", event(ip="203.0.113.7", user_agent="UA"))) == 1.5


def test_only_the_variants_the_platform_reads_count() -> None:
    """Google reads email_google and phone_e164, not Meta's variants or external_id."""
    stored = event({"email": H, "phone": H, "external_id": H}, {"gclid": "Cj0", "fbp": "fb.1.1.2"})
    assert found("google", stored) == {"click_id"}
    assert found("google", event({"email_google": H, "phone_e164": H})) == {"email", "phone"}
    assert event_score(found("google", event({"email_google": H}, {"wbraid": "x"}))) == 5.0


@pytest.mark.parametrize(
    ("platform", "ids", "expected"),
    [
        ("tiktok", {"ttclid": "t", "ttp": "p"}, {"click_id", "cookie"}),
        ("snap", {"sccid": "s", "scid": "c"}, {"click_id", "cookie"}),
        ("pinterest", {"epik": "e"}, {"click_id"}),
        ("reddit", {"rdt_cid": "r", "rdt_uuid": "u"}, {"click_id", "cookie"}),
        ("linkedin", {"li_fat_id": "l"}, {"click_id"}),
        ("linkedin", {"ttclid": "t", "gclid": "g", "fbp": "f"}, set()),
    ],
)
def test_each_platform_counts_its_own_click_ids_and_cookies(
    platform: str, ids: dict[str, str], expected: set[str]
) -> None:
    """Another platform's click id or cookie does not count."""
    assert found(platform, event(ids=ids)) == expected


def test_an_unhashable_phone_is_malformed_where_the_phone_is_read() -> None:
    """The ingest's /user/phone warning is a malformed phone for platforms reading phones only."""
    warned = frozenset({"/user/phone"})
    assert found("meta", event(), warned) == {"malformed_phone"}
    assert found("linkedin", event(), warned) == frozenset()


def test_the_score_of_shares_weighs_each_identifier() -> None:
    """Half the events with email and all with IP+UA: 0.5 * 3 + 1.5 = 3.0; capped at 10."""
    assert score({"email": 0.5, "ip_ua": 1.0}) == 3.0
    assert score(dict.fromkeys(WEIGHTS, 2.0)) == 10.0


def rules(
    stored: dict[str, Any], platform: str, variants: frozenset[str], warned: frozenset[str]
) -> frozenset[str]:
    """The counting rules read plainly, one identifier at a time (the oracle for the planned reader)."""
    hashed, user, ids = stored.get("hashed") or {}, stored.get("user") or {}, stored.get("ids") or {}
    out = {
        name
        for name in ("email", "phone", "external_id")
        if any(v.partition("_")[0] == name.partition("_")[0] and v in hashed for v in variants)
    }
    if user.get("ip") and user.get("user_agent"):
        out.add("ip_ua")
    wanted = PLATFORM_IDS[platform]
    fbc_ok = bool(ids.get("fbc")) and FBC_SHAPE.fullmatch(str(ids["fbc"])) is not None
    if any(ids.get(k) and (k != "fbc" or fbc_ok) for k in wanted.click_ids):
        out.add("click_id")
    if any(ids.get(k) for k in wanted.cookies):
        out.add("cookie")
    if platform == "meta" and ids.get("fbc") and not fbc_ok:
        out.add("malformed_fbc")
    if any(v.startswith("phone") for v in variants) and "/user/phone" in warned:
        out.add("malformed_phone")
    return frozenset(out)


ALL_VARIANTS = sorted({v for d in REGISTRY.values() for v in d.identity_variants} | {"email", "phone"})
ID_KEYS = sorted({k for p in PLATFORM_IDS.values() for k in (*p.click_ids, *p.cookies)})
stored_events = st.fixed_dictionaries(
    {
        "hashed": st.dictionaries(st.sampled_from(ALL_VARIANTS), st.just(H)),
        "user": st.fixed_dictionaries(
            {},
            optional={"ip": st.sampled_from(["", "203.0.113.5"]), "user_agent": st.sampled_from(["", "UA"])},
        ),
        "ids": st.dictionaries(st.sampled_from(ID_KEYS), st.sampled_from(["", "x", FBC, "fb.1.2.3"])),
    }
)


@given(stored_events, st.sets(st.sampled_from(["/user/phone", "/user/email"])).map(frozenset))
def test_every_platform_counts_by_the_rules(stored: dict[str, Any], warned: frozenset[str]) -> None:
    targets = [(name, name, destination.identity_variants) for name, destination in REGISTRY.items()]
    counted = per_destination(stored, targets, warned)
    for name, platform, variants in targets:
        assert counted[name] == rules(stored, platform, variants, warned)
        assert identifiers(stored, platform, variants, warned) == counted[name]
