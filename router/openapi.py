"""OpenAPI: the 3.1 document of every endpoint, built from the event schema, served at /openapi.json."""

from __future__ import annotations

import json
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from router import ga4, segment
from router.normalize import SCHEMA

Schema = dict[str, Any]
PATH: Final = "/openapi.json"
EVENT_REF: Final = "#/components/schemas/Event"


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _rebased(node: Any) -> Any:
    """The event schema with `#/$defs/x` references pointing at `#/components/schemas/Event_x`."""
    if isinstance(node, dict):
        return {
            k: (v.replace("#/$defs/", "#/components/schemas/Event_") if k == "$ref" else _rebased(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rebased(v) for v in node]
    return node


def _components() -> Schema:
    """The canonical event (router/schema/event.schema.json) and the answers' shapes."""
    event: Schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    defs = event.pop("$defs", {})
    for key in ("$schema", "$id"):
        event.pop(key, None)
    schemas: Schema = {"Event": _rebased(event)}
    schemas.update({f"Event_{name}": _rebased(value) for name, value in defs.items()})
    problem = {"type": "object", "properties": {"path": {"type": "string"}, "message": {"type": "string"}}}
    schemas["Error"] = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            }
        },
    }
    schemas["Result"] = {
        "type": "object",
        "required": ["index", "status"],
        "properties": {
            "index": {"type": "integer", "minimum": 0},
            "status": {"enum": ["accepted", "duplicate", "rejected", "skipped"]},
            "event_id": {"type": "string"},
            "errors": {"type": "array", "items": problem},
        },
    }
    schemas["Results"] = {
        "type": "object",
        "required": ["results"],
        "properties": {"results": {"type": "array", "items": _ref("Result")}},
    }
    schemas["Batch"] = {
        "type": "object",
        "required": ["events"],
        "additionalProperties": False,
        "properties": {"events": {"type": "array", "minItems": 1, "maxItems": 500, "items": _ref("Event")}},
    }
    schemas["Beacon"] = {
        "type": "object",
        "required": ["key", "events"],
        "properties": {"key": {"type": "string"}, "events": {"type": "array", "items": _ref("Event")}},
    }
    schemas["SegmentMessage"] = {
        "type": "object",
        "description": "A Segment call (track, page, identify, screen, group, alias) or a batch.",
        "properties": {
            "type": {"type": "string"},
            "event": {"type": "string"},
            "userId": {"type": "string"},
            "anonymousId": {"type": "string"},
            "messageId": {"type": "string"},
            "properties": {"type": "object"},
            "traits": {"type": "object"},
            "context": {"type": "object"},
            "batch": {"type": "array", "items": {"type": "object"}},
        },
    }
    schemas["SegmentError"] = {
        "type": "object",
        "required": ["success", "code", "message"],
        "properties": {
            "success": {"const": False},
            "code": {"type": "string"},
            "message": {"type": "string"},
        },
    }
    schemas["SegmentResults"] = {
        "type": "object",
        "required": ["success"],
        "properties": {"success": {"const": True}, "results": {"type": "array", "items": {"type": "object"}}},
    }
    return schemas


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _text(media_type: str, description: str) -> Schema:
    return {"description": description, "content": {media_type: {"schema": {"type": "string"}}}}


def _stream() -> Schema:
    """Server-sent events: `id`, `event` (the record's kind) and one JSON `data` line each."""
    fields = {name: {"type": "string"} for name in ("id", "event", "data")}
    return {
        "description": "the records",
        "content": {"text/event-stream": {"schema": {"type": "object", "properties": fields}}},
    }


def _errors(*statuses: str, schema: str = "Error") -> dict[str, Schema]:
    return {s: _json(_ref(schema), "the request was refused; the message says what to fix") for s in statuses}


def _body(schema: Schema, *media_types: str) -> Schema:
    return {"required": True, "content": {m: {"schema": schema} for m in media_types}}


INGEST_ERRORS: Final = ("400", "401", "403", "413", "415", "429", "503")
ADMIN_ERRORS: Final = ("401", "404")


def _hit_body(method: str) -> Schema:
    """POST /g/collect carries hits as text lines; GET carries one in the query."""
    return {"requestBody": _body({"type": "string"}, "text/plain")} if method == "post" else {}


def _ingest() -> dict[str, Schema]:
    events = {
        "post": {
            "summary": "Send one canonical event or a batch of them",
            "security": [{"sourceBearer": []}],
            "requestBody": _body({"oneOf": [_ref("Event"), _ref("Batch")]}, "application/json"),
            "responses": {"202": _json(_ref("Results"), "one result per event"), **_errors(*INGEST_ERRORS)},
        }
    }
    collect = {
        "post": {
            "summary": "Beacon from the site tag (tag.js) with a browser source's public key",
            "requestBody": _body(_ref("Beacon"), "application/json", "text/plain"),
            "responses": {"200": _json(_ref("Results"), "one result per event"), **_errors(*INGEST_ERRORS)},
        }
    }
    hit = {
        "204": {"description": "every hit was stored"},
        "202": _json(_ref("Results"), "a hit was rejected"),
    }
    tid = {"name": "tid", "in": "query", "required": True, "schema": {"type": "string"}}
    en = {"name": "en", "in": "query", "required": False, "schema": {"type": "string"}}
    g_collect = {
        method: {
            "summary": "GA4 Measurement Protocol hits from gtag.js",
            "parameters": [tid, en],
            **_hit_body(method),
            "responses": {**hit, **_errors("400", "401", "403", "413", "429", "503")},
        }
        for method in ("get", "post")
    }
    paths: dict[str, Schema] = {"/v1/events": events, "/collect": collect, ga4.PATH: g_collect}
    for path, kind in segment.PATHS.items():
        paths[path] = {
            "post": {
                "summary": f"Segment Tracking API: {kind}",
                "security": [{"segmentBasic": []}],
                "requestBody": _body(_ref("SegmentMessage"), "application/json", "text/plain"),
                "responses": {
                    "200": _json(_ref("SegmentResults"), "stored; one result per message"),
                    **_errors(*INGEST_ERRORS, schema="SegmentError"),
                },
            }
        }
    key = {"name": "write_key", "in": "path", "required": True, "schema": {"type": "string"}}
    paths[segment.SETTINGS_PATH] = {
        "get": {
            "summary": "Settings analytics.js fetches before it sends anything",
            "parameters": [key],
            "responses": {
                "200": _json({"type": "object"}, "the source's settings"),
                **_errors("400", "403", "404", schema="SegmentError"),
            },
        }
    }
    return paths


def _operations() -> dict[str, Schema]:
    def get(summary: str, responses: dict[str, Schema], **extra: Any) -> Schema:
        return {"get": {"summary": summary, "responses": responses, **extra}}

    limit = {"name": "limit", "in": "query", "schema": {"type": "string", "pattern": "^[0-9]{1,6}$"}}
    follow = {"name": "follow", "in": "query", "schema": {"enum": ["0", "1"]}}
    admin: list[dict[str, list[str]]] = [{"adminBearer": []}]
    return {
        "/healthz": get("Liveness", {"200": _json({"type": "object"}, "the process is up")}),
        "/readyz": get(
            "Readiness: queue open and dispatcher running",
            {"200": _json({"type": "object"}, "ready"), "503": _json({"type": "object"}, "not ready")},
        ),
        "/metrics": get("Prometheus exposition", {"200": _text("text/plain", "metrics")}),
        "/admin/stats": get(
            "Deliveries and match quality per destination",
            {"200": _json({"type": "object"}, "the report"), **_errors(*ADMIN_ERRORS)},
            security=admin,
        ),
        "/admin/events/stream": get(
            "Debug records as server-sent events (history, then live unless follow=0)",
            {"200": _stream(), **_errors(*ADMIN_ERRORS)},
            security=admin,
            parameters=[follow, limit],
        ),
        "/tag.js": get(
            "The site tag",
            {"200": _text("text/javascript", "the tag"), "304": {"description": "unchanged (ETag)"}},
        ),
        "/debug": get("The debug view", {"200": _text("text/html", "the page"), **_errors("404")}),
        "/debug/debug.js": get(
            "The debug view's script", {"200": _text("text/javascript", "the script"), **_errors("404")}
        ),
        PATH: get("This document", {"200": _json({"type": "object"}, "OpenAPI 3.1")}),
    }


def document() -> Schema:
    """The OpenAPI 3.1 document of every ingest and admin endpoint."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "adrouter",
            "version": "1",
            "description": "Server-side router for ad conversions.",
        },
        "paths": {**_ingest(), **_operations()},
        "components": {
            "schemas": _components(),
            "securitySchemes": {
                "sourceBearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a source's key or secret",
                },
                "segmentBasic": {"type": "http", "scheme": "basic", "description": "the write key as user"},
                "adminBearer": {"type": "http", "scheme": "bearer", "description": "admin.token"},
            },
        },
    }


def routes(enabled: bool) -> list[BaseRoute]:
    """GET /openapi.json when `server.openapi: true`; nothing otherwise."""
    if not enabled:
        return []
    body = document()

    async def endpoint(_: Request) -> JSONResponse:
        return JSONResponse(body)

    return [Route(PATH, endpoint, methods=["GET"])]
