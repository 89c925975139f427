"""Reading `queue.url` into a queue."""

from __future__ import annotations

import pytest

from router.queue.factory import QueueUrlError, open_queue, sqlite_path
from router.queue.sqlite import SqliteQueue


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///var/router.db", "var/router.db"),
        ("sqlite:///./var/router.db", "./var/router.db"),
        ("sqlite:////var/lib/router.db", "/var/lib/router.db"),
        ("SQLITE:///router.db", "router.db"),
    ],
)
def test_sqlite_url_paths(url: str, path: str) -> None:
    """Three slashes give a relative path, four an absolute one."""
    assert sqlite_path(url) == path


def test_open_queue_builds_an_unopened_sqlite_queue() -> None:
    """Options reach the SQLite queue."""
    queue = open_queue("sqlite:////tmp/x/router.db", max_depth=10)
    assert isinstance(queue, SqliteQueue)
    assert (queue.path, queue.max_depth) == ("/tmp/x/router.db", 10)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://localhost", "unsupported"),
        ("router.db", "unsupported"),
        ("sqlite://host/router.db", "malformed"),
        ("sqlite:/router.db", "malformed"),
        ("sqlite:///router.db?mode=ro", "malformed"),
        ("sqlite:///", "names no file"),
        ("sqlite:///var/", "names no file"),
        ("sqlite:///:memory:", "not durable"),
    ],
)
def test_bad_urls_are_refused_with_a_reason(url: str, message: str) -> None:
    """Every unusable URL raises QueueUrlError saying why."""
    with pytest.raises(QueueUrlError, match=message):
        open_queue(url)


def test_unknown_option_is_refused() -> None:
    """A misspelt option is an error, not silently ignored."""
    with pytest.raises(QueueUrlError, match="max_dept"):
        open_queue("sqlite:///router.db", max_dept=3)
