"""A shop's test pages for the browser test: each loads `<router>/tag.js` with the documented snippet.

`shop_app(router_url, key)` is an ASGI app with a landing page `/` and a thank-you page `/thanks`;
serve it with `tests.fakes.server.serve` on its own loopback port, so the tag runs cross-origin
(another port) against the router, as it does on a real site.
"""

from __future__ import annotations

import html
import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

PAGE = """<!doctype html>
<html>
<head>
<meta charset="utf-8">
<title>{title}</title>
<script>
  window.rt = window.rt || function () {{ (rt.q = rt.q || []).push(arguments); }};
  rt('init', {{ key: {key} }});
  rt('track', 'page_view', {{}}, {{ callback: function (id) {{ window.pageViewId = id; }} }});
</script>
<script async src="{tag}"></script>
</head>
<body><h1>{title}</h1></body>
</html>
"""


def page(router_url: str, key: str, title: str) -> str:
    """The HTML of one page: the queue stub, init and a page view before the tag has loaded."""
    tag = html.escape(f"{router_url}/tag.js")
    return PAGE.format(title=html.escape(title), key=json.dumps(key), tag=tag)


def shop_app(router_url: str, key: str) -> Starlette:
    """The shop: `/` (where ad clicks land) and `/thanks` (where the purchase is tracked)."""

    async def landing(_: Request) -> HTMLResponse:
        return HTMLResponse(page(router_url, key, "Shop"))

    async def thanks(_: Request) -> HTMLResponse:
        return HTMLResponse(page(router_url, key, "Thank you"))

    return Starlette(routes=[Route("/", landing), Route("/thanks", thanks)])
