"""Builds the queue named by the config's `queue.url`.

    sqlite:///var/router.db        a path relative to the working directory
    sqlite:////var/lib/router.db   an absolute path (four slashes)
    postgresql://user@host/db      planned, refused for now

The queue comes back unopened: `await queue.open()` before use.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from router.queue.base import Queue
from router.queue.sqlite import SqliteQueue

SQLITE_OPTIONS = frozenset({"max_depth"})
POSTGRES_SCHEMES = frozenset({"postgres", "postgresql"})


class QueueUrlError(ValueError):
    """The queue URL or its options do not name a usable queue."""


def open_queue(url: str, **options: Any) -> Queue:
    """The queue for `url`, configured with `options` (`max_depth`)."""
    scheme = urlsplit(url).scheme.split("+")[0].lower()
    if scheme == "sqlite":
        return _sqlite(url, options)
    if scheme in POSTGRES_SCHEMES:
        raise QueueUrlError("the PostgreSQL queue is not implemented yet; use sqlite:///path/to/router.db")
    raise QueueUrlError(f"unsupported queue URL {url!r}; expected sqlite:///path/to/router.db")


def _sqlite(url: str, options: dict[str, Any]) -> SqliteQueue:
    unknown = sorted(set(options) - SQLITE_OPTIONS)
    if unknown:
        raise QueueUrlError(f"unknown sqlite queue options: {', '.join(unknown)}")
    return SqliteQueue(sqlite_path(url), **options)


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
