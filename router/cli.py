"""The `router` command: serve, check and preview."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import uvicorn

from router import collector, deadletters, durations, janitor, stats
from router.app import create_app
from router.config import Config, load
from router.errors import ConfigError
from router.logging import configure
from router.preview import PreviewError, preview
from router.queue.base import DeadFilter, Queue
from router.queue.factory import open_queue

DEFAULT_CONFIG = "config/router.yaml"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    configure(getattr(args, "log_level", os.environ.get("LOG_LEVEL", "info")))
    handler: Any = args.handler
    code: int = handler(args)
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="router", description="Server-side tag router for ad conversions.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the ingest and the dispatcher")
    serve.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    serve.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "info"))
    serve.set_defaults(handler=_serve)
    check = commands.add_parser("check", help="validate the config file and print every problem")
    check.set_defaults(handler=_check)
    show = commands.add_parser("preview", help="print what each destination would send for EVENT.json")
    show.add_argument("event_file", metavar="EVENT.json", help="one canonical event or a JSON list of them")
    show.add_argument("--now", type=float, help="the clock, in epoch seconds (default: now)")
    show.set_defaults(handler=_preview)
    dlq = commands.add_parser("dlq", help="dead letters").add_subparsers(required=True, metavar="ACTION")
    listing = dlq.add_parser("list", help="list dead letters with their reason")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(handler=_dlq_list)
    replaying = commands.add_parser("replay", help="re-queue dead letters for delivery")
    replaying.set_defaults(handler=_replay)
    purging = commands.add_parser("purge", help="delete dead letters past retention and old dedup keys")
    purging.set_defaults(handler=_purge)
    reporting = commands.add_parser("stats", help="deliveries and match quality per destination")
    reporting.add_argument("--json", action="store_true", help="print the report as JSON")
    reporting.set_defaults(handler=_stats)
    for command in (listing, replaying):
        command.add_argument("--destination", metavar="ID", help="only this destination")
        command.add_argument("--since", metavar="AGE", type=_age, help="died within AGE (90s, 30m, 2h, 7d)")
        command.add_argument("--event-id", metavar="ID", help="only this event id")
    for command in (serve, check, show, listing, replaying, purging, reporting):
        command.add_argument("--config", default=os.environ.get("ROUTER_CONFIG", DEFAULT_CONFIG))
    return parser


def _age(text: str) -> float:
    try:
        return durations.seconds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _load(path: str) -> Config | None:
    try:
        return load(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{problem.path}: {problem.message}", file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) in {path}", file=sys.stderr)
        return None


def _check(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return 1
    for disabled in config.disabled:
        print(f"note: destination {disabled} is disabled (enabled: false)")
    for warning in config.warnings:
        print(warning)
    names = ", ".join(d.id for d in config.destinations) or "none"
    print(f"{args.config} is valid: {len(config.sources)} source(s), destinations enabled: {names}")
    return 0


def _preview(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return 1
    try:
        document = json.loads(Path(args.event_file).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"cannot read {args.event_file}: {exc}", file=sys.stderr)
        return 1
    events = document if isinstance(document, list) else [document]
    try:
        shown = preview(config, events, args.now if args.now is not None else time.time())
    except PreviewError as exc:
        for problem in exc.problems:
            print(f"event{problem.path}: {problem.message}", file=sys.stderr)
        return 1
    print(json.dumps(shown, indent=2))
    return 0


def _filter(args: argparse.Namespace) -> DeadFilter:
    since = time.time() - args.since if args.since is not None else None
    return DeadFilter(destination=args.destination, since=since, event_id=args.event_id)


def _with_queue(args: argparse.Namespace, work: Callable[[Config, Queue], Awaitable[int]]) -> int:
    """Run `work` on the configured queue (the router may be running on it at the same time)."""
    config = _load(args.config)
    if config is None:
        return 1

    async def run() -> int:
        queue = open_queue(config.queue.url, **config.queue.options())
        await queue.open()
        try:
            return await work(config, queue)
        finally:
            await queue.close()

    return asyncio.run(run())


def _dlq_list(args: argparse.Namespace) -> int:
    async def work(_: Config, queue: Queue) -> int:
        await deadletters.list_dead(queue, _filter(args), args.json, sys.stdout)
        return 0

    return _with_queue(args, work)


def _replay(args: argparse.Namespace) -> int:
    async def work(_: Config, queue: Queue) -> int:
        await deadletters.replay(queue, _filter(args), time.time())
        return 0

    return _with_queue(args, work)


def _purge(args: argparse.Namespace) -> int:
    async def work(config: Config, queue: Queue) -> int:
        retention = janitor.dead_letter_retention(config.destinations)
        purged = await janitor.purge_once(queue, retention, time.time())
        print(json.dumps(purged))
        return 0

    return _with_queue(args, work)


def _stats(args: argparse.Namespace) -> int:
    async def work(config: Config, queue: Queue) -> int:
        document = await stats.report(queue, [d.id for d in config.destinations], time.time())
        sys.stdout.write(json.dumps(document, indent=2) + "\n" if args.json else stats.text(document))
        return 0

    return _with_queue(args, work)


def _serve(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return 1
    app = create_app(config)
    collector.tune()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=3,
        server_header=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
