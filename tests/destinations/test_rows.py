"""The field-mapping rows every adapter walks: lookup, emptiness, list rows, pattern checks."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from destinations.rows import SHA256_HEX, Row, compact, each, empty, lookup, to_dict, unmapped

DIGEST = "ab" * 32


def test_lookup_walks_dotted_paths_and_stops_at_non_objects() -> None:
    """A missing key, or a path through a non-object, is None."""
    event = {"user": {"email": "x"}, "ids": "not-an-object"}
    assert lookup(event, "user.email") == "x"
    assert lookup(event, "user.phone") is None
    assert lookup(event, "ids.fbc") is None


def test_compact_keeps_zero_and_false() -> None:
    """None, "", [] and {} go; 0 and False are values."""
    assert compact({"a": None, "b": "", "c": [], "d": {}, "e": 0, "f": False}) == {"e": 0, "f": False}


def test_list_rows_lower_case_digests_and_refuse_raw_values() -> None:
    """A hashed list row sends a lower-cased digest in a 1-element list, and never a raw identifier."""
    row = Row("em", "hashed.email", as_list=True, pattern=SHA256_HEX)
    assert to_dict({"hashed": {"email": DIGEST.upper()}}, [row]) == {"em": [DIGEST]}
    assert to_dict({"hashed": {"email": "joe@example.com"}}, [row]) == {}


def test_pattern_rows_are_not_lower_cased() -> None:
    """Only list rows are lower-cased; a scalar row must match as given."""
    row = Row("id", "ids.x", pattern=re.compile(r"[a-z]+"))
    assert to_dict({"ids": {"x": "ABC"}}, [row]) == {}
    assert to_dict({"ids": {"x": "abc"}}, [row]) == {"id": "abc"}


def test_rows_without_pattern_pass_values_through_in_row_order() -> None:
    """Values go as they are, keyed and ordered by the rows; empty ones are left out."""
    rows = (Row("b", "y"), Row("a", "x"), Row("c", "z"))
    assert list(to_dict({"x": 2, "y": {"k": 1}, "z": ""}, rows).items()) == [("b", {"k": 1}), ("a", 2)]


def test_each_maps_objects_and_drops_the_rest() -> None:
    """Non-objects and items that fill no field are dropped; a non-list is no items."""
    rows = (Row("item_id", "id"),)
    assert each([{"id": "1"}, "junk", {"name": "x"}, {"id": "2"}], rows) == [
        {"item_id": "1"},
        {"item_id": "2"},
    ]
    assert each({"id": "1"}, rows) == []


def test_unmapped_keeps_free_non_empty_entries() -> None:
    """Keys the rows map, and empty values, are left out."""
    assert unmapped({"value": 1, "coupon": "X", "note": ""}, {"value"}) == {"coupon": "X"}


VALUES = st.sampled_from([None, "", [], {}, 0, 0.0, False, "x", [0], {"a": 1}])


@given(st.dictionaries(st.text(max_size=3), VALUES))
def test_compact_and_unmapped_agree_with_empty(body: dict[str, object]) -> None:
    """The inline emptiness test of `compact` and `unmapped` is `empty`, value for value."""
    assert compact(body) == {k: v for k, v in body.items() if not empty(v)}
    assert unmapped(body, {"a"}) == {k: v for k, v in body.items() if k != "a" and not empty(v)}
