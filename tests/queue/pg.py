"""The PostgreSQL the queue tests use, and a fresh schema per test so tests run in parallel.

TEST_DATABASE_URL names the server and database (default: local trust auth, database `test`).
Nothing here skips: when PostgreSQL is down the PostgreSQL tests fail, so CI cannot pass without it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def database_url() -> str:
    """The test database: TEST_DATABASE_URL, or the local default."""
    return os.environ.get("TEST_DATABASE_URL", DEFAULT_URL)


def schema_url(base: str, schema: str, settings: str = "") -> str:
    """`base` with every connection's search_path set to `schema` (and other `-c` settings)."""
    separator = "&" if "?" in base else "?"
    options = f"-csearch_path={schema} {settings}".strip()
    return f"{base}{separator}options={quote(options, safe='')}"


def connect(url: str | None = None) -> psycopg.Connection[tuple[Any, ...]]:
    """A plain autocommit connection, failing fast when the server is down."""
    return psycopg.connect(url or database_url(), autocommit=True, connect_timeout=5)


@contextmanager
def fresh_schema(settings: str = "") -> Iterator[str]:
    """A new empty schema for one test; yields a URL that uses it, drops it afterwards."""
    name = f"queue_test_{secrets.token_hex(6)}"
    with connect() as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    try:
        yield schema_url(database_url(), name, settings)
    finally:
        with connect() as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


def query(url: str, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    """Rows read with a separate connection (statements that return no rows give [])."""
    with connect(url) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []
