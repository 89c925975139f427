"""The `router` command: check and preview, as an operator runs them."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from destinations.meta.adapter import API_VERSION
from router.cli import main
from tests.conftest import META_TOKEN, config_text

REPO = Path(__file__).resolve().parents[2]


def write_config(tmp_path: Path, text: str | None = None) -> Path:
    """A config file in the test's folder."""
    path = tmp_path / "router.yaml"
    path.write_text(text if text is not None else config_text(tmp_path / "q.db"))
    return path


def test_check_accepts_the_shipped_default_config() -> None:
    """`router check` on config/router.yaml passes with no environment set (the README's first command)."""
    result = subprocess.run(
        [sys.executable, "-m", "router", "check", "--config", "config/router.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "is valid" in result.stdout
    assert "meta_main is disabled" in result.stdout


def test_check_lists_every_problem_with_line_and_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each problem is printed as file:line: yaml.path: message, and the exit code is 1."""
    text = (
        "sources:\n"
        "  - id: web\n"
        "    kind: browser\n"
        "    key: pk_12345678\n"
        "destinations:\n"
        "  - id: meta_main\n"
        "    type: meta\n"
        "    pixel_id: 12ab\n"
        "    access_token: ${ROUTER_TEST_UNSET_TOKEN}\n"
        "    surprise: 1\n"
    )
    path = write_config(tmp_path, text)
    assert main(["check", "--config", str(path)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert (
        f"{path}:9: destinations[0].access_token: environment variable ROUTER_TEST_UNSET_TOKEN is not set"
        in err
    )
    assert any(line.startswith(f"{path}:8: destinations[0].pixel_id: has an invalid format") for line in err)
    assert any(line.startswith(f"{path}:10: destinations[0].surprise: unknown field") for line in err)
    assert err[-1] == f"3 problem(s) in {path}"


def test_preview_prints_the_meta_request_with_secrets_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`router preview` shows method, URL, headers and body per destination; the token appears only as ***."""
    path = write_config(tmp_path)
    event = {
        "event_name": "Purchase",
        "event_id": "o-1",
        "event_time": 1767225000,
        "action_source": "crm",
        "user": {"email": "Joe@Example.com"},
        "properties": {"value": 5, "currency": "EUR"},
    }
    (tmp_path / "event.json").write_text(json.dumps(event))
    assert main(["preview", str(tmp_path / "event.json"), "--config", str(path), "--now", "1767225600"]) == 0
    out = capsys.readouterr().out
    assert META_TOKEN not in out
    shown = json.loads(out)
    (request,) = shown["meta_main"]
    assert request["method"] == "POST"
    assert request["url"] == f"http://127.0.0.1:9/{API_VERSION}/1234567890/events"
    assert request["json"]["access_token"] == "***"
    (sent,) = request["json"]["data"]
    assert sent["event_time"] == 1767225000
    assert sent["user_data"]["em"] == [hashlib.sha256(b"joe@example.com").hexdigest()]


def test_preview_reports_skips_and_rejections(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A skipped event names its reason; an invalid event is an error with its index and path."""
    path = write_config(tmp_path, config_text(tmp_path / "q.db", extra="    events: [purchase]\n"))
    (tmp_path / "lead.json").write_text(json.dumps([{"event_name": "lead"}]))
    assert main(["preview", str(tmp_path / "lead.json"), "--config", str(path)]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "meta_main": {"skipped": "no event is sent to this destination"}
    }
    (tmp_path / "bad.json").write_text(json.dumps([{"event_name": "lead"}, {"event_name": 5}]))
    assert main(["preview", str(tmp_path / "bad.json"), "--config", str(path)]) == 1
    assert "event[1]/event_name: must be of type string" in capsys.readouterr().err


def test_preview_of_a_stale_event_says_why_it_is_not_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An event older than Meta's 7 days is shown as skipped with the age reason."""
    path = write_config(tmp_path)
    (tmp_path / "old.json").write_text(
        json.dumps(
            {
                "event_name": "lead",
                "event_time": 1767225600 - 8 * 86400,
                "action_source": "crm",
                "user": {"email": "a@b.co"},
            }
        )
    )
    assert main(["preview", str(tmp_path / "old.json"), "--config", str(path), "--now", "1767225600"]) == 0
    assert "7-day limit" in json.loads(capsys.readouterr().out)["meta_main"]["skipped"]
