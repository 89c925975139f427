"""The site tag: serves /tag.js and takes its /collect beacons."""

from __future__ import annotations

from starlette.routing import BaseRoute

from router.config import Config
from router.ingest import Ingest


def routes(ingest: Ingest, config: Config) -> list[BaseRoute]:
    """The endpoints this protocol adds to the app."""
    return []
