"""Builds the queue named by the config's `queue.url`.

    sqlite:///var/router.db        a path relative to the working directory
    sqlite:////var/lib/router.db   an absolute path (four slashes)
    postgresql://user@host/db      PostgreSQL (also postgres://, postgresql+psycopg://); any libpq
                                   URL parameter works, e.g. ?options=-csearch_path%3Drouter

The queue comes back unopened: `await queue.open()` before use.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from psycopg import ProgrammingError
from psycopg.conninfo import conninfo_to_dict

from router.queue.base import Queue
from router.queue.postgres import PostgresQueue
from router.queue.sqlite import SqliteQueue

SQLITE_OPTIONS = frozenset({"max_depth"})
POSTGRES_OPTIONS = frozenset({"max_depth", "pool_min", "pool_max", "connect_timeout", "statement_timeout"})
POSTGRES_SCHEMES = frozenset({"postgres", "postgresql"})


class QueueUrlError(ValueError):
    """The queue URL or its options do not name a usable queue."""


def open_queue(url: str, **options: Any) -> Queue:
    """The queue for `url`, configured with `options`: `max_depth` for both backends; `pool_min`,
    `pool_max`, `connect_timeout` and `statement_timeout` for PostgreSQL."""
    scheme = urlsplit(url).scheme.split("+")[0].lower()
    if scheme == "sqlite":
        return _sqlite(url, options)
    if scheme in POSTGRES_SCHEMES:
        return _postgres(url, options)
    raise QueueUrlError(
        f"unsupported queue URL {url!r}; expected sqlite:///path/to/router.db or postgresql://user@host/db"
    )


def _sqlite(url: str, options: dict[str, Any]) -> SqliteQueue:
    unknown = sorted(set(options) - SQLITE_OPTIONS)
    if unknown:
        raise QueueUrlError(f"unknown sqlite queue options: {', '.join(unknown)}")
    return SqliteQueue(sqlite_path(url), **options)


def _postgres(url: str, options: dict[str, Any]) -> PostgresQueue:
    unknown = sorted(set(options) - POSTGRES_OPTIONS)
    if unknown:
        raise QueueUrlError(f"unknown postgresql queue options: {', '.join(unknown)}")
    return PostgresQueue(postgres_url(url), **options)


def postgres_url(url: str) -> str:
    """The URL as libpq takes it: `postgresql://`, without a driver suffix such as `+psycopg`."""
    _, sep, rest = url.partition("://")
    if not sep:
        raise QueueUrlError("malformed postgresql URL; expected postgresql://user@host/db")
    normalized = f"postgresql://{rest}"
    try:
        conninfo_to_dict(normalized)
    except ProgrammingError as error:
        # libpq may quote the part it could not read: say what it was only when no password is in.
        reason = "" if urlsplit(url).password else f": {str(error).strip()}"
        raise QueueUrlError(f"malformed postgresql URL{reason}") from None
    return normalized


def sqlite_path(url: str) -> str:
    """The file path in a `sqlite:///` URL: three slashes for a relative path, four for absolute."""
    scheme, sep, path = url.partition(":///")
    if scheme.lower() != "sqlite" or not sep or "?" in path or "#" in path:
        raise QueueUrlError(f"malformed sqlite URL {url!r}; expected sqlite:///path/to/router.db")
    if not path or path.endswith("/"):
        raise QueueUrlError(f"sqlite URL {url!r} names no file")
    if path == ":memory:":
        raise QueueUrlError("an in-memory sqlite queue is not durable; give a file path")
    return path
