"""Compiled tables: `Table.fill` gives exactly what the row-by-row `to_dict` gives, for every table."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from types import MappingProxyType, ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from destinations.meta import fields as meta
from destinations.pinterest import fields as pinterest
from destinations.reddit import fields as reddit
from destinations.rows import SHA256_HEX, Row, each, to_dict
from destinations.snap import fields as snap
from destinations.table import Table
from destinations.tiktok import fields as tiktok

MODULES: tuple[ModuleType, ...] = (meta, pinterest, reddit, snap, tiktok)


def tables() -> Iterator[tuple[str, Table[Any]]]:
    """Every compiled table the adapters use, by `platform.NAME`."""
    for module in MODULES:
        for name, value in vars(module).items():
            if isinstance(value, Table):
                yield f"{module.__name__.split('.')[1]}.{name}", value


TABLES = dict(tables())
PATHS = sorted({row.path for table in TABLES.values() for row in table})
DIGEST = "0123456789abcdef" * 4

leaves = st.one_of(
    st.sampled_from([None, "", [], {}, 0, 0.0, False, True, DIGEST, DIGEST.upper(), " " + DIGEST]),
    st.sampled_from(["https://shop.example/p?x=1", "fb.1.1700000000000.AbC", "203.0.113.5", "USD", "us"]),
    st.sampled_from(["2001:db8::1", "Mozilla/5.0", "x" * 600, "ABC", "ttclid-1", "\u00e9l\u00e8ve"]),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.lists(st.text(max_size=4), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2).map(MappingProxyType),
)


def _tree(paths: list[str], draw: st.DrawFn) -> dict[str, Any]:
    """An event-like object holding some of `paths`; parents sometimes a non-object or a Mapping."""
    root: dict[str, Any] = {}
    for path in paths:
        if not draw(st.booleans()):
            continue
        node = root
        *parents, last = path.split(".")
        for part in parents:
            child = node.get(part)
            if child is None:
                child = draw(st.sampled_from([{}, {}, {}, "not-an-object", [1]]))
                node[part] = child
            if not isinstance(child, dict):
                break
            node = child
        else:
            node[last] = draw(leaves)
    return root


@st.composite
def events(draw: st.DrawFn) -> Any:
    """Mostly objects over every path the tables read; sometimes a read-only Mapping, or no object."""
    tree = _tree(PATHS, draw)
    return draw(st.sampled_from([tree, tree, tree, MappingProxyType(tree), "x", None, [tree]]))


@pytest.mark.parametrize("name", sorted(TABLES))
@settings(max_examples=150, deadline=None)
@given(source=events())
def test_fill_is_to_dict_row_by_row(name: str, source: Any) -> None:
    """For every platform table, compiled and row-by-row agree on values, keys and key order."""
    table = TABLES[name]
    expected = to_dict(source, tuple(table))  # a plain tuple: the row-by-row walk
    got = table.fill(source)
    assert list(got.items()) == list(expected.items())
    assert to_dict(source, table) == expected


@dataclass(frozen=True, slots=True)
class Doubled:
    """A row type of its own: `to_dict` and the table call its `value`, even for a missing value."""

    key: str
    path: str
    as_list: bool = False

    def value(self, found: Any) -> Any:
        return "missing" if found is None else found * 2


def test_a_table_calls_other_row_types_and_inlines_rows() -> None:
    """Three-level paths, shared parents, a custom row type, list rows and patterns in one table."""
    table = Table[Any](
        Row("em", "a.b.email", as_list=True, pattern=SHA256_HEX),
        Row("n", "a.b.n"),
        Doubled("d", "a.c"),
        Row("code", "top", pattern=re.compile(r"[a-z]+")),
    )
    assert table.fill({"a": {"b": {"email": DIGEST.upper(), "n": 0}, "c": 2}, "top": "ABC"}) == {
        "em": [DIGEST],
        "n": 0,
        "d": 4,
    }
    assert table.fill({}) == {"d": "missing"}
    assert table.source.count(".get('a')") == 1  # the shared parent is fetched once


def test_each_uses_the_compiled_table() -> None:
    """`each` over a list gives what it gives with the plain rows."""
    items = [{"id": "p1", "quantity": 2, "price": 9.5}, "not-an-object", {}, {"id": 7}]
    assert each(items, meta.CONTENT) == each(items, tuple(meta.CONTENT))
    assert each(items, meta.CONTENT) == [{"id": "p1", "quantity": 2, "item_price": 9.5}, {"id": 7}]


def test_a_table_is_still_its_tuple_of_rows() -> None:
    """fields.py code that iterates, indexes or concatenates rows keeps working."""
    assert isinstance(meta.USER_DATA, tuple)
    assert meta.USER_DATA[0].key == "em"
    assert len(meta.USER_DATA + meta.EVENT) == len(meta.USER_DATA) + len(meta.EVENT)


def test_cast_check_rows_are_inlined() -> None:
    """TikTok's row type (cast, then check) is written out, not called through `value`."""
    for table in (tiktok.USER, tiktok.PROPERTIES, tiktok.CONTENT, tiktok.PAGE):
        assert ".value(" not in table.source
        assert "check0(value)" in table.source
