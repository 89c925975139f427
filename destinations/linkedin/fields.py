"""LinkedIn Conversions API mapping rows: `user.userIds[]` entries (idType <- canonical path) and value rules.

LinkedIn takes no event names: each canonical event is sent to the conversion rule the YAML block maps it
to (`conversions: {purchase: 123456}`), so there is no event-name table here. Hashing is done at ingest
(router/identity.py); rows only place the stored `hashed.*` values and the raw ids LinkedIn wants raw.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

CONVERSION_URN: Final = "urn:lla:llaPartnerConversion:{rule_id}"
"""`conversion` of an event: the rule must have `conversionMethod: CONVERSIONS_API` (fact sheet B2)."""

SHA256_HEX: Final = re.compile(r"[0-9a-f]{64}")
RAW_ID: Final = re.compile(r"[\x21-\x7e]{1,512}")
"""A partner or click id as LinkedIn wants it: raw, printable ASCII without spaces (our contract choice)."""
CURRENCY: Final = re.compile(r"[A-Z]{3}")


@dataclass(frozen=True, slots=True)
class UserId:
    """One `user.userIds[]` entry `{idType, idValue}` filled from one canonical path.

    A value that does not fully match `pattern` is left out: a raw email under `hashed.email` can never
    be sent, and a malformed partner id does not make LinkedIn reject the whole batch (422).
    """

    id_type: str
    path: str
    pattern: re.Pattern[str]


USER_IDS: Final[tuple[UserId, ...]] = (
    # Trimmed, lower-cased, then SHA-256 hex: LinkedIn's own sGTM template `hashData` (no gmail rule).
    UserId("SHA256_EMAIL", "hashed.email", SHA256_HEX),
    # The li_fat_id click id (landing-page parameter or first-party cookie), unhashed.
    UserId("LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID", "ids.li_fat_id", RAW_ID),
    # Partner ids, unhashed, from free properties. The spelling is ACXIOM (not "AXCIOM").
    UserId("ACXIOM_ID", "properties.acxiom_id", RAW_ID),
    # Legacy: still in LinkedIn's 2025 tag template and in RudderStack; current acceptance unconfirmed.
    UserId("ORACLE_MOAT_ID", "properties.oracle_moat_id", RAW_ID),
)
"""`user.userIds[]` rows, in the order RudderStack sends them (SHA256_EMAIL first).

`user.userInfo` has no rows, by design. LinkedIn takes first name, last name, company and title there as
plain text and requires both names whenever `userInfo` is sent (422 otherwise, fact sheet B2/B9), but the
router hashes names at ingest and never stores them raw (privacy). So `userInfo` with only `countryCode`
would be refused, and LinkedIn matches on SHA256_EMAIL, li_fat_id and the partner ids instead.
"""

ID_TYPES: Final = frozenset(row.id_type for row in USER_IDS)

IDENTITY_VARIANTS: Final[frozenset[str]] = frozenset(
    row.path.removeprefix("hashed.") for row in USER_IDS if row.path.startswith("hashed.")
)
"""The router/identity.py variants the rows above read: `email` (trimmed, lower-cased)."""
