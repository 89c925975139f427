"""Snap's official Python SDK (snap-business-sdk) as an oracle for our Snap identifier hashing.

The SDK targets Conversions API v2 (`/v2/conversion`), so it is used for hashes only, never for the v3
body: `snap_business_sdk.capi_utils.norm_and_hash_string` (trim + lower-case + SHA-256, used by the SDK
for email, names, city, state, zip, country...) and `norm_and_hash_phone_number`. Our side is the real
pipeline: router/identity.py `hash_identifiers` with the variants the Snap adapter declares.

Every place where we deliberately differ is an explicit row with the plaintext each side hashes and
the reason, mostly where the SDK is looser than Snap's v3 Parameters page (names: "lower case letters
only, remove any punctuation"; phone: "remove any double 0 ... if the number itself begins with a 0,
this should be removed ... exclude any non-numeric characters"). The SDK's default country code is 1:
a number written without one is read as North American, which is wrong outside the US; we take the
country code from the user's country instead. Snap's three documented examples are checked literally.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import pytest
from snap_business_sdk.capi_utils import norm_and_hash_phone_number, norm_and_hash_string

from destinations.snap.adapter import SnapDestination
from router.identity import hash_identifiers

VARIANTS = SnapDestination.identity_variants
HEX64 = re.compile(r"[0-9a-f]{64}")
JOE_DIGEST = hashlib.sha256(b"joe@example.com").hexdigest()

FIELD_TO_VARIANT = {"first_name": "first_name_letters", "last_name": "last_name_letters"}
"""Snap reads the letters-only name variants; every other field's variant has the field's name."""


def digest(text: str) -> str:
    """SHA-256 hex of a plaintext; a value that already is a digest stays as it is."""
    return text if HEX64.fullmatch(text) else hashlib.sha256(text.encode()).hexdigest()


def ours(field: str, raw: str, region: str | None = None) -> str | None:
    """Our hashed value for one raw `user` field, in the variant the Snap adapter reads."""
    hashed, _warnings = hash_identifiers({field: raw}, VARIANTS, region)
    return hashed.get(FIELD_TO_VARIANT.get(field, field))


def sdk(field: str, raw: str) -> str:
    """The SDK's hashed value: its phone normalizer for phones, trim + lower-case for the rest."""
    value: str = norm_and_hash_phone_number(raw) if field == "phone" else norm_and_hash_string(raw)
    return value


@dataclass(frozen=True)
class Same:
    """An input both sides hash to the same digest."""

    field: str
    raw: str
    plain: str
    region: str | None = None


@dataclass(frozen=True)
class Differs:
    """A deliberate difference: the plaintext each side hashes."""

    field: str
    raw: str
    our_plain: str
    sdk_plain: str
    why: str
    region: str | None = None


SAME = [
    Same("email", "  Joe.Smith@Example.COM ", "joe.smith@example.com"),
    Same("phone", "+1 (650) 555-1212", "16505551212"),
    Same("phone", "0044 20 7946 0958", "442079460958"),  # "00" international prefix dropped
    Same("phone", "+33 6 12 34 56 78", "33612345678"),
    Same("phone", "(650) 555-1212", "16505551212", region="US"),  # the SDK's default 1 happens to be right
    Same("first_name", "  John ", "john"),
    Same("first_name", "Raphaël", "raphaël"),  # accents kept as UTF-8, as Snap's example shows
    Same("last_name", "SMITH", "smith"),
    Same("city", "Paris", "paris"),
    Same("state", "CA", "ca"),
    Same("zip", "94025", "94025"),
    Same("country", "US", "us"),
    Same("gender", "f", "f"),
    Same("date_of_birth", "19900704", "19900704"),
    Same("external_id", " Cust-42 ", "cust-42"),
]

DIFFERENCES = [
    Differs(
        "phone", "+16505551212", "16505551212", "116505551212",
        "the SDK needs a separator after the country code; without one it prepends its default 1",
    ),
    Differs(
        "phone", "07946 095800", "447946095800", "17946095800",
        "a national number: we add the user's country code (GB), the SDK its default 1", region="GB",
    ),
    Differs(
        "phone", "650.555.1212", "16505551212", "1650.555.1212",
        "the SDK keeps dots; Snap's docs say to drop every non-numeric character", region="US",
    ),
    Differs(
        "phone", "+44 (0)20 7946 0958", "442079460958", "4402079460958",
        "the SDK keeps the trunk 0 written as (0); Snap's docs say a leading 0 of the number is removed",
    ),
    Differs(
        "first_name", "Mary-Ann", "maryann", "mary-ann",
        "Snap's docs: lower case letters only, punctuation removed; the SDK only trims and lower-cases",
    ),
    Differs("last_name", "O'Connor", "oconnor", "o'connor", "as first names: punctuation removed"),
    Differs(
        "city", "Menlo Park", "menlopark", "menlo park",
        "we keep letters only (Segment's Snap v3 strips whitespace too); the SDK keeps the space",
    ),
    Differs(
        "state", "California", "ca", "california",
        "we map US state names to the 2-letter code (Segment does the same for Snap); the SDK does not",
    ),
    Differs("zip", "94025-1234", "94025", "94025-1234", "ZIP+4: we keep the 5-digit ZIP"),
    Differs("gender", "Male", "m", "male", "Snap's ge is m or f; the SDK hashes the word"),
    Differs("date_of_birth", "1990-07-04", "19900704", "1990-07-04", "db is YYYYMMDD; the SDK keeps dashes"),
    Differs(
        "first_name", "Jose\u0301", "jos\u00e9", "jose\u0301",
        "we NFC-normalize Unicode (a decomposed accent becomes one character); the SDK hashes bytes as sent",
    ),
]  # fmt: skip


@pytest.mark.parametrize("row", SAME, ids=lambda row: f"{row.field}:{row.raw.strip()[:20]}")
def test_same_hash_as_the_sdk(row: Same) -> None:
    """Where we agree with the SDK, both digests are the digest of the expected plaintext."""
    expected = digest(row.plain)
    assert ours(row.field, row.raw, row.region) == expected
    assert sdk(row.field, row.raw) == expected


@pytest.mark.parametrize("row", DIFFERENCES, ids=lambda row: f"{row.field}:{row.raw[:20]}")
def test_deliberate_difference_from_the_sdk(row: Differs) -> None:
    """Each deliberate difference: we hash our plaintext, the SDK hashes its own."""
    assert ours(row.field, row.raw, row.region) == digest(row.our_plain), row.why
    assert sdk(row.field, row.raw) == digest(row.sdk_plain), row.why


def test_already_hashed_value_is_not_hashed_again() -> None:
    """Deliberate: a digest passes through lower-cased; the SDK would hash the digest a second time."""
    assert ours("email", JOE_DIGEST.upper()) == JOE_DIGEST
    assert sdk("email", JOE_DIGEST.upper()) == hashlib.sha256(JOE_DIGEST.encode()).hexdigest()


@pytest.mark.parametrize(
    ("field", "raw", "documented"),
    [
        ("email", "Person@Example.com", "542d240129883c019e106e3b1b2d3f3cb3537c43c425364de8e951d5a3083345"),
        ("phone", "+44 844 412 4653", "dc008fda46e2e64002cf2f82a4906236282d431c4f75e5b60bfe79fc48546383"),
        ("first_name", "John", "96d9632f363564cc3032521409cf22a852f2032eec099ed5967c0d000cec607a"),
        ("first_name", "Raphaël", "e74bb89e718fe1e19c422a48382870399f8bf7ca8dfa008739e75b0be76627b7"),
    ],
)
def test_snaps_documented_examples(field: str, raw: str, documented: str) -> None:
    """The hashes on Snap's v3 Parameters page, from our pipeline and from the SDK."""
    assert ours(field, raw) == documented
    assert sdk(field, raw) == documented


def test_snap_reads_the_letters_only_names_and_no_plus_phone() -> None:
    """The adapter declares the letters-only name variants and the phone variant without `+`."""
    assert {"first_name_letters", "last_name_letters", "phone"} <= VARIANTS
    assert not {"first_name", "last_name", "phone_e164"} & VARIANTS
