"""Cross-site requests (issue 9 defect 5): a web page the operator opens must not trade.

A browser lets any page open a WebSocket to any host and POST to it; only the
``Origin`` header tells the server who is asking. Every WebSocket route and every
state-changing request with a foreign ``Origin`` is refused (403 ``forbidden_origin``);
same-origin (the Host the request came to), configured origins
(``ORDERFLOW_ALLOWED_ORIGINS``) and non-browser clients (no Origin) are served; no
route hands out CORS read access.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from ingress.app import RUNNER_OPTIONS, build_app
from ingress.hub import StatusHub
from orderflow.settings import Settings
from pipeline.errors import ConfigError
from pipeline.topics import ORDERS
from tests.unit.test_ingress_fakes import FakeBus, FakeStore, ingress_config

EVIL = "https://evil.example"
FRIEND = "https://trader.example"
ORDER = {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "0.01"}


@pytest.fixture
async def app() -> AsyncIterator[tuple[TestClient[Any, Any], FakeBus]]:
    bus = FakeBus()
    config = ingress_config(allowed_origins=(FRIEND,))
    server = TestServer(build_app(config, producer=bus, store=FakeStore(), hub=StatusHub()))
    await server.start_server(**RUNNER_OPTIONS)
    async with TestClient(server) as client:
        yield client, bus


def own_origin(client: TestClient[Any, Any]) -> str:
    return str(client.make_url("/")).rstrip("/")


@pytest.mark.parametrize("path", ["/api/orders/execute", "/api/orders/ws"])
async def test_websockets_refuse_a_foreign_origin(
        app: tuple[TestClient[Any, Any], FakeBus], path: str) -> None:
    client, bus = app
    for origin in (EVIL, "null", "http://localhost.evil.example", own_origin(client) + "1"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            async with client.ws_connect(path, origin=origin) as ws:
                await ws.send_json(ORDER)
                await ws.receive(timeout=2)
        assert refused.value.status == 403, origin
    assert bus.sent == []


async def test_the_execute_websocket_from_evil_places_no_order(
        app: tuple[TestClient[Any, Any], FakeBus]) -> None:
    client, bus = app
    try:
        async with client.ws_connect("/api/orders/execute", origin=EVIL) as ws:
            await ws.send_json(ORDER)
            await ws.receive(timeout=2)
    except aiohttp.WSServerHandshakeError:
        pass
    assert bus.on(ORDERS) == []


@pytest.mark.parametrize("origin", [None, "own", FRIEND])
async def test_websockets_serve_same_origin_configured_origins_and_non_browsers(
        app: tuple[TestClient[Any, Any], FakeBus], origin: str | None) -> None:
    client, bus = app
    origin = own_origin(client) if origin == "own" else origin
    async with client.ws_connect("/api/orders/execute", origin=origin) as ws:
        await ws.send_json(ORDER)
        assert (await ws.receive_json(timeout=5))["type"] == "accepted"
    async with client.ws_connect("/api/orders/ws", origin=origin) as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "subscribed"
    assert len(bus.on(ORDERS)) == 1


async def test_a_post_from_a_foreign_origin_is_403_and_places_nothing(
        app: tuple[TestClient[Any, Any], FakeBus]) -> None:
    client, bus = app
    for content_type in ("application/json", "text/plain"):
        async with client.post("/api/orders/execute", json=ORDER,
                               headers={"Origin": EVIL, "Content-Type": content_type}) as resp:
            doc = await resp.json()
            assert resp.status == 403, doc
            assert doc["error"]["code"] == "forbidden_origin"
            assert "Access-Control-Allow-Origin" not in resp.headers
    async with client.post("/api/orders/execute", json=ORDER,
                           headers={"Origin": FRIEND}) as resp:
        assert resp.status == 202
    async with client.post("/api/orders/execute", data=b'{"tokenIn": "SOL"}',
                           headers={"Content-Type": "text/plain"}) as resp:
        assert resp.status == 415  # text/plain (a CORS "simple" request) never reaches parsing
    assert len(bus.on(ORDERS)) == 1


@pytest.mark.parametrize("path", ["/api/orders", "/api/orders/execute", "/api/orders/abc12345",
                                  "/healthz", "/metrics", "/api/openapi.json", "/"])
async def test_no_route_grants_cors_read_access(
        app: tuple[TestClient[Any, Any], FakeBus], path: str) -> None:
    client, _ = app
    for method in ("GET", "OPTIONS"):
        headers = {"Origin": EVIL, "Access-Control-Request-Method": "POST",
                   "Access-Control-Request-Headers": "content-type"}
        async with client.request(method, path, headers=headers) as resp:
            granted = {k for k in resp.headers if k.lower().startswith("access-control-")}
            assert granted == set(), (method, path, resp.headers)


def test_allowed_origins_come_from_the_environment() -> None:
    env = {"ORDERFLOW_ALLOWED_ORIGINS": " https://a.example , http://127.0.0.1:8080/ ,,"}
    assert Settings.from_env(env).allowed_origins == ("https://a.example",
                                                      "http://127.0.0.1:8080")
    assert Settings.from_env({}).allowed_origins == ()
    for bad in ("a.example", "https://a.example/path", "ftp://a.example", "*"):
        with pytest.raises(ConfigError):
            Settings.from_env({"ORDERFLOW_ALLOWED_ORIGINS": bad})
