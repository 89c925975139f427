"""A table of mapping rows, compiled once into one function that fills a platform object from an event.

`rows.to_dict` walks rows one by one: per row a path lookup, an emptiness check and the row's `value`,
five calls or so, 170 rows per event across the seven platforms. A `Table` is still the tuple of rows
a fields.py reads as (it is a tuple), but it also carries `fill`: the same walk written out as straight
Python source when the table is defined, in the way fastjsonschema compiles a schema. Each parent
object (`user`, `hashed`, `properties`) is fetched once, a `rows.Row` is inlined (its pattern's
`fullmatch` bound in advance), and any other row type is called through its own `value`. `fill(x)` is
`to_dict(x, rows)` exactly; tests/destinations/test_table.py checks that on generated events.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final, Generic, Protocol, TypeGuard, TypeVar

from destinations import fills
from destinations.rows import CONTAINERS, Field, Row

F = TypeVar("F", bound=Field)
Fill = Callable[[Any], dict[str, Any]]

NOTHING: Final[Mapping[str, Any]] = MappingProxyType({})
"""Stands for a parent that is missing or not an object: every `.get` on it gives None."""


class Table(tuple[F, ...], Generic[F]):
    """Rows in platform order, plus `fill`, their compiled `to_dict`. Source kept in `source`."""

    fill: Fill
    source: str

    def __new__(cls, *rows: F) -> Table[F]:
        table = super().__new__(cls, rows)
        table.source = _source(table)
        table.fill = _compiled(table, table.source)
        return table


def digest(source: str) -> str:
    """The key of a table's source in destinations/fills.py."""
    return hashlib.sha256(source.encode()).hexdigest()


def _compiled(rows: tuple[Field, ...], source: str) -> Fill:
    namespace: dict[str, Any] = {"Mapping": Mapping, "NOTHING": NOTHING, "CONTAINERS": CONTAINERS}
    for index, row in enumerate(rows):
        namespace[f"row{index}"] = row
        if type(row) is Row and row.pattern is not None:
            namespace[f"match{index}"] = row.pattern.fullmatch
        if _checked(row):
            namespace[f"check{index}"] = row.check
            namespace[f"cast{index}"] = row.cast
    maker = fills.MAKERS.get(digest(source))
    if maker is not None:  # the same source, rendered ahead as a module mypyc can compile
        return maker(namespace)
    exec(compile(source, "<destinations.table>", "exec"), namespace)  # our own rows, never input
    fill: Fill = namespace["fill"]
    return fill


def _source(rows: tuple[Field, ...]) -> str:
    """`def fill(source)`: parents first, then one block per row, in row order."""
    parents = _parents(rows)
    lines = [
        "def fill(source):",
        "    if type(source) is not dict and not isinstance(source, Mapping):",
        "        source = NOTHING",
        "    out = {}",
    ]
    for prefix, name in parents.items():
        holder = parents.get(prefix[:-1], "source")
        lines += [
            f"    {name} = {holder}.get({prefix[-1]!r})",
            f"    if type({name}) is not dict and not isinstance({name}, Mapping):",
            f"        {name} = NOTHING",
        ]
    for index, row in enumerate(rows):
        parts = tuple(row.path.split("."))
        holder = parents.get(parts[:-1], "source")
        lines.append(f"    value = {holder}.get({parts[-1]!r})")
        lines += _row_lines(index, row)
    lines.append("    return out")
    return "\n".join(lines) + "\n"


def _parents(rows: tuple[Field, ...]) -> dict[tuple[str, ...], str]:
    """Every object a path passes through, outermost first, each with its local variable's name."""
    parents: dict[tuple[str, ...], str] = {}
    for row in rows:
        parts = tuple(row.path.split("."))
        for end in range(1, len(parts)):
            parents.setdefault(parts[:end], f"parent{len(parents)}")
    return parents


class CastCheck(Field, Protocol):
    """A row whose `value` is: empty -> None; `cast` (when set); the value if `check` passes, else None
    (destinations/tiktok/fields.py `Row`). It says so with `INLINE = "cast-check"`; a table inlines it."""

    @property
    def check(self) -> Callable[[Any], bool]:
        """Whether the (cast) value may be sent."""

    @property
    def cast(self) -> Callable[[Any], Any] | None:
        """The adjustment made first, if any."""


def _checked(row: Field) -> TypeGuard[CastCheck]:
    return getattr(type(row), "INLINE", None) == "cast-check"


NOT_EMPTY: Final = "value is not None and (value or not isinstance(value, CONTAINERS))"
"""`not rows.empty(value)`, inline: None, "", [] and {} are empty; 0 and False are values."""


def _row_lines(index: int, row: Field) -> list[str]:
    """The block that puts one row's value in `out`, as `to_dict` would."""
    key, wrap = repr(row.key), "[value]" if row.as_list else "value"
    if _checked(row):
        cast = [f"        value = cast{index}(value)"] if row.cast is not None else []
        return [
            f"    if {NOT_EMPTY}:",
            *cast,
            f"        if check{index}(value) and {NOT_EMPTY}:",
            f"            out[{key}] = {wrap}",
        ]
    if type(row) is not Row:
        call = f"    value = row{index}.value(value)"
        return [call, f"    if {NOT_EMPTY}:", f"        out[{key}] = {wrap}"]
    if row.pattern is None:
        return [f"    if {NOT_EMPTY}:", f"        out[{key}] = {wrap}"]
    text = "(value if type(value) is str else str(value))" + (".lower()" if row.as_list else "")
    return [
        f"    if {NOT_EMPTY}:",
        f"        value = {text}",
        f"        if match{index}(value) is not None:",
        f"            out[{key}] = {wrap}",
    ]
