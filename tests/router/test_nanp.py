"""The NANP fast path agrees with phonenumbers whenever it answers, and answers for plain +1 numbers."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from router import nanp

REGIONS = [None, "US", "CA", "PR", "JM", "GB", "DE", "FR", "IN", "AU"]


def parsed(text: str, region: str | None) -> str | None:
    """What phonenumbers makes of the text: E.164 when it parses and is possible, else None."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if phonenumbers.is_possible_number_with_reason(number) != phonenumbers.ValidationResult.IS_POSSIBLE:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def assert_agrees(text: str, region: str | None) -> str | None:
    fast = nanp.e164(text, region)
    if fast is not None:
        assert fast == parsed(text, region), (text, region)
    return fast


@pytest.mark.parametrize(
    ("text", "region"),
    [
        ("+1 (650) 555-1212", None),
        ("+1-650-555-1212", "GB"),
        ("+16505551212", None),
        ("(650) 555.1212", "US"),
        ("650 555 1212", "CA"),
        ("1 650 555 1212", "US"),
        ("1(650)5551212", "PR"),
        ("+(1) 650 555 1212", None),
    ],
)
def test_plain_nanp_numbers_take_the_fast_path(text: str, region: str | None) -> None:
    assert assert_agrees(text, region) == "+16505551212"


@pytest.mark.parametrize(
    ("text", "region"),
    [
        ("+1 150 555 1212", None),  # area code starting with 1: phonenumbers decides
        ("1 150 555 1212", "US"),  # phonenumbers strips the 1 and finds it too short
        ("+1 050 555 1212", None),
        ("650 555 1212", "GB"),  # not a NANP region
        ("650 555 1212", None),
        ("+1 650 555 1212 ext 5", None),  # extensions
        ("1-800-FLOWERS", "US"),  # letters
        ("+44 20 7946 0958", None),  # another country
        ("555 1212", "US"),  # seven digits
        ("+1 650 555 12120", None),  # too long for NANP
        ("\uff0b1 650 555 1212", None),  # full-width plus
        ("+1 \uff16\uff15\uff10 555 1212", None),  # full-width digits
        ("tel:+1-650-555-1212", None),
        (" " * 40 + "6505551212", "US"),  # long texts go to phonenumbers
    ],
)
def test_anything_else_is_left_to_phonenumbers(text: str, region: str | None) -> None:
    assert nanp.e164(text, region) is None


PHONE_TEXT = st.text(alphabet="0123456789 ()-.+", max_size=24)


@settings(max_examples=3000, deadline=None)
@given(PHONE_TEXT, st.sampled_from(REGIONS))
@example("+1 (650) 555-1212", None)
@example("((650)) 555--1212", "US")
@example("650-555-1212-", "US")
@example(".6505551212", "US")
@example("+1+6505551212", None)
@example("16505551212", "JM")
def test_random_texts_agree_with_phonenumbers(text: str, region: str | None) -> None:
    assert_agrees(text, region)


@st.composite
def written_nanp(draw: st.DrawFn) -> str:
    """A NANP number written the ways forms and CRMs write them."""
    area = draw(st.integers(200, 999))
    exchange = draw(st.integers(0, 999))
    line = draw(st.integers(0, 9999))
    sep = draw(st.sampled_from(["", " ", "-", ".", "  "]))
    prefix = draw(st.sampled_from(["", "+1", "1", "+1 ", "1 ", "+1-", "(+1) "]))
    area_text = draw(st.sampled_from([f"{area}", f"({area})", f"({area}) "]))
    return f"{prefix}{area_text}{sep}{exchange:03d}{sep}{line:04d}"


@settings(max_examples=3000, deadline=None)
@given(written_nanp(), st.sampled_from(REGIONS))
def test_written_nanp_numbers_agree_with_phonenumbers(text: str, region: str | None) -> None:
    assert_agrees(text, region)
