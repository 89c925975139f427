"""`router dlq list`, `router replay` and `router purge` on a queue with dead letters."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from router.cli import main
from router.queue.base import Dead, NewEvent
from router.queue.sqlite import SqliteQueue
from tests.conftest import config_text


def seed(db: Path, dead: dict[str, tuple[str, float]]) -> None:
    """A queue whose deliveries to meta_main died: event id -> (reason, time of death)."""

    async def run() -> None:
        async with SqliteQueue(str(db)) as queue:
            for event_id, (reason, died) in dead.items():
                [pk] = await queue.enqueue(
                    [NewEvent("web", event_id, "lead", died, {"e": event_id}, ("meta_main",))]
                )
                assert pk is not None
                await queue.claim("meta_main", 10, now=died, lease=30)
                await queue.settle("meta_main", [Dead(pk, reason)], now=died)

    asyncio.run(run())


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    """A config file and its queue holding three dead letters, one of them two days old."""
    db = tmp_path / "queue.db"
    now = time.time()
    seed(
        db,
        {
            "old": ("HTTP 400", now - 2 * 86400),
            "a": ("Meta 100: bad fbc", now - 60),
            "b": ("expired", now - 30),
        },
    )
    config = tmp_path / "router.yaml"
    config.write_text(config_text(db))
    return config, db


def test_dlq_list_shows_reasons_and_filters(
    setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The table lists each dead letter with its reason; --since and --event-id narrow it."""
    config, _ = setup
    assert main(["dlq", "list", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "Meta 100: bad fbc" in out and "HTTP 400" in out
    assert out.rstrip().endswith("3 dead letter(s) (meta_main: 3)")
    assert main(["dlq", "list", "--config", str(config), "--since", "2h", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["event_id"] for r in rows] == ["a", "b"]
    assert main(["dlq", "list", "--config", str(config), "--event-id", "b", "--json"]) == 0
    assert [json.loads(x)["reason"] for x in capsys.readouterr().out.splitlines()] == ["expired"]


def test_bad_since_is_a_usage_error(setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """`--since 2 hours` is refused with the accepted forms."""
    config, _ = setup
    with pytest.raises(SystemExit):
        main(["dlq", "list", "--config", str(config), "--since", "2 hours"])
    assert "30m, 2h or 7d" in capsys.readouterr().err


def test_replay_requeues_with_progress_and_summary(
    setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Replay of the last hour re-queues two, prints a summary, and leaves the old one dead."""
    config, db = setup
    assert main(["replay", "--config", str(config), "--since", "1h"]) == 0
    err = capsys.readouterr().err
    assert "replayed 2 of 2 dead letter(s)" in err
    assert "replaying" in err  # the progress bar

    async def state() -> dict[str, int]:
        async with SqliteQueue(str(db)) as queue:
            return await queue.stats()

    assert asyncio.run(state()) == {"pending": 2, "inflight": 0, "dead": 1, "skipped": 0}


def test_purge_deletes_dead_letters_past_metas_age_limit(
    setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing is older than Meta's 7 days yet, so the purge keeps every dead letter."""
    config, _ = setup
    assert main(["purge", "--config", str(config)]) == 0
    assert json.loads(capsys.readouterr().out)["dead_or_skipped"] == 0
