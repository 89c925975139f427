"""NANP phones: the E.164 form of a plainly written +1 number, without phonenumbers' general parser.

`phonenumbers.parse` costs about 10 us, the largest single step of normalizing an event, and most
numbers advertisers send are North American, written as digits with spaces, dots, hyphens and
parentheses. For those, E.164 is `+1` and the ten national digits: NANP numbers are possible at ten
digits, and an area code never starts with 0 or 1, so no national prefix is stripped. Anything else
(letters, extensions, other lengths, an area code starting with 0 or 1, another country) gets None,
and the caller parses it with phonenumbers. tests/router/test_nanp.py checks that whenever this gives
an answer, it is the one phonenumbers gives.
"""

from __future__ import annotations

from typing import Final

import phonenumbers

REGIONS: Final = frozenset(phonenumbers.region_codes_for_country_code(1))
"""The regions whose calling code is 1 (US, CA, PR and the Caribbean): a national number there is NANP."""
FORMATTING: Final = str.maketrans("", "", " ()-.")
"""The punctuation taken out before reading the digits."""
LONGEST: Final = 32
"""Longer texts go to phonenumbers, which has its own length limit."""


def e164(text: str, region: str | None) -> str | None:
    """`+1NXXNXXXXXX` for a plainly written NANP number (`+1 (650) 555-1212`, or `650.555.1212` in a
    NANP region); None when phonenumbers must decide."""
    if len(text) > LONGEST:
        return None
    compact = text.translate(FORMATTING)
    if compact.startswith("+"):
        digits = compact[1:]
    elif region in REGIONS:
        digits = "1" + compact if len(compact) == 10 else compact
    else:
        return None
    if len(digits) != 11 or digits[0] != "1" or digits[1] in "01":
        return None
    if not (digits.isascii() and digits.isdigit()):
        return None
    return "+" + digits
