"""Identity: normalize each personal identifier and SHA-256 it once per variant a platform needs."""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import phonenumbers

from router import nanp
from router.errors import Problem
from router.us_states import US_STATE_CODES

HASHED: Final = re.compile(r"^[0-9a-fA-F]{64}$")
NOT_A_Z_0_9: Final = re.compile(r"[^a-z0-9]")
NOT_DIGIT: Final = re.compile(r"[^0-9]")
SPACES: Final = re.compile(r"\s+")
ISO2: Final = re.compile(r"[a-z]{2}")
REGION: Final = re.compile(r"\s*[A-Za-z]{2}\s*")
PII_FIELDS: Final = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "gender",
    "date_of_birth",
    "city",
    "state",
    "zip",
    "country",
    "external_id",
)
"""Canonical `user` keys that are personal data: never stored or logged raw."""


class Unusable(ValueError):
    """The value cannot be normalized into something a platform could match."""


def sha256(text: str) -> str:
    """Lower-case hex SHA-256 of the UTF-8 text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _text(value: Any) -> str:
    return unicodedata.normalize("NFC", str(value)).strip()


def _nfc(text: str) -> str:
    """NFC again after characters were removed, so normalizing twice changes nothing."""
    return unicodedata.normalize("NFC", text)


def email(value: Any) -> str:
    """Trimmed and lower-cased (Meta, TikTok, Snap, Pinterest, Reddit, LinkedIn)."""
    return _text(value).lower()


GMAIL_DOMAINS: Final = frozenset({"gmail.com", "googlemail.com"})


def email_google(value: Any) -> str:
    """Google's rule: trimmed, lower-cased, and for gmail.com / googlemail.com only, the dots and any
    `+suffix` removed from the local part: `Jane.Doe+ads@Gmail.com` -> `janedoe@gmail.com`."""
    address = email(value)
    local, at, domain = address.rpartition("@")
    if at and domain in GMAIL_DOMAINS:
        local = local.split("+", 1)[0].replace(".", "")
    return f"{local}{at}{domain}"


def email_reddit(value: Any) -> str:
    """Reddit's rule (Manual Advanced Matching): trimmed, lower-cased, the local part cut at its first
    `+` and stripped of all but a-z and 0-9: `Al.ice$+Apple@Example.Com` -> `alice@example.com`."""
    address = email(value)
    local, at, domain = address.rpartition("@")
    if not at:
        return address
    return NOT_A_Z_0_9.sub("", local.split("+", 1)[0]) + at + domain


def phone_e164(value: Any, region: str | None) -> str:
    """E.164 with the `+`: `+44 (0)20 7946 0958` -> `+442079460958`; `00` prefixes understood."""
    raw = _text(value)
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    region = region.upper() if region else None
    fast = nanp.e164(raw, region)
    if fast is not None:
        return fast
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise Unusable("phone has no country code and no country is known; send it as +<country>...") from exc
    if phonenumbers.is_possible_number_with_reason(number) != phonenumbers.ValidationResult.IS_POSSIBLE:
        raise Unusable("phone is not a complete number for its country (area code missing or wrong length)")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_digits(value: Any, region: str | None) -> str:
    """Digits with the country code and no `+` (Meta, Snap): `+1 650 555 1212` -> `16505551212`."""
    return without_plus(phone_e164(value, region))


def without_plus(e164: str) -> str:
    """An E.164 number's digits: the `phone` variant's last step after the shared `phone_e164` parse."""
    return e164.removeprefix("+")


def name(value: Any) -> str:
    """Trimmed and lower-cased; letters outside a-z kept as UTF-8 (Meta SDK's rule)."""
    return _text(value).lower()


def letters(value: Any) -> str:
    """Lower-case letters only, accents kept as UTF-8: `Mary-Ann` -> `maryann` (Snap, Pinterest names)."""
    return _nfc("".join(filter(str.isalpha, _text(value).lower())))


def gender(value: Any) -> str:
    """`m` or `f` from m/f/male/female in any case."""
    first = _text(value).lower()[:1]
    if first not in ("m", "f"):
        raise Unusable("gender must be m, f, male or female")
    return first


def date_of_birth(value: Any) -> str:
    """`YYYYMMDD` from `YYYY-MM-DD` or `YYYYMMDD`."""
    digits = NOT_DIGIT.sub("", _text(value))
    if len(digits) != 8:
        raise Unusable("date_of_birth must be YYYY-MM-DD")
    return digits


def city(value: Any) -> str:
    """Lower-case letters only: `St. Louis` -> `stlouis` (Meta: no digits, spaces or punctuation)."""
    return letters(value)


def state(value: Any) -> str:
    """Lower-case letters only; US state names become their 2-letter code (`New York` -> `ny`)."""
    letters = city(value)
    return US_STATE_CODES.get(letters, letters)


def zip_code(value: Any) -> str:
    """Lower-case, no spaces, the part before a dash: `94025-1234` -> `94025`, `SW1A 1AA` -> `sw1a1aa`."""
    return _nfc(SPACES.sub("", _text(value).lower()).split("-", 1)[0])


def country(value: Any) -> str:
    """ISO 3166-1 alpha-2 in lower case."""
    code = _text(value).lower()
    if not ISO2.fullmatch(code):
        raise Unusable("country must be an ISO 3166-1 alpha-2 code such as US")
    return code


def external_id(value: Any) -> str:
    """Trimmed and lower-cased, as Segment and RudderStack hash it."""
    return _text(value).lower()


Normalizer = Callable[[Any, "str | None"], str]


@dataclass(frozen=True, slots=True)
class Variant:
    """One hashed form of one `user` field: the name adapters read under `hashed`."""

    field: str
    normalize: Normalizer
    then: Callable[[str], str] | None = None
    """A last step on the normalized text (Meta's phone is E.164 without `+`): variants sharing
    `normalize` share its work within an event."""


def _plain(function: Callable[[Any], str]) -> Normalizer:
    return lambda value, _region: function(value)


VARIANTS: Final[Mapping[str, Variant]] = {
    "email": Variant("email", _plain(email)),
    "email_google": Variant("email", _plain(email_google)),
    "email_reddit": Variant("email", _plain(email_reddit)),
    "phone": Variant("phone", phone_e164, then=without_plus),
    "phone_e164": Variant("phone", phone_e164),
    "first_name": Variant("first_name", _plain(name)),
    "last_name": Variant("last_name", _plain(name)),
    "first_name_letters": Variant("first_name", _plain(letters)),
    "last_name_letters": Variant("last_name", _plain(letters)),
    "gender": Variant("gender", _plain(gender)),
    "date_of_birth": Variant("date_of_birth", _plain(date_of_birth)),
    "city": Variant("city", _plain(city)),
    "state": Variant("state", _plain(state)),
    "zip": Variant("zip", _plain(zip_code)),
    "country": Variant("country", _plain(country)),
    "external_id": Variant("external_id", _plain(external_id)),
}
"""Every hashed variant by name. A destination lists the ones it reads in `identity_variants`."""


def hash_one(variant: Variant, value: Any, region: str | None) -> str:
    """The variant's SHA-256 hex; an already-hashed value (64 hex) passes through lower-cased."""
    digests, problem = _field_digests(value, ((variant.normalize, (("one", variant.then),)),), region)
    if problem is not None:
        raise problem
    return digests["one"]


Steps = tuple[tuple[Normalizer, tuple[tuple[str, Callable[[str], str] | None], ...]], ...]
"""One field's work: each distinct normalizer once, then every variant name it feeds with its last step."""


def hash_identifiers(
    user: Mapping[str, Any], variants: frozenset[str], default_region: str | None = None
) -> tuple[dict[str, str], list[Problem]]:
    """Hash every wanted variant of the identifiers present in `user`; unusable values become warnings.
    Each field is cleaned once, each normalizer runs once per field and each distinct text is hashed
    once (`phone` and `phone_e164` share one parse; an email the Google and Reddit rules leave
    unchanged, one digest). The result is in variant-name order, the order of the stored `hashed`."""
    region = _region(user, default_region)
    found: dict[str, str] = {}
    warnings: list[Problem] = []
    for field, steps in _plan(variants):
        value = user.get(field)
        if value is None or value == "":
            continue
        digests, problem = _field_digests(value, steps, region)
        found.update(digests)
        if problem is not None:
            warnings.append(Problem(f"/user/{field}", f"{problem}; not sent"))
    return {key: found[key] for key in _order(variants) if key in found}, warnings


def _field_digests(value: Any, steps: Steps, region: str | None) -> tuple[dict[str, str], Unusable | None]:
    """One field's digests by variant name, and the first reason a variant could not be made."""
    text = _text(value if type(value) is str else str(value))
    if len(text) == 64 and HASHED.match(text):
        passed = text.lower()
        return {key: passed for _, keys in steps for key, _ in keys}, None
    digests: dict[str, str] = {}
    by_text: dict[str, str] = {}
    problem: Unusable | None = None
    for normalize, keys in steps:
        try:
            normalized = normalize(text, region)
        except Unusable as exc:
            problem = problem or exc
            continue
        for key, then in keys:
            final = then(normalized) if then is not None else normalized
            if not final:
                problem = problem or Unusable("value is empty after normalization")
                continue
            digest = by_text.get(final)
            if digest is None:
                digest = by_text[final] = sha256(final)
            digests[key] = digest
    return digests, problem


@functools.cache
def _plan(variants: frozenset[str]) -> tuple[tuple[str, Steps], ...]:
    """The wanted variants grouped by field, then by normalizer, each group in variant-name order."""
    fields: dict[str, dict[Normalizer, list[tuple[str, Callable[[str], str] | None]]]] = {}
    for key in sorted(variants):
        variant = VARIANTS[key]
        fields.setdefault(variant.field, {}).setdefault(variant.normalize, []).append((key, variant.then))
    return tuple(
        (field, tuple((normalize, tuple(keys)) for normalize, keys in steps.items()))
        for field, steps in fields.items()
    )


@functools.cache
def _order(variants: frozenset[str]) -> tuple[str, ...]:
    return tuple(sorted(variants))


def _region(user: Mapping[str, Any], default_region: str | None) -> str | None:
    code = user.get("country")
    if isinstance(code, str) and REGION.fullmatch(code) and not HASHED.match(code):
        return code.strip().upper()
    return default_region
