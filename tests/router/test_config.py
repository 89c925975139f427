"""Config: loading router.yaml, interpolation, every problem with file:line and YAML path, and sources."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from destinations.base import BaseConfig, Destination, Event, HttpRequest, Payload, base_fields
from router.config import Config, Source, load, parse
from router.errors import ConfigError
from router.secret import Secret
from router.sources import authenticate, bearer

REPO = Path(__file__).resolve().parents[2]
ENV = {"META_TOKEN": "EAAB-test-token"}
SOURCES = """\
sources:
  - id: web
    kind: browser
    key: pk_web_12345
  - id: backend
    kind: server
    secret: sk_backend_0123456789abcdef
"""
META = """\
destinations:
  - id: meta_main
    type: meta
    pixel_id: "123"
    access_token: ${META_TOKEN}
"""


def problems_of(text: str, env: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """(location, message) of every problem in a config that must be rejected."""
    with pytest.raises(ConfigError) as caught:
        parse(textwrap.dedent(text), ENV if env is None else env)
    return [(p.path, p.message) for p in caught.value.problems]


def locations(text: str, env: Mapping[str, str] | None = None) -> list[str]:
    """Only the `file:line: path` locations of every problem."""
    return [path for path, _ in problems_of(text, env)]


# --- the shipped default -------------------------------------------------------------------------


def test_default_config_loads_with_an_empty_environment() -> None:
    """config/router.yaml works on a fresh machine: Meta is present but disabled."""
    config = load(REPO / "config" / "router.yaml", {})
    assert config.destinations == ()
    assert config.disabled == ("meta_main",)
    assert [(s.id, s.kind) for s in config.sources] == [("web", "browser"), ("backend", "server")]
    assert config.sources[0].credential.reveal() == "pk_web_local_dev"
    assert config.server.trusted_proxy_hops == 0
    assert config.default_phone_region == "US"
    assert config.identity_variants() == frozenset()


def test_default_config_enables_meta_from_the_environment() -> None:
    """META_ENABLED=true turns the Meta block on; an empty test code leaves the key out."""
    config = load(REPO / "config" / "router.yaml", {"META_ENABLED": "true", "TRUSTED_PROXY_HOPS": "1"})
    assert [d.id for d in config.destinations] == ["meta_main"]
    assert config.destinations[0].config.test_event_code is None
    assert config.server.trusted_proxy_hops == 1
    assert "email" in config.identity_variants()


def test_minimal_config_builds_typed_settings() -> None:
    """A valid file gives sources with masked credentials and one adapter per destination."""
    config = parse(SOURCES + META, ENV)
    assert [d.type for d in config.destinations] == ["meta"]
    assert config.sources[1].credential == Secret("sk_backend_0123456789abcdef")
    assert "sk_backend" not in repr(config)
    assert "EAAB-test-token" not in repr(config.destinations[0].config)


def test_string_numbers_become_setting_types() -> None:
    """Counts and seconds given as strings (from the environment) become int and float."""
    text = SOURCES + META + "server:\n  trusted_proxy_hops: ${HOPS}\ndispatch:\n  backoff_base: ${BASE}\n"
    config = parse(text, {**ENV, "HOPS": "2", "BASE": "2.5"})
    assert config.server.trusted_proxy_hops == 2
    assert config.dispatch.backoff_base == 2.5


# --- interpolation through the whole pipeline ---------------------------------------------------


def test_interpolation_in_a_config() -> None:
    """${X}, ${X:-default}, booleans and the escape all reach the built config."""
    text = SOURCES.replace("pk_web_12345", "${WEB_KEY:-pk_default_key}") + META + "    enabled: ${ON}\n"
    config = parse(text, {**ENV, "ON": "false"})
    assert config.sources[0].credential.reveal() == "pk_default_key"
    assert config.destinations == ()
    assert config.disabled == ("meta_main",)


def test_pixel_id_digits_stay_a_string() -> None:
    """A pixel id from the environment with a leading zero is not turned into a number."""
    config = parse(SOURCES + META.replace('"123"', "${PIXEL}"), {**ENV, "PIXEL": "0123"})
    assert config.destinations[0].config.pixel_id == "0123"


def test_escaped_reference_in_config() -> None:
    """$${...} is a literal ${...} in the built value."""
    config = parse(SOURCES.replace("pk_web_12345", "pk_$${LIT}") + META, ENV | {"LIT": "no"})
    assert config.sources[0].credential.reveal() == "pk_${LIT}"


def test_empty_default_removes_an_optional_key() -> None:
    """`test_event_code: ${X:-}` leaves the key out, so the schema's minLength does not fire."""
    config = parse(SOURCES + META + "    test_event_code: ${CODE:-}\n", ENV)
    assert config.destinations[0].config.test_event_code is None


def test_missing_variable_is_one_problem_with_line_and_path() -> None:
    """An unset variable is reported once, with file:line and YAML path, and no schema complaint."""
    assert problems_of(SOURCES + META, {}) == [
        ("router.yaml:12: destinations[0].access_token", "environment variable META_TOKEN is not set")
    ]


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ('pixel_id: "123"', 'pixel_id: "${PIXEL}"', "router.yaml:11: destinations[0].pixel_id"),
        ("type: meta", "type: ${TYPE}", "router.yaml:10: destinations[0].type"),
        ("id: meta_main", "id: ${DEST_ID}", "router.yaml:9: destinations[0].id"),
    ],
)
def test_missing_variable_hides_the_schema_complaint_for_its_path(old: str, new: str, path: str) -> None:
    """The empty value of a missing variable does not also fail pattern, registry or type checks."""
    [(where, message)] = problems_of(SOURCES + META.replace(old, new))
    assert where == path
    assert message.endswith("is not set")


def test_missing_boolean_variable_is_one_problem() -> None:
    """A missing `enabled: ${X}` is not also reported as 'must be of type boolean'."""
    assert problems_of(SOURCES + META + "    enabled: ${META_ENABLED}\n") == [
        ("router.yaml:13: destinations[0].enabled", "environment variable META_ENABLED is not set")
    ]


def test_empty_default_in_a_list_is_left_out() -> None:
    """`[${X:-}]` loads as an empty list, like an empty default removes a mapping key."""
    config = parse(
        SOURCES.replace(
            "    key: pk_web_12345\n", '    key: pk_web_12345\n    allowed_origins: ["${ORIGIN:-}"]\n'
        )
        + META,
        ENV,
    )
    assert config.sources[0].allowed_origins == ()


def test_missing_required_key_after_empty_default() -> None:
    """A required key removed by ${X:-} is reported as required at its own line."""
    assert problems_of(SOURCES + META.replace("${META_TOKEN}", "${META_TOKEN:-}"), {}) == [
        ("router.yaml:12: destinations[0].access_token", "is required")
    ]


# --- problems ------------------------------------------------------------------------------------


def test_unknown_destination_type() -> None:
    """A type not in the registry is named with the known ones."""
    [(where, message)] = problems_of(SOURCES + META.replace("type: meta", "type: metta"))
    assert where == "router.yaml:10: destinations[0].type"
    assert "unknown destination type" in message
    assert "meta" in message


def test_duplicate_destination_and_source_ids() -> None:
    """An id used twice in a section is reported at the second use."""
    text = (
        SOURCES + "  - id: web\n    kind: browser\n    key: pk_other_key_1\n" + META + META.split("\n", 1)[1]
    )
    assert problems_of(text) == [
        ("router.yaml:8: sources[2].id", "is used twice"),
        ("router.yaml:16: destinations[1].id", "is used twice"),
    ]


def test_duplicate_source_credentials() -> None:
    """Two sources with the same key or secret could not be told apart."""
    text = SOURCES.replace("pk_web_12345", "sk_backend_0123456789abcdef") + META
    assert problems_of(text) == [
        ("router.yaml:5: sources[1]", "has the same key or secret as another source")
    ]


def test_invalid_yaml_is_one_problem() -> None:
    """A YAML syntax error is reported, not raised as a traceback."""
    [(where, message)] = problems_of("sources: [\n  - id: web\n")
    assert where == "router.yaml"
    assert message.startswith("not valid YAML")


def test_unreadable_file(tmp_path: Path) -> None:
    """A missing file is a ConfigError naming the file."""
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as caught:
        load(missing, {})
    [problem] = caught.value.problems
    assert problem.path == str(missing)
    assert "cannot read" in problem.message


def test_load_names_the_file_in_every_problem(tmp_path: Path) -> None:
    """Problems from load() start with the file's path and line."""
    path = tmp_path / "router.yaml"
    path.write_text(SOURCES + META)
    with pytest.raises(ConfigError) as caught:
        load(path, {})
    assert [p.path for p in caught.value.problems] == [f"{path}:12: destinations[0].access_token"]
    assert str(path) in str(caught.value)


def test_empty_file_is_rejected() -> None:
    """An empty document is one problem at the top level."""
    [(where, message)] = problems_of("")
    assert where == "router.yaml: (top level)"
    assert "object" in message


@pytest.mark.parametrize(
    "url",
    ["http://graph.example.com", "http://10.0.0.5:9000", "ftp://127.0.0.1", "http://localhost.evil.com"],
)
def test_plain_http_base_url_off_loopback_is_rejected(url: str) -> None:
    """Secrets travel in the body: a base_url must be https unless it is loopback."""
    found = problems_of(SOURCES + META + f"    base_url: {url}\n")
    assert (
        "router.yaml:13: destinations[0].base_url",
        "must be https, or http on a loopback address",
    ) in found


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9001", "http://localhost:9001", "http://[::1]:9001", "https://proxy.example.com"],
)
def test_https_or_loopback_base_url_is_accepted(url: str) -> None:
    """Loopback http (tests, sidecar proxies) and any https URL are fine."""
    config = parse(SOURCES + META + f"    base_url: {url}\n", ENV)
    assert config.destinations[0].config.base_url == url


def test_top_level_and_destination_problems_together() -> None:
    """Problems from the router schema and from the adapter's schema come back in one error."""
    text = "server:\n  trusted_proxy_hops: -1\nfoo: 1\n" + SOURCES + META.replace('"123"', '"12ab"')
    text += "    colour: blue\n"
    assert set(locations(text)) == {
        "router.yaml:3: foo",
        "router.yaml:2: server.trusted_proxy_hops",
        "router.yaml:14: destinations[0].pixel_id",
        "router.yaml:16: destinations[0].colour",
    }


def test_disabled_destination_is_still_validated() -> None:
    """A block with enabled: false must still be valid (it is checked at startup, not when enabled)."""
    assert locations(SOURCES + META.replace('"123"', '"x"') + "    enabled: false\n") == [
        "router.yaml:11: destinations[0].pixel_id"
    ]


def test_source_shape_problems() -> None:
    """A browser source needs a key of at least 8 characters, and may not have a secret."""
    text = "sources:\n  - id: Web\n    kind: browser\n    key: short\n    secret: sk_0123456789abcdef\n"
    found = locations(text + "destinations: []\n")
    assert "router.yaml:2: sources[0].id" in found
    assert "router.yaml:4: sources[0].key" in found
    assert "router.yaml:2: sources[0]" in found


def test_missing_sections_are_required() -> None:
    """sources and destinations must both be present."""
    assert locations("queue:\n  url: sqlite:///x.db\n") == [
        "router.yaml: destinations",
        "router.yaml: sources",
    ]


# --- identity variants ---------------------------------------------------------------------------


class _Fake(Destination[BaseConfig]):
    type: ClassVar[str] = "fake"
    api_version: ClassVar[str] = "v0"
    max_batch_size: ClassVar[int] = 10
    max_event_age: ClassVar[float | None] = None
    identity_variants: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def parse_config(cls, block: Mapping[str, Any]) -> BaseConfig:
        return BaseConfig(**base_fields(block))

    def map(self, event: Event, now: float) -> list[Payload]:
        return [Payload({})]

    def build_request(self, batch: Sequence[Payload]) -> HttpRequest:
        return HttpRequest("POST", "https://example.com")


class _EmailPhone(_Fake):
    identity_variants = frozenset({"email", "phone"})


class _E164(_Fake):
    identity_variants = frozenset({"email", "phone_e164", "external_id"})


def test_identity_variants_union_of_enabled_destinations() -> None:
    """The ingest hashes the union of what every enabled destination reads."""

    def make(cls: type[_Fake], name: str) -> _Fake:
        return cls(cls.parse_config({"id": name, "type": "fake"}))

    config = Config(sources=(), destinations=(make(_EmailPhone, "a"), make(_E164, "b")))
    assert config.identity_variants() == frozenset({"email", "phone", "phone_e164", "external_id"})
    assert Config(sources=(), destinations=()).identity_variants() == frozenset()


# --- sources -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "credential"),
    [
        ("Bearer pk_web_123", "pk_web_123"),
        ("bearer pk_web_123", "pk_web_123"),
        ("BEARER   pk_web_123  ", "pk_web_123"),
        ("Basic dXNlcjpwYXNz", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("pk_web_123", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer(header: str | None, credential: str | None) -> None:
    """Only `Bearer <credential>` (scheme in any case) yields a credential."""
    assert bearer(header) == credential


SOURCE_LIST = (
    Source("web", "browser", Secret("pk_web_123")),
    Source("backend", "server", Secret("sk_backend_0123456789")),
)


@pytest.mark.parametrize(
    ("credential", "source"),
    [("pk_web_123", "web"), ("sk_backend_0123456789", "backend"), ("pk_web_12", None), ("pk_web_1234", None)],
)
def test_authenticate(credential: str, source: str | None) -> None:
    """The source whose key or secret equals the credential exactly; anything else is None."""
    found = authenticate(SOURCE_LIST, credential)
    assert (found.id if found else None) == source


@pytest.mark.parametrize("credential", [None, "", "ключ-не-ascii"])
def test_authenticate_rejects_empty_and_foreign(credential: str | None) -> None:
    """No credential or a non-ASCII one authenticates nobody and does not raise."""
    assert authenticate(SOURCE_LIST, credential) is None


def test_max_batch_events_over_500_is_rejected() -> None:
    """server.max_batch_events above the documented 500 is a config problem."""
    assert locations(SOURCES + META + "server:\n  max_batch_events: 5000\n") == [
        "router.yaml:14: server.max_batch_events"
    ]


def test_sqlite_is_refused_on_cloud_run_unless_opted_in() -> None:
    """K_SERVICE set (Cloud Run) + SQLite queue -> a problem explaining why; the opt-in accepts it."""
    source = "sources:\n  - {id: web, kind: browser, key: pk_12345678}\n"
    text = "queue:\n  url: sqlite:///./q.db\n" + source + "destinations: []\n"
    with pytest.raises(ConfigError) as caught:
        parse(text, {"K_SERVICE": "router"})
    (problem,) = caught.value.problems
    assert problem.path.endswith("queue.url")
    assert "Cloud Run" in problem.message and "postgresql" in problem.message
    opted = text.replace("sqlite:///./q.db", "sqlite:///./q.db\n  allow_ephemeral_disk: true")
    assert parse(opted, {"K_SERVICE": "router"}).queue.allow_ephemeral_disk is True
    assert parse(text, {}).queue.url == "sqlite:///./q.db"


def test_retry_window_per_destination_is_capped_inside_the_dedup_window() -> None:
    """retry_window: 30m is used as is; 3d is capped at 47 h; absent falls back to dispatch.retry_window."""
    block = "  - {id: %s, type: meta, pixel_id: '1', access_token: t%s}\n"
    text = (
        "sources:\n  - {id: web, kind: browser, key: pk_12345678}\ndestinations:\n"
        + (block % ("m1", "1")).replace("}", ", retry_window: 30m}")
        + (block % ("m2", "2")).replace("}", ", retry_window: 3d}")
        + block % ("m3", "3")
    )
    config = parse(text, {})
    assert config.retry_window("m1") == 1800
    assert config.retry_window("m2") == 47 * 3600
    assert config.retry_window("m3") == config.dispatch.retry_window == 4 * 3600


def test_cookie_domain_is_read_as_text() -> None:
    """server.cookie_domain (default None) keeps its text value instead of being cast to a number."""
    source = "sources:\n  - {id: web, kind: browser, key: pk_12345678}\n"
    text = "server:\n  cookie_domain: .shop.example.com\n" + source + "destinations: []\n"
    assert parse(text, {}).server.cookie_domain == ".shop.example.com"


def test_queue_options_follow_the_backend() -> None:
    """SQLite gets max_depth only; PostgreSQL also gets pool_max from YAML."""
    source = "sources:\n  - {id: web, kind: browser, key: pk_12345678}\ndestinations: []\n"
    sqlite = parse("queue: {url: 'sqlite:///./q.db', max_depth: 10}\n" + source, {})
    assert sqlite.queue.options() == {"max_depth": 10}
    postgres = parse("queue: {url: 'postgresql://u@h/db', pool_max: 3}\n" + source, {})
    assert postgres.queue.options() == {"max_depth": 1_000_000, "pool_max": 3}
