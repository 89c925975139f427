"""CORS for browser sources: only each browser source's allowed_origins may call the browser endpoints."""

from __future__ import annotations

from starlette.middleware import Middleware

from router.config import Config


def middleware(config: Config) -> list[Middleware]:
    """The CORS middleware for the app."""
    return []
