"""``GET /api/orders`` filters: applied or refused with a 400 naming the parameter, never
ignored; and an API key sees only the orders it submitted."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ingress.api_keys import new_key
from ingress.app import build_app
from ingress.hub import StatusHub
from pipeline.tokens import SOL, USDC, USDT
from tests.unit import test_ingress_fakes as fakes
from tests.unit.test_ingress_auth import MemoryKeys, bearer
from tests.unit.test_ingress_fakes import FakeBus, FakeStore, Ingress, ingress_config, record

ingress = fakes.ingress
T0 = 1_700_000_000_000


def seed(store: FakeStore) -> None:
    store.orders = {r.order_id: r for r in (
        record("order-f-1", submitted_ms=T0, status="confirmed", venue="raydium"),
        record("order-f-2", submitted_ms=T0 + 1000, status="failed", venue="meteora"),
        record("order-f-3", submitted_ms=T0 + 2000, status="failed", venue="raydium",
               token_in=USDT.mint, token_out=USDC.mint),
    )}


async def ids(ingress: Ingress, query: str) -> tuple[int, Any]:
    async with ingress.client.get(f"/api/orders?{query}") as resp:
        doc = await resp.json()
    if resp.status != 200:
        return resp.status, doc["error"]
    return resp.status, [o["orderId"] for o in doc["orders"]]


@pytest.mark.parametrize(("query", "expected"), [
    ("status=failed", ["order-f-3", "order-f-2"]),
    ("status=failed,confirmed", ["order-f-3", "order-f-2", "order-f-1"]),
    ("venue=raydium", ["order-f-3", "order-f-1"]),
    ("token=USDT", ["order-f-3"]),
    (f"token={SOL.mint}", ["order-f-2", "order-f-1"]),
    ("type=market", ["order-f-3", "order-f-2", "order-f-1"]),
    ("type=limit", []),
    (f"from={T0 + 1000}", ["order-f-3", "order-f-2"]),
    ("to=2023-11-14T22:13:21Z", ["order-f-1"]),  # T0 + 1 s, exclusive
    ("status=failed&venue=raydium&limit=1", ["order-f-3"]),
])
async def test_filters_are_applied(ingress: Ingress, query: str, expected: list[str]) -> None:
    seed(ingress.store)
    assert await ids(ingress, query) == (200, expected)


@pytest.mark.parametrize(("query", "code", "field"), [
    ("status=failled", "invalid_status", "status"),
    ("status=", "invalid_status", "status"),
    ("type=stop", "invalid_type", "type"),
    ("venue=orca", "invalid_venue", "venue"),
    ("venue=raydium,meteora", "invalid_venue", "venue"),
    ("token=DOGE", "unknown_token", "token"),
    ("from=yesterday", "invalid_time", "from"),
    ("from=2026-01-01T00:00:00", "invalid_time", "from"),  # no zone
    (f"from={T0}&to={T0}", "invalid_time", "to"),
    ("state=failed", "unknown_parameter", "state"),
])
async def test_bad_filters_are_400_never_ignored(ingress: Ingress, query: str, code: str,
                                                 field: str) -> None:
    seed(ingress.store)
    status, error = await ids(ingress, query)
    assert (status, error["code"], error["field"]) == (400, code, field)


async def test_a_key_sees_only_its_own_orders() -> None:
    keys, store = MemoryKeys(), FakeStore()
    seed(store)
    mine, theirs = new_key("mine", "trade"), new_key("theirs", "read")
    await keys.create(mine)
    await keys.create(theirs)
    await keys.record_order("order-f-2", theirs.key.key_id)
    store.owners = keys.orders  # the read model's join, as where_sql does it
    app = build_app(ingress_config(), producer=FakeBus(), store=store, hub=StatusHub(),
                    api_keys=keys)
    async with TestClient(TestServer(app)) as client:
        async with client.post("/api/orders/execute", headers=bearer(mine.token),
                               json={"tokenIn": "SOL", "tokenOut": "USDC",
                                     "amount": "1"}) as resp:
            assert resp.status == 202
            order_id = (await resp.json())["orderId"]
        assert keys.orders[order_id] == mine.key.key_id  # attributed when accepted
        store.orders[order_id] = record(order_id, submitted_ms=T0 + 5000)
        for token, own in ((mine.token, order_id), (theirs.token, "order-f-2")):
            async with client.get("/api/orders", headers=bearer(token)) as resp:
                assert [o["orderId"] for o in (await resp.json())["orders"]] == [own]
        async with client.get("/api/orders/order-f-2", headers=bearer(mine.token)) as resp:
            assert resp.status == 404
        async with client.get("/api/orders/order-f-2", headers=bearer(theirs.token)) as resp:
            assert resp.status == 200
        async with client.get("/api/orders") as resp:  # loopback without a key: all
            assert len((await resp.json())["orders"]) == 4
