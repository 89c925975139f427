"""The OpenAPI document: built from the event schema, served only on opt-in, in sync with the app's routes."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

from starlette.routing import Route
from starlette.testclient import TestClient

from router.app import create_app
from router.config import Config, parse
from router.normalize import SCHEMA
from router.openapi import document
from tests.conftest import config_text

METHODS = frozenset({"get", "post", "put", "patch", "delete"})


def _routes(config: Config) -> set[tuple[str, str]]:
    """(path, method) of every route the app serves, HEAD and OPTIONS left out."""
    app = create_app(config)
    return {
        (route.path, method.lower())
        for route in app.routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method.lower() in METHODS
    }


def _documented() -> set[tuple[str, str]]:
    """(path, method) of every operation in the document."""
    return {(path, m) for path, item in document()["paths"].items() for m in item if m in METHODS}


def test_document_and_routes_are_in_sync(make_config: Callable[..., Config]) -> None:
    """Every route has a path in the document and every documented path is a route (openapi on)."""
    config = make_config(extra="admin:\n  token: admin-token-of-enough-length\n")
    served = _routes(_with_openapi(config))
    assert served - _documented() == set(), "routes missing from the OpenAPI document"
    assert _documented() - served == set(), "documented paths the app does not serve"


def test_openapi_json_is_off_by_default(make_config: Callable[..., Config]) -> None:
    """Without server.openapi the document is not served."""
    with TestClient(create_app(make_config())) as client:
        assert client.get("/openapi.json").status_code == 404


def test_openapi_json_is_served_when_enabled(make_config: Callable[..., Config]) -> None:
    """server.openapi: true serves the document, with the canonical event schema embedded."""
    config = _with_openapi(make_config())
    with TestClient(create_app(config)) as client:
        answer = client.get("/openapi.json")
    assert answer.status_code == 200
    body = answer.json()
    assert body["openapi"].startswith("3.1")
    event = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert body["components"]["schemas"]["Event"]["properties"].keys() == event["properties"].keys()
    assert "$defs" not in json.dumps(body)


def test_server_openapi_key_is_accepted_by_the_config_schema(make_config: Callable[..., Config]) -> None:
    """`server.openapi: true` validates and reaches ServerSettings."""
    text = config_text(SCHEMA.parent / "unused.db").replace("server:\n", "server:\n  openapi: true\n", 1)
    assert parse(text, {}).server.openapi is True
    assert make_config().server.openapi is False


def _with_openapi(config: Config) -> Config:
    """The same config with server.openapi on."""
    return dataclasses.replace(config, server=dataclasses.replace(config.server, openapi=True))
