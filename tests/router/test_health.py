"""Health: /healthz while the process lives, /readyz only while the queue answers."""

from __future__ import annotations

from collections.abc import Callable

from starlette.testclient import TestClient

from router.app import create_app
from router.config import Config


def test_healthz_answers_ok(client: TestClient) -> None:
    """The process is alive: 200 {"status": "ok"}."""
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readyz_is_200_with_the_queue_depth_when_healthy(client: TestClient) -> None:
    """Config loaded and the queue reachable: 200 ready, with the (empty) queue's depth."""
    response = client.get("/readyz")
    assert (response.status_code, response.json()) == (200, {"status": "ready", "queue_depth": 0})


def test_readyz_is_503_when_the_queue_is_down(make_config: Callable[..., Config]) -> None:
    """The queue closed under a running app: /readyz answers 503 while /healthz stays 200."""
    app = create_app(make_config())
    with TestClient(app, base_url="http://router.test") as client:
        assert client.get("/readyz").status_code == 200
        client.portal.call(app.state.queue.close)
        response = client.get("/readyz")
        assert (response.status_code, response.json()) == (503, {"status": "queue unreachable"})
        assert client.get("/healthz").status_code == 200


def test_readyz_is_503_before_startup(make_config: Callable[..., Config]) -> None:
    """Without the lifespan having run (queue never opened), the app is not ready."""
    client = TestClient(create_app(make_config()), base_url="http://router.test")
    response = client.get("/readyz")
    assert (response.status_code, response.json()) == (503, {"status": "starting"})
