"""The seven loopback fake platforms in their own process, and a router.yaml pointing at them.

`python -m bench.platforms` serves the fakes of tests/fakes (which enforce each platform's contract)
on loopback ports, prints one JSON line `{"<platform>": "<base url>", ..., "control": "<url>"}` on
stdout, and serves `GET <control>/counts`: per platform, accepted events, requests and contract
violations. The benches run it as a child process pinned away from the router, so the fakes' CPU is
not the router's. `router_yaml()` writes the matching config; `down=True` points every destination
at a closed port instead, with hour-long probe intervals: dispatch is then effectively paused and
events stay queued (the ingest and memory benches).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, Final

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bench import machine
from destinations.meta.adapter import API_VERSION
from tests.fakes.google import create_google_fake
from tests.fakes.linkedin import create_linkedin_fake
from tests.fakes.meta import MetaFake
from tests.fakes.pinterest import PinterestFake
from tests.fakes.reddit import RedditFake
from tests.fakes.server import serve
from tests.fakes.snap import SnapFake
from tests.fakes.tiktok import TikTokFake

PLATFORMS: Final = ("meta", "tiktok", "snap", "pinterest", "reddit", "google", "linkedin")
TOKENS: Final = {name: f"bench-{name}-token-0123456789abcdef" for name in PLATFORMS}
BACKEND_SECRET: Final = "sk_bench_backend_secret_0123456789"
META_PIXEL, TIKTOK_PIXEL, SNAP_PIXEL = "1234567890", "C4BENCHPIXEL", "a1b2c3d4-e5f6-7890-abcd-ef1234567890"
PINTEREST_ACCOUNT, REDDIT_PIXEL, GOOGLE_CUSTOMER = "549755885175", "t2_benchpixel", "1234567890"
GOOGLE_CLIENT = ("bench-client.apps.googleusercontent.com", "GOCSPX-bench-secret", "1//0bench-refresh")
LINKEDIN_RULES: Final = {"purchase": "123456", "lead": "234567"}
CLOSED_PORT: Final = 9
"""The discard port: nothing listens on it on loopback, so every connection is refused at once."""
PAUSED_DISPATCH: Final = {"probe_base": 3600, "backoff_base": 3600, "backoff_cap": 3600}
"""With every destination refusing connections, one failed batch opens each breaker for an hour."""
UNLIMITED: Final = "1000000/second"
"""The benches send from one address and one key: the router's default rate limits would answer 429."""


def fakes() -> dict[str, Any]:
    """One fake per platform, configured for the tokens and ids of `router_yaml`."""
    client_id, client_secret, refresh = GOOGLE_CLIENT
    return {
        "meta": MetaFake(access_token=TOKENS["meta"], pixel_id=META_PIXEL, version=API_VERSION),
        "tiktok": TikTokFake(access_token=TOKENS["tiktok"], pixel_code=TIKTOK_PIXEL),
        "snap": SnapFake(access_token=TOKENS["snap"], pixel_id=SNAP_PIXEL),
        "pinterest": PinterestFake(access_token=TOKENS["pinterest"], ad_account_id=PINTEREST_ACCOUNT),
        "reddit": RedditFake(access_token=TOKENS["reddit"], pixel_id=REDDIT_PIXEL),
        "google": create_google_fake(
            client_id=client_id,
            client_secret=client_secret,
            refresh_tokens=[refresh],
            customer_id=GOOGLE_CUSTOMER,
        ),
        "linkedin": create_linkedin_fake(access_token=TOKENS["linkedin"]),
    }


def router_yaml(queue_url: str, urls: dict[str, str] | None, dispatch: dict[str, float] | None = None) -> str:
    """A router.yaml with one backend source and all seven destinations, at `urls` or at a closed port."""
    url = {name: (urls or {}).get(name, f"http://127.0.0.1:{CLOSED_PORT}") for name in PLATFORMS}
    timings = (PAUSED_DISPATCH if urls is None else {}) | (dispatch or {})
    client_id, client_secret, refresh = GOOGLE_CLIENT
    lines = [
        "server:",
        f"  rate_limits: {{per_ip: {UNLIMITED}, per_key: {UNLIMITED}}}",
        "queue:",
        f'  url: "{queue_url}"',
        "identity:",
        "  default_phone_region: US",
        *(["dispatch:", *(f"  {key}: {value}" for key, value in timings.items())] if timings else []),
        "sources:",
        f"  - {{id: backend, kind: server, secret: {BACKEND_SECRET}}}",
        "destinations:",
        f'  - {{id: meta_main, type: meta, pixel_id: "{META_PIXEL}", access_token: {TOKENS["meta"]},',
        f'     base_url: "{url["meta"]}"}}',
        f"  - {{id: tiktok_main, type: tiktok, pixel_code: {TIKTOK_PIXEL}, access_token: {TOKENS['tiktok']},",
        f'     base_url: "{url["tiktok"]}"}}',
        f"  - {{id: snap_main, type: snap, pixel_id: {SNAP_PIXEL}, access_token: {TOKENS['snap']},",
        f'     base_url: "{url["snap"]}"}}',
        f'  - {{id: pinterest_main, type: pinterest, ad_account_id: "{PINTEREST_ACCOUNT}",',
        f'     access_token: {TOKENS["pinterest"]}, base_url: "{url["pinterest"]}"}}',
        f"  - {{id: reddit_main, type: reddit, pixel_id: {REDDIT_PIXEL}, access_token: {TOKENS['reddit']},",
        f'     base_url: "{url["reddit"]}"}}',
        "  - id: google_main",
        "    type: google",
        "    api: data_manager",
        f'    customer_id: "{GOOGLE_CUSTOMER}"',
        f'    conversions: {{purchase: "456", lead: customers/{GOOGLE_CUSTOMER}/conversionActions/789}}',
        f"    client_id: {client_id}",
        f"    client_secret: {client_secret}",
        f'    refresh_token: "{refresh}"',
        f'    token_url: "{url["google"]}/token"',
        f'    base_url: "{url["google"]}"',
        "  - id: linkedin_main",
        "    type: linkedin",
        f"    access_token: {TOKENS['linkedin']}",
        f'    base_url: "{url["linkedin"]}"',
        f'    conversions: {{purchase: "{LINKEDIN_RULES["purchase"]}", lead: "{LINKEDIN_RULES["lead"]}"}}',
    ]
    return "\n".join(lines) + "\n"


@dataclass
class Fleet:
    """The fakes' process: base URLs per platform and the control URL for the counts."""

    proc: subprocess.Popen[bytes]
    urls: dict[str, str]
    control: str

    def counts(self) -> dict[str, dict[str, int]]:
        """Per platform: accepted events, requests, contract violations (and `events` unique ids)."""
        answer: dict[str, dict[str, int]] = httpx.get(f"{self.control}/counts", timeout=30).json()
        return answer

    def cpu_seconds(self) -> float:
        """CPU seconds the fakes' process has used."""
        return machine.cpu_seconds(self.proc.pid)


@contextmanager
def fleet(cpu_list: str | None) -> Iterator[Fleet]:
    """Start `python -m bench.platforms` (pinned to `cpu_list`) and stop it at the end."""
    command = machine.pinned([sys.executable, "-m", "bench.platforms"], cpu_list)
    proc = subprocess.Popen(command, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the fakes' process exited with {proc.wait()}")
        urls: dict[str, str] = json.loads(line)
        control = urls.pop("control")
        yield Fleet(proc, urls, control)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _counts(platforms: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {
        name: {
            "received": len(ids := (fake.event_ids() if hasattr(fake, "event_ids") else fake.ids())),
            "unique": len(set(ids)),
            "requests": len(fake.requests),
            "violations": len(fake.violations),
        }
        for name, fake in platforms.items()
    }


def main() -> None:
    """Serve the seven fakes and the control app until SIGTERM."""
    platforms = fakes()

    async def counts(_: Request) -> JSONResponse:
        return JSONResponse(_counts(platforms))

    control = Starlette(routes=[Route("/counts", counts)])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with ExitStack() as stack:
        urls = {name: stack.enter_context(serve(fake.app)).url for name, fake in platforms.items()}
        urls["control"] = stack.enter_context(serve(control)).url
        sys.stdout.write(json.dumps(urls) + "\n")
        sys.stdout.flush()
        while not stop.wait(0.5):
            if os.getppid() == 1:  # the bench died without stopping us
                break
        time.sleep(0)


if __name__ == "__main__":
    main()
