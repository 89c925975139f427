"""The hot-path JSON codec reads and writes exactly what the standard library would."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router import jsoncodec

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=500, deadline=None)
@given(DOCUMENTS)
def test_round_trips_exactly_as_the_standard_library(document: Any) -> None:
    """Big integers, lone surrogates, any text, floats: loads(dumps(x)) == json's round trip, same types."""
    expected = json.loads(json.dumps(document))
    got = jsoncodec.loads(jsoncodec.dumps(document))
    assert got == expected
    assert json.dumps(got) == json.dumps(expected)  # 10**20 stays an int, 1.0 stays a float


def test_the_corners_orjson_differs_on() -> None:
    """A 20-digit integer, a 64-bit edge, a lone surrogate and non-ASCII text."""
    for document in (
        {"id": 12345678901234567890123},
        {"n": 2**64 - 1},
        {"n": -(2**63) - 1},  # 19 digits, below int64: orjson would give a float
        {"n": -(2**63)},
        {"s": "\ud800"},
        {"s": "é€😀"},
    ):
        assert jsoncodec.loads(jsoncodec.dumps(document)) == document
        assert jsoncodec.loads(json.dumps(document)) == document
    assert isinstance(jsoncodec.loads(b'{"a": 100000000000000000000}')["a"], int)
    assert jsoncodec.dumps_text({"a": [1, "x"]}) == '{"a":[1,"x"]}'


def test_nan_and_infinities_are_an_error_not_a_null() -> None:
    """orjson would write null; the codec raises ValueError as json.dumps(allow_nan=False) does."""
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError):
            jsoncodec.dumps({"value": bad})
    assert jsoncodec.dumps({"value": None}) == b'{"value":null}'


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


@pytest.mark.parametrize("text", ['{"v": NaN}', "[Infinity]", '{"a": [-Infinity]}'])
def test_constants_reach_parse_constant_as_with_json(text: str) -> None:
    """orjson refuses NaN and the infinities; `loads` then parses with `json`, which asks parse_constant."""
    with pytest.raises(ValueError, match="is not JSON"):
        jsoncodec.loads(text, parse_constant=_refuse)
    assert json.dumps(jsoncodec.loads(text)) == json.dumps(json.loads(text))


@given(DOCUMENTS)
def test_loads_with_parse_constant_is_json_loads(document: Any) -> None:
    """Documents without constants parse the same with or without a parse_constant."""
    text = json.dumps(document)
    assert jsoncodec.loads(text, parse_constant=_refuse) == json.loads(text, parse_constant=_refuse)
