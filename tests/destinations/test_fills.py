"""destinations/fills.py: fresh, used by every platform table, and not needed by a table it lacks.

That each table's `fill` gives what the row-by-row walk gives is tests/destinations/test_table.py's
hypothesis test; since the tables take their makers from destinations/fills.py, it checks those (and,
under scripts/test-compiled, their compiled form).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from destinations import fills
from destinations.rows import Row
from destinations.table import Table, digest
from tests import scripts
from tests.destinations.test_table import TABLES

ROOT = Path(__file__).resolve().parents[2]


def exec_made(fill: Any) -> bool:
    """Whether `fill` is the function `Table` wrote and ran with exec (not a fills.py maker's)."""
    return getattr(getattr(fill, "__code__", None), "co_filename", "") == "<destinations.table>"


def test_committed_file_is_fresh() -> None:
    generator = scripts.load("gen_fills")
    assert (ROOT / "destinations" / "fills.py").read_text() == generator.render(), (
        "destinations/fills.py is stale: run python scripts/gen_fills.py"
    )
    assert generator.main(["--check"]) == 0


@pytest.mark.parametrize("name", sorted(TABLES))
def test_every_platform_table_takes_its_maker(name: str) -> None:
    table = TABLES[name]
    assert digest(table.source) in fills.MAKERS
    assert not exec_made(table.fill)


def test_a_table_without_a_maker_runs_its_source() -> None:
    table = Table[Any](Row("k", "nowhere.in.any.platform.table"))
    assert digest(table.source) not in fills.MAKERS
    assert exec_made(table.fill)
    assert table.fill({"nowhere": {"in": {"any": {"platform": {"table": "v"}}}}}) == {"k": "v"}
