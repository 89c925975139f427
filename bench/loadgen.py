"""The load generators: wrk (throughput and fixed rate) and autocannon (exact request counts).

- wrk (Debian's `wrk`) drives the throughput runs with bench/ingest/body.lua, which gives every request
  a unique id and prints exact latency percentiles. It cannot hold a rate.
- wrk also drives the fixed-rate latency run, with bench/ingest/paced.lua: wrk's own `delay()` hook
  hands every request a slot of one evenly spaced timetable (bench/README.md says why no dedicated
  fixed-rate tool is used: each one tried here distorted the latency it was meant to measure).
- autocannon (npm) sends exactly N requests (`--amount`) with a unique id in each body
  (`--idReplacement`): the backlogs of the fan-out and memory benches.

All run pinned away from the process under test.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench import events, machine

LUA = Path(__file__).parent / "ingest" / "body.lua"
PACED_LUA = Path(__file__).parent / "ingest" / "paced.lua"


@dataclass(frozen=True, slots=True)
class Result:
    """One load run: requests answered, seconds, errors, and latency percentiles in milliseconds."""

    tool: str
    requests: int
    seconds: float
    errors: int
    non2xx: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    late: int = 0
    """Paced runs: requests that went out more than 5 ms after their slot (should be about 0)."""
    max_late_ms: float = 0.0

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0


def require(tool: str) -> None:
    """Fail early, saying how to install a missing load generator."""
    hints = {
        "wrk": "apt-get install -y wrk",
        "autocannon": "npm install -g autocannon@9",
    }
    if shutil.which(tool) is None:
        raise SystemExit(f"{tool} is not installed: {hints[tool]}")


def wrk(
    url: str,
    body_size: int,
    credential: str,
    folder: Path,
    prefix: str,
    *,
    seconds: float,
    connections: int,
    threads: int = 1,
    cpu_list: str | None = None,
    rate: float | None = None,
) -> Result:
    """A wrk run against POST /v1/events with unique bodies of `body_size` events: closed loop, or on a
    fixed schedule of `rate` requests/s (bench/ingest/paced.lua, one wrk thread)."""
    require("wrk")
    template = folder / f"body-{body_size}.json"
    template.write_text(events.template(body_size, events.WRK_ID))
    command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s", "--timeout", "10s"]
    if rate is None:
        command += ["-s", str(LUA), url, "--", str(template), prefix, credential]
    else:
        command[1:3] = ["-t", "1"]
        command += ["-s", str(PACED_LUA), url, "--", str(template), prefix, credential, f"{rate:g}"]
    out = subprocess.run(machine.pinned(command, cpu_list), capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("WRKJSON "))
    data = json.loads(line.removeprefix("WRKJSON "))
    errors = data["connect_errors"] + data["read_errors"] + data["write_errors"] + data["timeouts"]
    return Result(
        "wrk",
        data["requests"],
        data["duration_us"] / 1e6,
        errors,
        data["non2xx"],
        data["p50_us"] / 1000,
        data["p90_us"] / 1000,
        data["p99_us"] / 1000,
        data["p999_us"] / 1000,
        data["max_us"] / 1000,
        data["late"],
        data["max_late_ms"],
    )


def autocannon(
    url: str,
    body_size: int,
    credential: str,
    folder: Path,
    *,
    connections: int,
    rate: float | None = None,
    seconds: float | None = None,
    amount: int | None = None,
    cpu_list: str | None = None,
) -> Result:
    """An autocannon run: at `rate` requests/s for `seconds`, or exactly `amount` requests."""
    require("autocannon")
    body = folder / f"autocannon-body-{body_size}.json"
    body.write_text(events.template(body_size, events.AUTOCANNON_ID))
    command = ["autocannon", "-j", "-I", "-m", "POST", "-c", str(connections), "-t", "30", "-i", str(body)]
    command += ["-H", "Content-Type=application/json", "-H", f"Authorization=Bearer {credential}"]
    if rate is not None:
        command += ["-R", str(rate)]
    if amount is not None:
        command += ["-a", str(amount)]
    elif seconds is not None:
        command += ["-d", str(seconds)]
    out = subprocess.run(
        machine.pinned([*command, f"{url}/v1/events"], cpu_list), capture_output=True, text=True, check=True
    )
    data = json.loads(out.stdout)
    latency = data["latency"]
    answered = data["requests"]["total"]
    return Result(
        "autocannon",
        answered,
        data["duration"],
        data["errors"] + data["timeouts"],
        data["non2xx"],
        latency["p50"],
        latency["p90"],
        latency["p99"],
        latency["p99_9"],
        latency["max"],
    )
