"""The ingest's answers: the same bytes as Starlette's JSONResponse, and a lone surrogate does not fail."""

from __future__ import annotations

import json

from starlette.responses import JSONResponse

from router import answers


def test_same_body_as_starlettes_json_response() -> None:
    results = [{"index": 0, "status": "accepted", "event_id": "évé-1", "value": 12.5, "n": 2**63 - 1}]
    assert answers.accepted(results).body == JSONResponse({"results": results}, 202).body
    error = answers.error(400, "invalid_event", "bad €")
    assert error.body == JSONResponse({"error": {"code": "invalid_event", "message": "bad €"}}).body
    assert error.status_code == 400


def test_a_lone_surrogate_in_an_echoed_id_is_escaped() -> None:
    answer = answers.accepted([{"event_id": "a\ud800b"}])
    assert json.loads(answer.body) == {"results": [{"event_id": "a\ud800b"}]}
