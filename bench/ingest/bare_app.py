"""The baseline: a bare Starlette app whose one route reads the body, parses the JSON and answers 202.

    python -m bench.ingest.bare_app --port 8081

It is served exactly as `router serve` serves the router (router/cli.py `_serve`: `uvicorn.run` with
uvicorn's default `loop="auto"` and `http="auto"`, one process, no access log), so the ratio of the
router's requests/s to this app's measures the router's own work, not the server's.
"""

from __future__ import annotations

import argparse
import json

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def events(request: Request) -> JSONResponse:
    """Parse the body as JSON and answer 202 with how many events it held."""
    document = json.loads(await request.body())
    count = len(document["events"]) if isinstance(document, dict) and "events" in document else 1
    return JSONResponse({"received": count}, 202)


async def readyz(_: Request) -> JSONResponse:
    """Ready as soon as it serves."""
    return JSONResponse({"status": "ready"})


app = Starlette(routes=[Route("/v1/events", events, methods=["POST"]), Route("/readyz", readyz)])


def main() -> None:
    """Serve the app with the router's uvicorn settings."""
    parser = argparse.ArgumentParser(prog="python -m bench.ingest.bare_app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=3,
        server_header=False,
    )


if __name__ == "__main__":
    main()
