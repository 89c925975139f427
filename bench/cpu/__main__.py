"""CPU cost per event of the ingest's normalization and of every destination's mapping (target 2).

    .venv/bin/python -m bench.cpu [--repeat 7] [--min-time 0.2] [--profile N] [--check]

Runs, in this process (pinned to one CPU), exactly the functions the router runs for one event:

- ingest (router/ingest.py `Ingest.store`): `jsonlimits.loads` of the body, `normalize.normalize`
  (JSON Schema validation, canonical form, `enrich.enrich`, `identity.hash_identifiers`), then
  `policy.apply`, `matchquality.identifiers` per destination and the queue's JSON encoding;
- dispatch (router/delivery.py `plan`, once per destination): the queue's JSON decoding of the
  claimed payload, `consent.decide`, the adapter's `map`, and `build_request` plus the sender's
  `json.dumps` amortized over a full batch.

Each stage is timed with `timeit` (auto-calibrated loops, `--repeat` runs); min and median are in
microseconds per event. The target is normalize + the seven `map` calls <= 150 us. `--profile N`
adds a cProfile of the whole path: own time by component and the top-N functions.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import sys
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench import events, machine, platforms
from router import consent, jsoncodec, jsonlimits, matchquality, policy, validation
from router.config import Config, parse
from router.context import RequestContext
from router.identity import hash_identifiers
from router.normalize import SCHEMA, normalize

TARGET_US = 150.0


@dataclass(frozen=True, slots=True)
class Timing:
    """One stage: microseconds per event, min and median over the repeats."""

    name: str
    min_us: float
    median_us: float


def measure(name: str, fn: Callable[[], object], repeat: int, min_time: float, per: int = 1) -> Timing:
    """Time `fn` (which handles `per` events) with timeit: calibrated loops, `repeat` runs."""
    timer = timeit.Timer(fn)
    loops, _ = timer.autorange()
    loops = max(1, int(loops * min_time / 0.2))
    runs = [t / loops / per * 1e6 for t in timer.repeat(repeat, loops)]
    return Timing(name, min(runs), statistics.median(runs))


class Path:
    """The router's per-event work, built from the bench config with all seven destinations."""

    def __init__(self) -> None:
        self.config: Config = parse(platforms.router_yaml("sqlite:///unused.db", None), os.environ)
        self.variants = self.config.identity_variants()
        self.source = self.config.sources[0]
        self.now = time.time()
        self.context = RequestContext(
            source=self.source.id, browser=False, received_ms=int(self.now * 1000), client_ip="127.0.0.1"
        )
        self.body = events.template(1, "cpu-0001").encode()
        self.raw: dict[str, Any] = json.loads(self.body)
        self.uk_user = {**self.raw["user"], "phone": "+44 20 7946 0958"}
        self.outcome = normalize(self.raw, self.context, self.variants, self.config.default_phone_region)
        self.event = self.normalize()
        self.stored = self.encode()
        self.destinations = self.config.destinations

    def parse(self) -> Any:
        return jsonlimits.loads(self.body)

    def normalize(self) -> dict[str, Any]:
        outcome = normalize(self.raw, self.context, self.variants, self.config.default_phone_region)
        assert outcome.event is not None, outcome.errors
        return outcome.event

    def validate(self) -> object:
        """Schema validation as normalize runs it: `validation.event_problems` (a compiled check first)
        where it exists, else jsonschema's `problems` (the baseline, a645d3d)."""
        fast = getattr(validation, "event_problems", None)
        return (
            fast(SCHEMA, self.raw)
            if fast
            else validation.problems(validation.validator_for(SCHEMA), self.raw)
        )

    def hash_identifiers(self) -> object:
        return hash_identifiers(self.raw["user"], self.variants, self.config.default_phone_region)

    def hash_identifiers_uk(self) -> object:
        """The same user with a UK phone: phonenumbers parses it (router/nanp.py takes only +1 numbers)."""
        return hash_identifiers(self.uk_user, self.variants, self.config.default_phone_region)

    def ingest_extras(self) -> object:
        """policy.apply and the per-destination match-quality identifiers of Ingest.store."""
        return policy.apply(self.source, self.outcome), self.matched()

    def matched(self) -> dict[str, frozenset[str]]:
        return {
            d.id: matchquality.identifiers(self.event, d.type, d.identity_variants, frozenset())
            for d in self.destinations
        }

    def encode(self) -> str:
        return jsoncodec.dumps_text(self.event)

    def decode_seven(self) -> object:
        return [jsoncodec.loads(self.stored) for _ in self.destinations]

    def mapper(self, index: int) -> Callable[[], object]:
        destination = self.destinations[index]

        def run() -> object:
            verdict = consent.decide(self.event, consent.DEFAULT)
            return verdict, destination.map(self.event, self.now)

        return run

    def builder(self, index: int) -> tuple[Callable[[], object], int]:
        destination = self.destinations[index]
        payloads = [
            p for _ in range(destination.max_batch_size) for p in destination.map(self.event, self.now)
        ]
        batch = payloads[: destination.max_batch_size]

        def run() -> object:
            request = destination.build_request(batch)
            return jsoncodec.dumps(request.json) if request.json is not None else None

        return run, len(batch)

    def whole(self) -> object:
        """Everything above for one event, in the router's order (for the profile)."""
        event = normalize(jsonlimits.loads(self.body), self.context, self.variants, "US").event
        assert event is not None
        self.matched()
        stored = jsoncodec.dumps_text(event)
        for destination in self.destinations:
            claimed = jsoncodec.loads(stored)
            consent.decide(claimed, consent.DEFAULT)
            destination.map(claimed, self.now)
        return stored


def run(repeat: int, min_time: float) -> tuple[list[Timing], dict[str, float]]:
    """Every stage's timing, and the totals."""
    path = Path()
    ingest = [
        measure("parse body (jsonlimits.loads)", path.parse, repeat, min_time),
        measure("normalize (normalize.normalize), of which:", path.normalize, repeat, min_time),
        measure("  validate (router.validation)", path.validate, repeat, min_time),
        measure("  hash identifiers (identity)", path.hash_identifiers, repeat, min_time),
        measure("  (hash identifiers, a UK phone instead)", path.hash_identifiers_uk, repeat, min_time),
        measure("policy + match quality x7", path.ingest_extras, repeat, min_time),
        measure("queue encode (jsoncodec, orjson)", path.encode, repeat, min_time),
    ]
    maps = [
        measure(f"map {d.type} (+consent.decide)", path.mapper(i), repeat, min_time)
        for i, d in enumerate(path.destinations)
    ]
    dispatch = [measure("queue decode x7 (jsoncodec per claim)", path.decode_seven, repeat, min_time)]
    for index, destination in enumerate(path.destinations):
        fn, size = path.builder(index)
        dispatch.append(
            measure(f"build_request+dumps {destination.type} (/{size})", fn, repeat, min_time, size)
        )
    timings = [*ingest, *maps, *dispatch]
    core_min = ingest[1].min_us + sum(t.min_us for t in maps)
    core_median = ingest[1].median_us + sum(t.median_us for t in maps)
    top_level = [t for t in timings if not t.name.startswith("  ")]
    totals = {
        "normalize+map7_min": core_min,
        "normalize+map7_median": core_median,
        "full_path_min": sum(t.min_us for t in top_level),
        "full_path_median": sum(t.median_us for t in top_level),
    }
    return timings, totals


def profile(top: int, seconds: float = 3.0) -> str:
    """cProfile of `seconds` of the whole per-event path: own time by component, then top-N functions."""
    path = Path()
    profiler = cProfile.Profile()
    deadline = time.perf_counter() + seconds
    count = 0
    profiler.enable()
    while time.perf_counter() < deadline:
        path.whole()
        count += 1
    profiler.disable()
    return summary(pstats.Stats(profiler), top, f"cProfile, {count} events in {seconds:g} s")


def summary(stats: pstats.Stats, top: int, title: str) -> str:
    """Own time per component (library or repo module) and the top-N functions by own and by total time."""
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    table = {key: (int(row[1]), float(row[2]), float(row[3])) for key, row in raw.items()}
    total = sum(row[1] for row in table.values()) or 1.0
    by_component: dict[str, float] = {}
    for (file, _, _), row in table.items():
        by_component[component(file)] = by_component.get(component(file), 0.0) + row[1]
    lines = [f"{title}; own time by component:"]
    for name, own in sorted(by_component.items(), key=lambda item: -item[1])[:top]:
        lines.append(f"  {100 * own / total:5.1f}%  {name}")
    for label, index in (("own", 1), ("total (inclusive)", 2)):
        lines.append(f"top {top} functions by {label} time:")
        ranked = sorted(table.items(), key=lambda item: -item[1][index])[:top]
        for (file, line, function), row in ranked:
            lines.append(
                f"  {100 * row[index] / total:5.1f}%  {function} ({where(file)}:{line}) calls={row[0]}"
            )
    return "\n".join(lines)


def where(file: str) -> str:
    """A short location: `jsonschema/validators.py`, `router/identity.py`, `json/decoder.py`."""
    if "site-packages/" in file:
        return file.split("site-packages/", 1)[1]
    root = os.getcwd() + "/"
    return file[len(root) :] if file.startswith(root) else "/".join(file.split("/")[-2:])


def component(file: str) -> str:
    """`jsonschema`, `phonenumbers`, `router/identity.py`, `json` (stdlib) or `builtins` for a code file."""
    if file == "~" or file.startswith("<"):
        return "builtins"
    if "site-packages/" in file:
        return file.split("site-packages/", 1)[1].split("/", 1)[0]
    root = os.getcwd() + "/"
    if file.startswith(root):
        return file[len(root) :]
    return "stdlib " + os.path.basename(os.path.dirname(file) if file.endswith("__init__.py") else file)


def main() -> int:
    """Print the table; with --check, exit 1 when the target is missed."""
    parser = argparse.ArgumentParser(prog="python -m bench.cpu", description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--min-time", type=float, default=0.2, help="seconds per timing run")
    parser.add_argument("--profile", type=int, default=25, metavar="N", help="top-N profile (0: none)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    parser.add_argument("--no-pin", action="store_true")
    args = parser.parse_args()
    if not args.no_pin:
        os.sched_setaffinity(0, {int(machine.server_cpus())})
    print(machine.describe())
    timings, totals = run(args.repeat, args.min_time)
    print(f"\n{'stage (us per event)':<52} {'min':>9} {'median':>9}")
    for timing in timings:
        print(f"{timing.name:<52} {timing.min_us:9.1f} {timing.median_us:9.1f}")
    core, core_median = totals["normalize+map7_min"], totals["normalize+map7_median"]
    full, full_median = totals["full_path_min"], totals["full_path_median"]
    print(f"\n{'normalize + map for all seven (target <= 150)':<52} {core:9.1f} {core_median:9.1f}")
    print(f"{'whole per-event CPU path (rows above, top level)':<52} {full:9.1f} {full_median:9.1f}")
    verdict = "met" if core <= TARGET_US else "MISSED"
    print(
        f"target normalize+map7 <= {TARGET_US:g} us: {verdict} (min {core:.1f} us, x{core / TARGET_US:.2f})"
    )
    if args.profile:
        print("\n" + profile(args.profile))
    if args.json:
        rows = [{"name": t.name, "min_us": t.min_us, "median_us": t.median_us} for t in timings]
        document = {"timings": rows, "totals": totals}
        with open(args.json, "w") as out:
            json.dump(document, out, indent=2)
    return 1 if args.check and verdict != "met" else 0


if __name__ == "__main__":
    sys.exit(main())
