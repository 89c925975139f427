"""The registry: YAML `type:` value -> destination adapter class."""

from __future__ import annotations

from typing import Any, Final

from destinations.base import Destination
from destinations.google.adapter import GoogleDestination
from destinations.linkedin.adapter import LinkedInDestination
from destinations.meta.adapter import MetaDestination
from destinations.pinterest.adapter import PinterestDestination
from destinations.reddit.adapter import RedditDestination
from destinations.snap.adapter import SnapDestination
from destinations.tiktok.adapter import TikTokDestination

REGISTRY: Final[dict[str, type[Destination[Any]]]] = {
    "google": GoogleDestination,
    "linkedin": LinkedInDestination,
    "meta": MetaDestination,
    "pinterest": PinterestDestination,
    "reddit": RedditDestination,
    "snap": SnapDestination,
    "tiktok": TikTokDestination,
}
