"""API keys on WebSockets (ingress/auth.py, ws_api.py): a browser cannot set a header on a
WebSocket, so the key may come as the subprotocol ``bearer.<key>`` beside ``orderflow``
(the server answers ``orderflow``, never the key); never in the URL. A keyed socket sees
its own orders only: the all-orders stream is the key's orders, and a control message
cannot widen it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import WSServerHandshakeError, hdrs
from aiohttp.test_utils import TestClient, TestServer

from ingress.app import RUNNER_OPTIONS, build_app
from ingress.auth import SUBPROTOCOL
from ingress.hub import StatusHub
from ingress.ports import StoreUnavailable
from tests.unit.test_ingress_auth import MemoryKeys, bearer, make_key
from tests.unit.test_ingress_fakes import FakeBus, FakeStore, ingress_config, lifecycle, record
from tests.unit.test_ingress_ws import ids, receive, receive_until

WS = "/api/orders/ws"
ORDER = {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "1.5"}


@dataclass
class Public:
    client: TestClient[Any, Any]
    keys: MemoryKeys
    store: FakeStore
    hub: StatusHub


@pytest.fixture
async def public() -> AsyncIterator[Public]:
    """An ingress listening beyond loopback (keys required), on doubles."""
    keys, store, hub = MemoryKeys(), FakeStore(), StatusHub()
    store.owners = keys.orders  # the read model's join, as where_sql does it
    app = build_app(ingress_config(host="0.0.0.0"), producer=FakeBus(), store=store, hub=hub,
                    api_keys=keys)
    server = TestServer(app)
    await server.start_server(**RUNNER_OPTIONS)
    async with TestClient(server) as client:
        yield Public(client, keys, store, hub)


def offered(token: str) -> tuple[str, str]:
    return (SUBPROTOCOL, f"bearer.{token}")


async def handshake_refused(public: Public, url: str = WS, **kwargs: Any) -> int:
    with pytest.raises(WSServerHandshakeError) as info:
        await public.client.ws_connect(url, **kwargs)
    return info.value.status


async def test_the_key_as_a_subprotocol_authenticates_and_the_answer_is_orderflow(
        public: Public) -> None:
    token = await make_key(public.keys, "page", "read")
    async with public.client.ws_connect(WS, protocols=offered(token)) as ws:
        assert ws.protocol == SUBPROTOCOL
        assert token not in str(ws._response.headers)  # never echoed
        assert ws._response.headers[hdrs.SEC_WEBSOCKET_PROTOCOL] == SUBPROTOCOL
        assert (await receive(ws))["type"] == "subscribed"
    assert await handshake_refused(public, protocols=offered(token[:-2] + "xx")) == 401
    assert await handshake_refused(public, protocols=(f"bearer.{token}",)) == 401  # no echo
    assert await handshake_refused(public, protocols=(SUBPROTOCOL,)) == 401  # no key
    assert await handshake_refused(public, protocols=(*offered(token), "bearer.other")) == 401
    assert await handshake_refused(public, protocols=offered(token),
                                   headers=bearer(token)) == 401  # one key, sent once


async def test_the_subprotocol_key_is_checked_like_the_header(public: Public) -> None:
    reader = await make_key(public.keys, "reader", "read")
    trader = await make_key(public.keys, "trader", "trade")
    assert await handshake_refused(public, "/api/orders/execute",
                                   protocols=offered(reader)) == 403  # insufficient_scope
    async with public.client.ws_connect("/api/orders/execute", protocols=offered(trader)) as ws:
        await ws.send_json(ORDER)
        accepted = await receive(ws)
    assert accepted["type"] == "accepted"
    assert public.keys.orders[accepted["orderId"]] == public.keys.rows[
        trader.split("_")[1]].key.key_id  # attributed to the subprotocol's key
    slow = await make_key(public.keys, "slow", "read", rate_per_s=0.2, burst=1)
    async with public.client.ws_connect(WS, protocols=offered(slow)):
        pass
    assert await handshake_refused(public, protocols=offered(slow)) == 429


async def test_the_key_is_taken_only_from_a_websocket_handshake_never_the_url(
        public: Public) -> None:
    token = await make_key(public.keys, "reader", "read")
    async with public.client.get("/api/orders", headers={
            hdrs.SEC_WEBSOCKET_PROTOCOL: ", ".join(offered(token))}) as resp:
        assert resp.status == 401  # not an upgrade: only Authorization counts
    for query in (f"?access_token={token}", f"?token={token}", f"?apiKey={token}"):
        assert await handshake_refused(public, WS + query) == 401


async def test_a_foreign_origin_is_refused_even_with_a_valid_key(public: Public) -> None:
    token = await make_key(public.keys, "reader", "read")
    assert await handshake_refused(public, protocols=offered(token),
                                   headers={"Origin": "https://evil.example"}) == 403
    host = public.client.make_url("/").host
    async with public.client.ws_connect(WS, protocols=offered(token), headers={
            "Origin": f"http://{host}:{public.client.port}"}) as ws:  # the page's own origin
        assert (await receive(ws))["type"] == "subscribed"


async def test_a_keyed_all_orders_stream_is_the_keys_own_orders(public: Public) -> None:
    mine_token = await make_key(public.keys, "mine", "trade")
    mine = public.keys.rows[mine_token.split("_")[1]].key.key_id
    other = await make_key(public.keys, "other", "trade")
    for oid, owner in (("order-own-old", mine), ("order-their-old", "someone")):
        public.store.orders[oid] = record(oid)
        public.store.events += lifecycle(oid)[:2]
        await public.keys.record_order(oid, owner)
    async with public.client.ws_connect(WS, protocols=offered(mine_token)) as ws:
        backlog = await receive_until(ws, "subscribed")
        assert ids(backlog) == ["order-own-old:1:pending", "order-own-old:1:routing",
                                "subscribed"] and backlog[-1]["all"] is True
        async with public.client.post("/api/orders/execute", json=ORDER,
                                      headers=bearer(other)) as resp:
            theirs = (await resp.json())["orderId"]
        async with public.client.post("/api/orders/execute", json=ORDER,
                                      headers=bearer(mine_token)) as resp:
            own = (await resp.json())["orderId"]
        for oid in (theirs, own, "order-their-old"):
            for event in lifecycle(oid)[2:4]:
                public.hub.publish(event)
        live = [await receive(ws) for _ in range(2)]
        assert ids(live) == [f"{own}:1:building", f"{own}:1:submitted"]
        await ws.close()


async def test_a_control_message_cannot_widen_a_keyed_stream(public: Public) -> None:
    token = await make_key(public.keys, "mine", "read")
    key_id = public.keys.rows[token.split("_")[1]].key.key_id
    await public.keys.record_order("order-own-1", key_id)
    await public.keys.record_order("order-their-1", "someone")
    async with public.client.ws_connect(f"{WS}?orderId=order-own-1",
                                        protocols=offered(token)) as ws:
        assert (await receive(ws))["type"] == "subscribed"
        await ws.send_json({"action": "subscribe", "orderId": "order-their-1"})
        refused = await receive(ws)
        assert refused["type"] == "error"
        assert (refused["error"]["code"], refused["error"]["field"]) == (
            "order_not_found", "orderId")
        await ws.send_json({"action": "subscribe", "all": True})
        assert (await receive_until(ws, "subscribed"))[-1]["all"] is True
        for oid in ("order-their-1", "order-own-1"):
            public.hub.publish(lifecycle(oid)[0])
        assert ids([await receive(ws)]) == ["order-own-1:1:pending"]  # theirs never comes
        await ws.close()


class FailingOwners(MemoryKeys):
    async def owned(self, key_id: str, order_ids: Any) -> set[str]:
        raise StoreUnavailable(message="test database is down")


async def test_when_ownership_cannot_be_read_the_stream_closes_try_again_later() -> None:
    keys, hub = FailingOwners(), StatusHub()
    token = await make_key(keys, "mine", "read")
    app = build_app(ingress_config(host="0.0.0.0"), producer=FakeBus(), store=FakeStore(),
                    hub=hub, api_keys=keys)
    server = TestServer(app)
    await server.start_server(**RUNNER_OPTIONS)
    async with TestClient(server) as client, client.ws_connect(
            WS, protocols=offered(token)) as ws:
        assert (await receive(ws))["type"] == "subscribed"
        hub.publish(lifecycle("order-unknown-1")[0])
        msg = await ws.receive(timeout=5)
        assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == 1013, msg
