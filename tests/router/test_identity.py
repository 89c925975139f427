"""Identity: per-field normalizers, hashed variants, pass-through of hashes, and properties."""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from router import identity
from router.errors import Problem
from router.identity import VARIANTS, hash_identifiers

ALL = frozenset(VARIANTS)
FIELDS = sorted({variant.field for variant in VARIANTS.values()})

# Published examples: Meta's CAPI docs and facebook-business SDK, Snap's Conversions API docs.
META_EMAIL_HASH = "2481f36dfc515ca76451aaadf1399026942a01ee50c6d0a61988b43cef039bc2"
META_PHONE_HASH = "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"
SNAP_EMAIL_HASH = "542d240129883c019e106e3b1b2d3f3cb3537c43c425364de8e951d5a3083345"


def sha(text: str) -> str:
    """SHA-256 hex of the UTF-8 text, computed independently of the code under test."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def hashed(user: dict[str, Any], *variants: str, region: str | None = None) -> dict[str, str]:
    """The hashes for the given variants, asserting there were no warnings."""
    result, warnings = hash_identifiers(user, frozenset(variants), region)
    assert warnings == []
    return result


# --- published examples ---------------------------------------------------------------------


def test_meta_published_email_hash() -> None:
    """Meta's example: joe@example.com hashes to the documented value."""
    assert sha("joe@example.com") == META_EMAIL_HASH
    assert hashed({"email": "joe@example.com"}, "email") == {"email": META_EMAIL_HASH}


def test_meta_published_phone_hash() -> None:
    """Meta's example: +1 650 555 1212 hashes as 16505551212 (digits, no plus)."""
    assert sha("16505551212") == META_PHONE_HASH
    assert hashed({"phone": "+1 650 555 1212"}, "phone") == {"phone": META_PHONE_HASH}


def test_snap_published_email_hash() -> None:
    """Snap's example: ' Person@Example.com ' is trimmed and lower-cased before hashing."""
    assert hashed({"email": " Person@Example.com "}, "email") == {"email": SNAP_EMAIL_HASH}


def test_snap_published_phone_normalization() -> None:
    """Snap's example: +44 844 412 4653 normalizes to 448444124653."""
    assert identity.phone_digits("+44 844 412 4653", None) == "448444124653"
    assert hashed({"phone": "+44 844 412 4653"}, "phone") == {"phone": sha("448444124653")}


# --- email ------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["Jane.Doe@Example.COM", "  jane.doe@example.com\t", "JANE.DOE@EXAMPLE.COM "])
def test_email_trimmed_and_lower_cased(raw: str) -> None:
    """Emails are trimmed and lower-cased; dots in the local part are kept for this variant."""
    assert identity.email(raw) == "jane.doe@example.com"
    assert hashed({"email": raw}, "email") == {"email": sha("jane.doe@example.com")}


# --- phone ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("+44 (0)20 7946 0958", None),
        ("0044 20 7946 0958", None),
        ("+44 20 7946 0958", "US"),
        ("020 7946 0958", "GB"),
        ("(020) 7946-0958", "gb"),
    ],
)
def test_phone_forms_of_one_uk_number(raw: str, region: str | None) -> None:
    """International, 00-prefixed, trunk-zero and national forms all give +442079460958."""
    assert identity.phone_e164(raw, region) == "+442079460958"
    assert identity.phone_digits(raw, region) == "442079460958"


def test_phone_variants_with_and_without_plus() -> None:
    """`phone` hashes the digits (Meta, Snap), `phone_e164` keeps the plus (TikTok)."""
    result = hashed({"phone": "+44 (0)20 7946 0958"}, "phone", "phone_e164")
    assert result == {"phone": sha("442079460958"), "phone_e164": sha("+442079460958")}


def test_national_phone_uses_user_country() -> None:
    """A national number is read in the event's user.country, over the default region."""
    user = {"phone": "(650) 555-1212", "country": " us "}
    assert hashed(user, "phone", region="GB") == {"phone": sha("16505551212")}


def test_national_phone_uses_default_region() -> None:
    """Without user.country the configured default region applies."""
    assert hashed({"phone": "020 7946 0958"}, "phone_e164", region="GB") == {
        "phone_e164": sha("+442079460958")
    }


def test_hashed_country_does_not_become_the_phone_region() -> None:
    """An already-hashed country cannot name a region, so the default region is used."""
    user = {"phone": "020 7946 0958", "country": sha("us")}
    assert hashed(user, "phone", region="GB") == {"phone": sha("442079460958")}


def test_national_phone_without_region_is_a_warning_not_a_hash() -> None:
    """No country code and no country: one warning at /user/phone per field, and no hash."""
    result, warnings = hash_identifiers({"phone": "(650) 555-1212"}, frozenset({"phone", "phone_e164"}))
    assert result == {}
    assert len(warnings) == 1
    assert warnings[0].path == "/user/phone"
    assert "country" in warnings[0].message
    assert "650" not in warnings[0].message


def test_impossible_phone_is_a_warning() -> None:
    """A number too short for its country is reported, not hashed."""
    result, warnings = hash_identifiers({"phone": "+44 12"}, frozenset({"phone"}))
    assert result == {}
    assert [w.path for w in warnings] == ["/user/phone"]


# --- already hashed ----------------------------------------------------------------------------


@pytest.mark.parametrize("variant", sorted(ALL))
def test_upper_case_hash_passes_through_lower_cased(variant: str) -> None:
    """A 64-hex value is taken as already hashed, for every variant, and only lower-cased."""
    digest = sha(f"anything-{variant}")
    field = VARIANTS[variant].field
    result = hashed({field: f" {digest.upper()} "}, variant)
    assert result == {variant: digest}


def test_hash_pass_through_is_not_rehashed() -> None:
    """Meta's example hash sent as the email stays exactly that hash."""
    assert hashed({"email": META_EMAIL_HASH.upper()}, "email") == {"email": META_EMAIL_HASH}


# --- names, places, gender, date of birth -------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "plain"),
    [
        ("  José ", "josé"),
        ("Jose\u0301", "josé"),  # decomposed accent composes to the same NFC text
        ("ÉLODIE", "élodie"),
        ("Ng", "ng"),
    ],
)
def test_names_nfc_trimmed_lower_cased(raw: str, plain: str) -> None:
    """Names keep their letters as NFC UTF-8, trimmed and lower-cased."""
    assert unicodedata.is_normalized("NFC", plain)
    assert identity.name(raw) == plain
    result = hashed({"first_name": raw, "last_name": raw}, "first_name", "last_name")
    assert result == {"first_name": sha(plain), "last_name": sha(plain)}


@pytest.mark.parametrize(
    ("raw", "plain"), [("St. Louis", "stlouis"), ("  New York ", "newyork"), ("Zürich", "zürich")]
)
def test_city_letters_only(raw: str, plain: str) -> None:
    """Cities keep lower-case letters only: no spaces, punctuation or digits."""
    assert identity.city(raw) == plain
    assert hashed({"city": raw}, "city") == {"city": sha(plain)}


@pytest.mark.parametrize(
    ("raw", "plain"),
    [("New York", "ny"), ("CA", "ca"), ("ca", "ca"), ("california", "ca"), ("Bavaria", "bavaria")],
)
def test_state_codes(raw: str, plain: str) -> None:
    """US state names become their 2-letter code; codes and other regions are lower-cased letters."""
    assert identity.state(raw) == plain
    assert hashed({"state": raw}, "state") == {"state": sha(plain)}


@pytest.mark.parametrize(
    ("raw", "plain"), [("94025-1234", "94025"), ("SW1A 1AA", "sw1a1aa"), (" 10115 ", "10115")]
)
def test_zip_codes(raw: str, plain: str) -> None:
    """Zips drop spaces and the part after a dash, lower-cased."""
    assert identity.zip_code(raw) == plain
    assert hashed({"zip": raw}, "zip") == {"zip": sha(plain)}


@pytest.mark.parametrize(("raw", "plain"), [("Male", "m"), ("F", "f"), (" female ", "f"), ("m", "m")])
def test_gender(raw: str, plain: str) -> None:
    """Gender becomes m or f."""
    assert identity.gender(raw) == plain
    assert hashed({"gender": raw}, "gender") == {"gender": sha(plain)}


def test_unknown_gender_is_a_warning() -> None:
    """A gender that is not m/f/male/female is not hashed."""
    result, warnings = hash_identifiers({"gender": "x"}, frozenset({"gender"}))
    assert result == {}
    assert [w.path for w in warnings] == ["/user/gender"]


@pytest.mark.parametrize("raw", ["1990-07-04", "19900704", " 1990-07-04 "])
def test_date_of_birth(raw: str) -> None:
    """Dates of birth become YYYYMMDD."""
    assert identity.date_of_birth(raw) == "19900704"
    assert hashed({"date_of_birth": raw}, "date_of_birth") == {"date_of_birth": sha("19900704")}


def test_country_and_external_id() -> None:
    """Country is lower-case ISO-2; external ids are trimmed and lower-cased."""
    result = hashed({"country": " US ", "external_id": " Cust-42 "}, "country", "external_id")
    assert result == {"country": sha("us"), "external_id": sha("cust-42")}


def test_value_empty_after_normalization_is_a_warning() -> None:
    """A city of punctuation only normalizes to nothing and is reported, not hashed as ''."""
    result, warnings = hash_identifiers({"city": "..."}, frozenset({"city"}))
    assert result == {}
    assert warnings == [Problem("/user/city", "value is empty after normalization; not sent")]


# --- variant selection -------------------------------------------------------------------------


def test_only_requested_variants_are_produced() -> None:
    """Fields present in the user but not requested are not hashed."""
    user = {"email": "a@b.co", "phone": "+16505551212", "first_name": "Jo", "zip": "94025"}
    assert set(hashed(user, "email")) == {"email"}
    assert set(hashed(user, "phone_e164", "zip")) == {"phone_e164", "zip"}
    assert hashed(user) == {}


def test_absent_and_empty_fields_are_skipped_silently() -> None:
    """Missing or empty values produce neither a hash nor a warning."""
    assert hash_identifiers({"email": ""}, ALL) == ({}, [])
    assert hash_identifiers({}, ALL) == ({}, [])


def test_full_user_every_variant() -> None:
    """A full user yields every variant, each the hash of its documented plaintext."""
    user = {
        "email": " Jane.Doe@Example.com", "phone": "+1 (650) 555-1212", "first_name": "Jane",
        "last_name": "DOE", "gender": "Female", "date_of_birth": "1990-07-04", "city": "St. Louis",
        "state": "Missouri", "zip": "63101-1234", "country": "US", "external_id": "U-1",
    }  # fmt: skip
    expected = {
        "email": "jane.doe@example.com", "phone": "16505551212", "phone_e164": "+16505551212",
        "first_name": "jane", "last_name": "doe", "gender": "f", "date_of_birth": "19900704",
        "city": "stlouis", "state": "mo", "zip": "63101", "country": "us", "external_id": "u-1",
        "first_name_letters": "jane", "last_name_letters": "doe", "email_google": "jane.doe@example.com",
        "email_reddit": "janedoe@example.com",
    }  # fmt: skip
    assert hashed(user, *ALL) == {key: sha(plain) for key, plain in expected.items()}


# --- properties --------------------------------------------------------------------------------

PROPERTY = settings(max_examples=200, deadline=None, database=None)


@PROPERTY
@given(
    user=st.dictionaries(st.sampled_from(FIELDS), st.text(max_size=80)),
    region=st.one_of(st.none(), st.sampled_from(["US", "GB", "DE", "JP"]), st.text(max_size=3)),
)
def test_hash_identifiers_is_total(user: dict[str, str], region: str | None) -> None:
    """Any text in any field gives hashes and warnings, never an exception."""
    result, warnings = hash_identifiers(user, ALL, region)
    assert all(len(h) == 64 and h == h.lower() for h in result.values())
    assert all(w.path.startswith("/user/") for w in warnings)


Norm = Callable[[Any], str]
TOTAL_IDEMPOTENT: list[Norm] = [identity.email, identity.name, identity.external_id]
LATIN = st.text(st.characters(codec="latin-1"), max_size=60)


@PROPERTY
@given(st.sampled_from(TOTAL_IDEMPOTENT), st.text(max_size=60))
def test_text_normalizers_are_idempotent(normalizer: Norm, text: str) -> None:
    """email, name and external_id: normalizing twice equals normalizing once, for any text."""
    once = normalizer(text)
    assert normalizer(once) == once


@PROPERTY
@given(st.sampled_from([identity.city, identity.zip_code]), LATIN)
def test_city_and_zip_are_idempotent_on_latin_text(normalizer: Norm, text: str) -> None:
    """city and zip: normalizing twice equals normalizing once for Latin-1 text."""
    once = normalizer(text)
    assert normalizer(once) == once


@PROPERTY
@example(normalizer=identity.city, text="\u1100.\u1161")
@example(normalizer=identity.zip_code, text="\u0339 \u0334")
@given(st.sampled_from([identity.city, identity.zip_code]), st.text(max_size=60))
def test_city_and_zip_are_idempotent_on_any_text(normalizer: Norm, text: str) -> None:
    """city and zip: normalizing twice equals normalizing once, for any text."""
    once = normalizer(text)
    assert normalizer(once) == once


def test_letters_variant_drops_punctuation_and_keeps_accents() -> None:
    """`first_name_letters` (Snap, Pinterest): lower-case letters only, `Mary-Ann` -> `maryann`."""
    assert hashed({"first_name": " Mary-Ann "}, "first_name_letters") == {
        "first_name_letters": sha("maryann")
    }
    assert hashed({"last_name": "Raphaël O'Neil"}, "last_name_letters") == {
        "last_name_letters": sha("raphaëloneil")
    }


@pytest.mark.parametrize(
    ("raw", "plain"),
    [
        (" Jane.Doe+ads@Gmail.com ", "janedoe@gmail.com"),
        ("j.d@googlemail.com", "jd@googlemail.com"),
        ("Jane.Doe+ads@example.com", "jane.doe+ads@example.com"),  # only Google's own domains
    ],
)
def test_google_email_variant_applies_gmail_rules_only_to_gmail(raw: str, plain: str) -> None:
    """`email_google`: dots and +suffix dropped from gmail.com/googlemail.com local parts only."""
    assert hashed({"email": raw}, "email_google") == {"email_google": sha(plain)}
