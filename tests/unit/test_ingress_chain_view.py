"""The page's routes over the chain and the market (ingress/chain_view.py, pool_charts.py):
``GET /api/info``, ``/api/tx/{signature}`` and ``/api/markets/pools``, every answer checked
against the OpenAPI document. The pools come from a real local market's ``/pools``; the
RPC is a small JSON-RPC double. A landed transaction's view is checked on the real stack
(tests/integration/test_browser.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from decimal import Decimal, localcontext
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ingress.app import RUNNER_OPTIONS, build_app
from ingress.hub import StatusHub
from ingress.pool_view import BINS_EACH_SIDE
from localnet.chain import Chain
from localnet.market import Market
from pipeline.venue_set import VenueSet
from tests.helpers import free_port
from tests.unit.test_ingress_fakes import FakeBus, FakeStore, ingress_config
from tests.unit.test_ingress_openapi import validate_response

# The shape of a signature (88 base58 characters); no RPC here has it.
SIGNATURE = "5" * 88
Answer = Callable[[str, list[Any]], dict[str, Any]]


async def serve(app: web.Application) -> AsyncIterator[TestClient[Any, Any]]:
    server = TestServer(app)
    await server.start_server(**RUNNER_OPTIONS)
    async with TestClient(server) as client:
        yield client


async def ingress(**config: Any) -> AsyncIterator[TestClient[Any, Any]]:
    app = build_app(ingress_config(**config), producer=FakeBus(), store=FakeStore(),
                    hub=StatusHub())
    async for client in serve(app):
        yield client


def rpc_double(answer: Answer) -> web.Application:
    """A JSON-RPC endpoint answering each call with ``answer(method, params)``."""
    async def handle(request: web.Request) -> web.Response:
        call = await request.json()
        return web.json_response({"jsonrpc": "2.0", "id": call["id"],
                                  **answer(call["method"], call["params"])})

    app = web.Application()
    app.router.add_post("/", handle)
    return app


async def get(client: TestClient[Any, Any], url: str) -> tuple[int, Any]:
    async with client.get(url) as resp:
        doc = await resp.json()
    validate_response(_documented(url), "get", resp.status, doc)
    return resp.status, doc


def _documented(url: str) -> str:
    path = url.split("?")[0]
    return "/api/tx/{signature}" if path.startswith("/api/tx/") else path


@pytest.mark.parametrize(("host", "keys"), [("127.0.0.1", "optional"),
                                            ("0.0.0.0", "required")])
async def test_info_names_the_cluster_the_venues_and_whether_keys_are_required(
        host: str, keys: str) -> None:
    venues = VenueSet(kind="onchain", cluster="devnet")
    async for client in ingress(host=host, venues=venues):
        if keys == "required":  # /api/info is an API call: it needs the key it announces
            async with client.get("/api/info") as resp:
                assert resp.status == 401
            return
        status, doc = await get(client, "/api/info")
        assert (status, doc) == (200, {"cluster": "devnet", "venueKind": "onchain",
                                       "venues": ["raydium", "meteora"], "explorer": True,
                                       "apiKeys": keys})
    async for client in ingress():
        assert (await get(client, "/api/info"))[1]["explorer"] is False  # a localnet


async def test_info_says_keys_are_required_to_a_caller_with_a_key() -> None:
    from tests.unit.test_ingress_auth import MemoryKeys, make_key

    keys = MemoryKeys()
    token = await make_key(keys, "page", "read")
    app = build_app(ingress_config(host="0.0.0.0"), producer=FakeBus(), store=FakeStore(),
                    hub=StatusHub(), api_keys=keys)
    async for client in serve(app):
        async with client.get("/api/info", headers={"Authorization": f"Bearer {token}"}) as r:
            doc = await r.json()
        validate_response("/api/info", "get", r.status, doc)
        assert (r.status, doc["apiKeys"]) == (200, "required")


async def test_a_transaction_the_rpc_does_not_have_is_404_and_asks_at_confirmed() -> None:
    calls: list[tuple[str, list[Any]]] = []

    def answer(method: str, params: list[Any]) -> dict[str, Any]:
        calls.append((method, params))
        return {"result": None}

    async for rpc in serve(rpc_double(answer)):
        async for client in ingress(rpc_url=str(rpc.make_url("/"))):
            status, doc = await get(client, f"/api/tx/{SIGNATURE}")
    assert (status, doc["error"]["code"], doc["error"]["field"]) == (
        404, "transaction_not_found", "signature")
    assert calls == [("getTransaction", [SIGNATURE, {
        "encoding": "jsonParsed", "maxSupportedTransactionVersion": 0,
        "commitment": "confirmed"}])]


async def test_an_rpc_error_or_a_dead_rpc_is_502() -> None:
    def refuse(_method: str, _params: list[Any]) -> dict[str, Any]:
        return {"error": {"code": -32603, "message": "internal"}}

    async for rpc in serve(rpc_double(refuse)):
        async for client in ingress(rpc_url=str(rpc.make_url("/"))):
            status, doc = await get(client, f"/api/tx/{SIGNATURE}")
            assert (status, doc["error"]["code"]) == (502, "rpc_unavailable")
            assert "internal" in doc["error"]["message"]
    async for client in ingress(rpc_url=f"http://127.0.0.1:{free_port()}/"):
        status, doc = await get(client, f"/api/tx/{SIGNATURE}")
        assert (status, doc["error"]["code"]) == (502, "rpc_unavailable")


@pytest.mark.parametrize("bad", ["1" * 63, "1" * 91, "0" * 64, "O" * 64, "l" * 64])
async def test_a_malformed_signature_is_400_before_any_rpc_call(bad: str) -> None:
    async for client in ingress(rpc_url=f"http://127.0.0.1:{free_port()}/"):
        status, doc = await get(client, f"/api/tx/{bad}")
        assert (status, doc["error"]["code"], doc["error"]["field"]) == (
            400, "invalid_signature", "signature")


async def test_without_an_rpc_the_transaction_view_is_503() -> None:
    async for client in ingress():
        status, doc = await get(client, f"/api/tx/{SIGNATURE}")
        assert (status, doc["error"]["code"]) == (503, "not_configured")


@pytest.fixture(scope="module")
def market_pools() -> dict[str, Any]:
    """A real local market's ``/pools`` document, as it crosses the wire."""
    chain = Chain(slot_ms=50)
    market = Market(chain, seed=21, drift_bps=0)
    for _ in range(3):
        chain.tick()
    doc: dict[str, Any] = orjson.loads(orjson.dumps(market.pools_json()))
    return doc


def market_double(doc: dict[str, Any]) -> web.Application:
    async def pools(_request: web.Request) -> web.Response:
        return web.json_response(doc)

    app = web.Application()
    app.router.add_get("/pools", pools)
    return app


async def test_pools_are_the_markets_curves_with_integer_amounts(
        market_pools: dict[str, Any]) -> None:
    async for market in serve(market_double(market_pools)):
        venues = VenueSet(kind="local-market", venue_url=str(market.make_url("/")))
        async for client in ingress(venues=venues):
            status, doc = await get(client, "/api/markets/pools")
    assert status == 200 and doc["unavailable"] is None
    assert doc["slot"] == market_pools["contextSlot"] == 3
    by_key = {p["pool"]: p for p in doc["pools"]}
    assert {"cpmm", "dlmm"} <= {p["kind"] for p in doc["pools"]}
    for listed in market_pools["pools"]:
        shown = by_key[listed["ammKey"]]
        assert (shown["x"]["mint"], shown["y"]["mint"]) == (listed["mintX"], listed["mintY"])
        if shown["kind"] == "cpmm":
            assert (shown["reserveX"], shown["reserveY"]) == (
                str(listed["reserveX"]), str(listed["reserveY"]))
            assert shown["feeRate"] == int(listed["cpmm"]["tradeFeeRate"])
        else:
            active = int(listed["dlmm"]["activeId"])
            assert shown["activeId"] == active
            with localcontext() as ctx:  # the market's price, to 10 significant digits
                ctx.prec = 10
                assert Decimal(shown["activePrice"]) == +Decimal(listed["price"])
            near = {int(b["binId"]): b for b in listed["dlmm"]["bins"]
                    if abs(int(b["binId"]) - active) <= BINS_EACH_SIDE}
            assert [b["binId"] for b in shown["bins"]] == sorted(near)
            assert len(near) < len(listed["dlmm"]["bins"])  # the window cut some
            assert all(b["amountX"] == str(near[b["binId"]]["amountX"])
                       and b["amountY"] == str(near[b["binId"]]["amountY"])
                       for b in shown["bins"])


@pytest.mark.parametrize(("venues", "reason"), [
    (None, "venues: none"), (VenueSet(kind="onchain"), "needs the Solana RPC"),
    (VenueSet(kind="jupiter", venue_url="http://unused"), "Jupiter does not publish")])
async def test_without_pool_state_there_are_no_pools_and_the_reason(
        venues: VenueSet | None, reason: str) -> None:
    async for client in ingress(venues=venues):
        status, doc = await get(client, "/api/markets/pools")
    assert (status, doc["slot"], doc["pools"]) == (200, None, [])
    assert reason in doc["unavailable"]


async def test_pools_take_no_parameters_and_a_dead_market_is_502() -> None:
    venues = VenueSet(kind="local-market", venue_url=f"http://127.0.0.1:{free_port()}")
    async for client in ingress(venues=venues):
        status, doc = await get(client, "/api/markets/pools?pair=SOL")
        assert (status, doc["error"]["code"], doc["error"]["field"]) == (
            400, "unknown_parameter", "pair")
        status, doc = await get(client, "/api/markets/pools")
        assert (status, doc["error"]["code"]) == (502, "venue_unavailable")
