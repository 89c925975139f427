"""App: wiring only - config, queue, dispatcher and routes into one Starlette application."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from router import cors, debugview, ga4, janitor, native, openapi, ratelimit, segment, sitetag, stats, tracing
from router.config import Config
from router.debugbus import DebugBus
from router.dispatch import Dispatcher
from router.ingest import Ingest
from router.metrics import Metrics
from router.queue.factory import open_queue

log = structlog.get_logger("router.app")

SHUTDOWN_GRACE = 4.0
"""Seconds in-flight deliveries get to finish on SIGTERM, after uvicorn's own 3 s for open requests:
Cloud Run kills the instance 10 s after SIGTERM."""


def create_app(config: Config, metrics: Metrics | None = None, debug: DebugBus | None = None) -> Starlette:
    """The router's ASGI app; the queue opens and the dispatcher starts in the lifespan. Each app counts
    into its own `metrics` (a fresh registry unless one is given)."""
    metrics = metrics or Metrics()
    debug = debug or DebugBus(enabled=bool(config.admin_token))
    queue = open_queue(config.queue.url, **config.queue.options())
    ready = {"value": False}

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await queue.open()
        recovered = await queue.recover()
        if recovered:
            log.warning("deliveries_recovered", count=recovered)
        purging = asyncio.create_task(janitor.run(queue, janitor.dead_letter_retention(config.destinations)))
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=16)
        async with httpx.AsyncClient(limits=limits, follow_redirects=False) as client:
            windows = {d.id: config.retry_window(d.id) for d in config.destinations}
            dispatcher = Dispatcher(
                config.destinations,
                queue,
                config.dispatch,
                client,
                retry_windows=windows,
                consent_policies={d.id: config.consent_policy(d.id) for d in config.destinations},
                metrics=metrics,
                debug=debug,
            )
            ingest.wake = dispatcher.wake
            dispatcher.start()
            ready["value"] = True
            log.info(
                "router_started",
                destinations=[d.id for d in config.destinations],
                disabled=list(config.disabled),
                sources=[s.id for s in config.sources],
                compiled=f"{len(native.compiled())}/{len(native.MODULES)}",
            )
            try:
                yield
            finally:
                ready["value"] = False
                purging.cancel()
                await dispatcher.stop(SHUTDOWN_GRACE)
                await queue.close()
                log.info("router_stopped")

    ingest = Ingest(config, queue, lambda _ids: None, metrics, debug)

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> JSONResponse:
        if not ready["value"]:
            return JSONResponse({"status": "starting"}, 503)
        try:
            depth = await queue.depth()
        except Exception:
            return JSONResponse({"status": "queue unreachable"}, 503)
        return JSONResponse({"status": "ready", "queue_depth": depth})

    routes: list[BaseRoute] = [
        Route("/v1/events", ingest.handle, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics.endpoint(queue), methods=["GET"]),
        Route("/admin/stats", stats.endpoint(config, queue), methods=["GET"]),
        *sitetag.routes(ingest, config),
        *ga4.routes(ingest, config),
        *segment.routes(ingest, config),
        *debugview.routes(debug, config.admin_token),
        *openapi.routes(config.server.openapi),
    ]
    middleware = [*tracing.middleware(), *cors.middleware(config), *ratelimit.middleware(config, metrics)]
    app = Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
    app.state.queue = queue  # for operators' tooling and tests; the routes use the closure
    return app
