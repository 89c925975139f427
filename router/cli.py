"""The `router` command: serve, check and preview."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvicorn

from router.app import create_app
from router.config import Config, load
from router.errors import ConfigError
from router.logging import configure
from router.preview import PreviewError, preview

DEFAULT_CONFIG = "config/router.yaml"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
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
    for command in (serve, check, show):
        command.add_argument("--config", default=os.environ.get("ROUTER_CONFIG", DEFAULT_CONFIG))
    return parser


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


def _serve(args: argparse.Namespace) -> int:
    configure(args.log_level)
    config = _load(args.config)
    if config is None:
        return 1
    uvicorn.run(
        create_app(config),
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
