"""TikTok's own documented hash examples as an oracle for our identity step and the TikTok adapter.

TikTok publishes no Python SDK for Events API 2.0 (PyPI tiktok-business-api-sdk-official covers only the
1.0 pixel/track endpoints and hashes nothing), so the oracle is TikTok's own examples:

- DOCS: the worked examples of TikTok's Events API 2.0 reference for user.email, user.phone and
  user.external_id ("raw value -> pre-processed value -> SHA-256"), as transcribed field by field in the
  Go SDK bububa/tiktok-business, model/event/track.go (Chinese edition of TikTok's reference);
- EXTENSION: the expected digests in TikTok's own Adobe Events API extension tests
  (jae-rhee-tiktok/reactor-extension-tiktok-web-events-api-edgo, src/lib/actions/__tests__/
  sendEapiData.test.js), written by a TikTok engineer.

Every documented digest is first checked to be the SHA-256 of the documented plaintext (so a
transcription error cannot pass), then compared with ours. Deliberate differences are explicit rows.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import pytest

from destinations.tiktok.adapter import TikTokDestination
from router.identity import hash_identifiers

VARIANTS = TikTokDestination.identity_variants
NOW = 1_767_225_700.0
TIKTOK_KEY = {"email": "email", "phone": "phone", "external_id": "external_id"}
VARIANT_OF = {"email": "email", "phone": "phone_e164", "external_id": "external_id"}


@dataclass(frozen=True)
class Vector:
    """One documented example: the raw input, TikTok's normalized plaintext and its published digest."""

    field: str
    raw: str
    plain: str
    digest: str
    source: str


DOCS = [
    Vector("email", " ALICE_abc@gmail.com ", "alice_abc@gmail.com",
           "848a771458438fc2ec420560d769fb9b9b86851ee338ec56517baabd79d3bb4f", "reference, user.email"),
    Vector("phone", "(+1)2133734253", "+12133734253",
           "9f7ec22d72092cd3c0b58726ed9c2d91b92e51a3f29837508fb2948bb22dd2fd", "reference, user.phone"),
    Vector("external_id", "user_123", "user_123",
           "80fba0ae1c48e3978e43e4efc365e14e12ea0c830ba8ba5b9a2dafc7e3f2ab8b", "reference, user.external_id"),
]  # fmt: skip
EXTENSION = [
    Vector("email", "test@test.com", "test@test.com",
           "f660ab912ec121d1b1e928a0bb4bc61b15f5ad44d5efdc4e1c92a25e99b8e44a", "Adobe extension test"),
    Vector("email", "test1@test1.com", "test1@test1.com",
           "621f230bb327e8061919186e2ba8e0054dc3decef2faaf198502ca40f3e92601", "Adobe extension test"),
    Vector("phone", "+12345678900", "+12345678900",
           "7f459725e1f658720fd2c41b71737eb3aef333edd9a96704cbddb5b884f0e129", "Adobe extension test"),
    Vector("phone", "+10987654321", "+10987654321",
           "dd33d16a1017bda818bf3d13630f8fec1d245dd213c6d96a88a35bb6cf23d66b", "Adobe extension test"),
    Vector("external_id", "test_external_id_1", "test_external_id_1",
           "94e5002057197a0d5078e66227b936459b51c839fda153ad23444db0f738133f", "Adobe extension test"),
    Vector("external_id", "test_external_id_2", "test_external_id_2",
           "b50b755db905d46e86af2b50abf4c902a9a4a4a094b14b0e8f1f46d29a1cf855", "Adobe extension test"),
]  # fmt: skip
VECTORS = DOCS + EXTENSION


def sha256(text: str) -> str:
    """Lower-case hex SHA-256 of UTF-8 text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def ours(field: str, raw: str) -> str | None:
    """Our stored digest of one raw identifier, in the variant the TikTok adapter reads."""
    hashed, _warnings = hash_identifiers({field: raw}, VARIANTS)
    return hashed.get(VARIANT_OF.get(field, field))


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: f"{v.field}:{v.raw.strip()}")
def test_published_digest_is_sha256_of_the_published_plaintext(vector: Vector) -> None:
    """Each transcribed example is self-consistent: digest == sha256(plaintext)."""
    assert sha256(vector.plain) == vector.digest, vector.source


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: f"{v.field}:{v.raw.strip()}")
def test_identity_hashes_like_tiktok(vector: Vector) -> None:
    """Our identity step turns TikTok's raw example into TikTok's published digest."""
    assert ours(vector.field, vector.raw) == vector.digest, vector.source


def test_adapter_sends_the_documented_digests() -> None:
    """Raw user -> identity -> adapter: user.email/phone/external_id carry TikTok's published digests."""
    raw = {vector.field: vector.raw for vector in DOCS}
    hashed, warnings = hash_identifiers(raw, VARIANTS)
    assert warnings == []
    stored: dict[str, Any] = {
        "event_name": "lead", "event_id": "lead-1", "timestamp_ms": int(NOW - 60) * 1000,
        "action_source": "website", "hashed": hashed,
    }  # fmt: skip
    block = {"id": "tt", "type": "tiktok", "pixel_code": "C4ABCDEFGHIJK1234567", "access_token": "T"}
    destination = TikTokDestination(TikTokDestination.parse_config(block))
    [payload] = destination.map(stored, NOW)
    assert payload.body["user"] == {TIKTOK_KEY[v.field]: [v.digest] for v in DOCS}


def test_phone_keeps_the_plus_unlike_meta() -> None:
    """TikTok hashes "+12133734253"; the no-plus digest Meta and Snap use is a different value."""
    assert ours("phone", "(+1)2133734253") == sha256("+12133734253") != sha256("12133734253")


@dataclass(frozen=True)
class Differs:
    """A deliberate difference from a third-party integration: each side's plaintext (None: not sent)."""

    field: str
    variant: str
    raw: str
    our_plain: str | None
    their_plain: str
    why: str


DIFFERENCES = [
    Differs(
        "phone", "phone_e164", "+12345432", None, "+12345432",
        "RudderStack's fixture hashes '+12345432' as given; it is not a complete +1 number, so our identity "
        "step warns and sends no phone rather than a digest nobody can match",
    ),
    Differs(
        "first_name", "first_name_letters", "Mary-Ann", "maryann", "mary-ann",
        "Segment's formatString only strips whitespace; its own field text (TikTok's rule) says lower case "
        "without punctuation, special characters allowed, which is our letters-only variant",
    ),
    Differs(
        "zip", "zip", "94025-1234", "94025", "94025-1234",
        "Segment hashes a ZIP+4 whole; our zip variant keeps the 5-digit part, the form a browser pixel "
        "most often holds (TikTok's own zip rule is unconfirmed)",
    ),
]  # fmt: skip


@pytest.mark.parametrize("row", DIFFERENCES, ids=lambda row: f"{row.field}:{row.raw}")
def test_deliberate_difference_from_integrators(row: Differs) -> None:
    """Each deliberate difference: we hash our plaintext (or send nothing), they hash theirs."""
    hashed, _warnings = hash_identifiers({row.field: row.raw}, VARIANTS)
    expected = None if row.our_plain is None else sha256(row.our_plain)
    assert hashed.get(row.variant) == expected, row.why
    assert expected != sha256(row.their_plain), row.why
