"""Segment-spec clients: /v1/track, /v1/page, /v1/identify and /v1/batch with the write key as Basic user."""

from __future__ import annotations

from starlette.routing import BaseRoute

from router.config import Config
from router.ingest import Ingest


def routes(ingest: Ingest, config: Config) -> list[BaseRoute]:
    """The endpoints this protocol adds to the app."""
    return []
