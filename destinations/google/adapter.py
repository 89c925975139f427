"""Google conversions: the Data Manager API (default) or the Google Ads API, chosen per destination.

- `api: data_manager`: `POST datamanager.googleapis.com/v1/events:ingest`, up to 2,000 events for one
  conversion action (its numeric id is the `productDestinationId`), fail-fast errors.
- `api: google_ads`: `POST googleads.googleapis.com/v26/customers/{id}:uploadClickConversions`
  (`mode: click`) or `:uploadConversionAdjustments` with ENHANCEMENT rows (`mode: enhancement`,
  enhanced conversions for web), up to 2,000 rows, `partialFailure: true`, per-row errors.

Google has no event names: `conversions` maps canonical events to conversion actions, and an event
without one is skipped. Bodies are built in bodies.py, responses classified in outcomes.py; the one
I/O piece, OAuth tokens, lives in auth.py and is handed to the dispatcher by `authenticator()`.
No developer token: it was sunset on 2026-09-09 and the servers ignore it (fact sheet A1).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from mypy_extensions import mypyc_attr

from destinations import rows
from destinations.base import (
    BaseConfig,
    BatchDecision,
    Destination,
    Event,
    EventError,
    HttpRequest,
    HttpResponse,
    Payload,
    SkipEvent,
    base_fields,
    secret_of,
)
from destinations.google import auth, bodies, fields, outcomes
from router.secret import Secret

ADS_API_VERSION: Final = "v26"
# google-ads 34.0.0 (installed as the test oracle) ships v23-v26; v26 is the newest, and the docs of
# v23-v25 carry a "latest is v26" banner (fact sheet section 0, checked November 2026).
DM_API_VERSION: Final = "v1"
# Data Manager has one version, v1 (google-ads-datamanager 0.9.4 REST transport: /v1/events:ingest).
DM_URL: Final = "https://datamanager.googleapis.com"
ADS_URL: Final = "https://googleads.googleapis.com"
MAX_BATCH: Final = 2000
"""2,000 events per events:ingest, conversions per uploadClickConversions and adjustments per
uploadConversionAdjustments (Data Manager limits page; TOO_MANY_CONVERSIONS_IN_REQUEST and
TOO_MANY_ADJUSTMENTS_IN_REQUEST "fewer than 2001" in the v26 error enums)."""
DAY: Final = 86_400
MAX_EVENT_AGE: Final = 90 * DAY
"""A click conversion counts only inside the action's click-through window, at most 90 days (Google
Ads Help "About conversion windows", support.google.com/google-ads/answer/3123169; older rows fail
with EXPIRED_EVENT). Data Manager ingests into the same conversion actions, so the same limit."""
MAX_ENHANCEMENT_AGE: Final = 54 * DAY
"""Enhancing a conversion older than 54 days fails with CONVERSION_EXPIRED (v26 error enum)."""
ACTION_NAME: Final = re.compile(r"customers/(\d+)/conversionActions/(\d+)")

Api = Literal["data_manager", "google_ads"]
Mode = Literal["click", "enhancement"]


@mypyc_attr(native_class=False)  # as BaseConfig: a Python class even when compiled
@dataclass(frozen=True, slots=True, kw_only=True)
class GoogleConfig(BaseConfig):
    """A `type: google` destination block; `client_secret`/`refresh_token` unset means ADC."""

    customer_id: str
    conversions: Mapping[str, tuple[str, ...]]
    """Canonical event name -> conversion action resource names (`customers/1/conversionActions/2`)."""
    api: Api = "data_manager"
    mode: Mode = "click"
    login_customer_id: str | None = None
    client_id: str | None = None
    client_secret: Secret | None = None
    refresh_token: Secret | None = None
    token_url: str = auth.TOKEN_URL
    validate_only: bool = False


class GoogleDestination(Destination[GoogleConfig]):
    """Google Ads conversions through the Data Manager API or the Google Ads API, with OAuth2 tokens."""

    type = "google"
    api_version = ADS_API_VERSION
    max_batch_size = MAX_BATCH
    max_event_age = float(MAX_EVENT_AGE)
    identity_variants = fields.IDENTITY_VARIANTS

    def __init__(self, config: GoogleConfig) -> None:
        super().__init__(config)
        self._auth: auth.GoogleAuthenticator | None = None

    @classmethod
    def parse_config(cls, block: Mapping[str, Any]) -> GoogleConfig:
        """The typed config from a validated YAML block."""
        customer = digits(block.get("customer_id") or block["operating_account_id"])
        oauth = "refresh_token" in block
        return GoogleConfig(
            **base_fields(block),
            customer_id=customer,
            conversions={name: actions(customer, spec) for name, spec in block["conversions"].items()},
            api=block.get("api", "data_manager"),
            mode=block.get("mode", "click"),
            login_customer_id=digits(block["login_customer_id"]) if block.get("login_customer_id") else None,
            client_id=str(block["client_id"]) if oauth else None,
            client_secret=secret_of(block, "client_secret") if oauth else None,
            refresh_token=secret_of(block, "refresh_token") if oauth else None,
            token_url=block.get("token_url", auth.TOKEN_URL),
            validate_only=block.get("validate_only") is True,
        )

    # -- map ---------------------------------------------------------------------------------------

    def map(self, event: Event, now: float) -> list[Payload]:
        """One payload per conversion action the event maps to; SkipEvent when it maps to none."""
        targets = self._actions(event)
        self._check_age(event, now)
        return [self._payload(event, now, action) for action in targets]

    def _actions(self, event: Event) -> tuple[str, ...]:
        canonical = self.canonical_name(event)
        name = self.config.event_map.get(canonical, canonical)
        targets = self.config.conversions.get(name)
        if not targets:
            raise SkipEvent(f"event {name!r} has no conversion action in `conversions`")
        return targets

    def _check_age(self, event: Event, now: float) -> None:
        enhancement = self.config.api == "google_ads" and self.config.mode == "enhancement"
        limit = MAX_ENHANCEMENT_AGE if enhancement else MAX_EVENT_AGE
        if now - int(event["timestamp_ms"]) / 1000 > limit:
            raise EventError(f"event is older than {limit // DAY} days; Google would refuse it")

    def _payload(self, event: Event, now: float, action: str) -> Payload:
        if self.config.api == "data_manager":
            return Payload(bodies.dm_event(event, now), batch_key=action_id(action))
        if self.config.mode == "enhancement":
            return Payload(bodies.enhancement(event, now, action))
        return Payload(bodies.click_conversion(event, now, action))

    # -- build_request -----------------------------------------------------------------------------

    def build_request(self, batch: Sequence[Payload]) -> HttpRequest:
        """The API's POST; the bearer token is added at send time by the authenticator."""
        if self.config.api == "data_manager":
            return self._data_manager_request(batch)
        return self._ads_request(batch)

    def _data_manager_request(self, batch: Sequence[Payload]) -> HttpRequest:
        """POST /v1/events:ingest: one destination (the batch's conversion action), HEX hashes."""
        body = {
            "destinations": [self._destination(batch[0].batch_key)],
            "encoding": "HEX",
            "events": [payload.body for payload in batch],
            **({"validateOnly": True} if self.config.validate_only else {}),
        }
        url = f"{self.api_base(DM_URL)}/{DM_API_VERSION}/events:ingest"
        return HttpRequest("POST", url, headers={"Content-Type": "application/json"}, json=body)

    def _destination(self, product_id: str) -> dict[str, Any]:
        account = {"accountType": "GOOGLE_ADS", "accountId": self.config.customer_id}
        login = self.config.login_customer_id
        return rows.compact(
            {
                "operatingAccount": account,
                "loginAccount": {"accountType": "GOOGLE_ADS", "accountId": login} if login else None,
                "productDestinationId": product_id,
            }
        )

    def _ads_request(self, batch: Sequence[Payload]) -> HttpRequest:
        """POST /v26/customers/{id}:upload...; `login-customer-id` when reached through a manager."""
        enhancement = self.config.mode == "enhancement"
        method, rows = (
            ("uploadConversionAdjustments", "conversionAdjustments")
            if enhancement
            else ("uploadClickConversions", "conversions")
        )
        body = {
            rows: [payload.body for payload in batch],
            "partialFailure": True,
            **({"validateOnly": True} if self.config.validate_only else {}),
        }
        headers = {"Content-Type": "application/json"}
        if self.config.login_customer_id:
            headers["login-customer-id"] = self.config.login_customer_id
        url = f"{self.api_base(ADS_URL)}/{ADS_API_VERSION}/customers/{self.config.customer_id}:{method}"
        return HttpRequest("POST", url, headers=headers, json=body)

    # -- classify and auth -------------------------------------------------------------------------

    def classify(self, response: HttpResponse, batch: Sequence[Payload]) -> BatchDecision:
        """Data Manager: fail-fast, bisect on record errors. Ads API: one decision per row."""
        if self.config.api == "data_manager":
            return outcomes.classify_data_manager(response)
        return outcomes.classify_ads(response, batch)

    def authenticator(self) -> auth.GoogleAuthenticator:
        """OAuth2 tokens from the refresh token, or from Application Default Credentials."""
        if self._auth is None:
            self._auth = auth.GoogleAuthenticator(self._credentials(), timeout=self.config.timeout)
        return self._auth

    def _credentials(self) -> auth.CredentialsFactory:
        config, scopes = self.config, [auth.SCOPES[self.config.api]]
        if config.client_secret is None or config.refresh_token is None or config.client_id is None:
            return auth.default_credentials(scopes)
        return auth.refresh_token_credentials(
            config.client_id, config.client_secret, config.refresh_token, scopes, config.token_url
        )


def digits(value: Any) -> str:
    """A Google customer id without hyphens: `123-456-7890` -> `1234567890`."""
    return str(value).replace("-", "").strip()


def actions(customer: str, spec: Any) -> tuple[str, ...]:
    """Conversion action resource names from a YAML value: a resource name, an id, or a list of them."""
    items = spec if isinstance(spec, list) else [spec]
    return tuple(dict.fromkeys(resource_name(customer, item) for item in items))


def resource_name(customer: str, item: Any) -> str:
    """`customers/{customer}/conversionActions/{id}` for a bare id; a resource name as given."""
    text = str(item).strip()
    return text if ACTION_NAME.fullmatch(text) else f"customers/{customer}/conversionActions/{text}"


def action_id(resource: str) -> str:
    """The numeric conversion action id of a resource name (Data Manager's productDestinationId)."""
    return resource.rsplit("/", 1)[-1]
