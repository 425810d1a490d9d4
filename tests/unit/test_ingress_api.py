"""Read routes, health, metrics and the UI, on in-memory ports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError

from ingress import health
from ingress.app import build_app
from ingress.hub import StatusHub
from ingress.kafka_bus import KafkaOrderBus
from ingress.ports import BrokerUnavailable, WorkerBeat
from pipeline.tokens import SOL, USDC
from tests.unit import test_ingress_fakes as fakes
from tests.unit.test_ingress_fakes import (
    FakeBus,
    FakeStore,
    Ingress,
    ingress_config,
    lifecycle,
    record,
)
from tests.unit.test_ingress_openapi import validate_response

ingress = fakes.ingress


async def get(ingress: Ingress, url: str) -> tuple[int, Any]:
    async with ingress.client.get(url) as resp:
        return resp.status, await resp.json()


async def test_order_detail_has_tokens_amounts_and_ordered_events(ingress: Ingress) -> None:
    oid = "order-detail-1"
    ingress.store.orders[oid] = record(
        oid, status="confirmed", venue="raydium", tx_signature="5igSig", slot=99,
        amount_in_actual=1_500_000_000, amount_out=224_900_000, executed_price="149.933333",
        expected_out=225_000_000, min_out=223_875_000, quotes=[{"venue": "raydium"}])
    events = lifecycle(oid)
    ingress.store.events = list(reversed(events))  # storage order must not matter
    status, doc = await get(ingress, f"/api/orders/{oid}")
    assert status == 200
    assert doc["tokenIn"] == {"symbol": "SOL", "mint": SOL.mint, "decimals": 9}
    assert doc["tokenOut"] == {"symbol": "USDC", "mint": USDC.mint, "decimals": 6}
    assert (doc["amountIn"], doc["amountInUi"]) == (1_500_000_000, "1.5")
    assert (doc["amountOut"], doc["amountOutUi"]) == (224_900_000, "224.9")
    assert (doc["venue"], doc["txHash"], doc["executedPrice"]) == (
        "raydium", "5igSig", "149.933333")
    assert (doc["status"], doc["attempts"], doc["error"]) == ("confirmed", 1, None)
    assert doc["submittedAt"] == "2023-11-14T22:13:20.000Z"
    assert doc["quotes"] == [{"venue": "raydium"}]
    assert [e["status"] for e in doc["events"]] == [
        "pending", "routing", "building", "submitted", "confirmed"]
    assert doc["events"][0] == {"eventId": f"{oid}:1:pending", "status": "pending",
                                "attempt": 1, "ts": "2023-11-14T22:13:20.010Z", "data": {}}


SPLIT_ROUTE = {"version": 1, "split": True, "legs": [
    {"venue": "meteora", "pool": "dlmm-pair", "amountIn": 1_320_000_000,
     "expectedOut": 198_000_000, "minOut": 197_000_000, "fractionBps": 8800},
    {"venue": "raydium", "pool": "cp-pool", "amountIn": 180_000_000,
     "expectedOut": 27_000_000, "minOut": 26_800_000, "fractionBps": 1200}]}


async def test_the_listing_carries_a_split_orders_route(ingress: Ingress) -> None:
    # the list's venue is the larger leg's; the page labels a split from the route
    ingress.store.orders["order-split"] = record(
        "order-split", status="confirmed", venue="meteora", route=SPLIT_ROUTE)
    ingress.store.orders["order-single"] = record("order-single", status="pending")
    status, doc = await get(ingress, "/api/orders")
    assert status == 200
    by_id = {o["orderId"]: o for o in doc["orders"]}
    assert by_id["order-split"]["route"] == SPLIT_ROUTE
    assert by_id["order-split"]["venue"] == "meteora"
    assert by_id["order-single"]["route"] is None
    validate_response("/api/orders", "get", status, doc)


async def test_failed_order_shows_its_error(ingress: Ingress) -> None:
    ingress.store.orders["order-failed"] = record(
        "order-failed", status="failed", error_code="no_route", error_message="no venue")
    _, doc = await get(ingress, "/api/orders/order-failed")
    assert doc["error"] == {"code": "no_route", "message": "no venue"}
    assert (doc["amountOut"], doc["amountOutUi"], doc["events"]) == (None, None, [])


@pytest.mark.parametrize("order_id", ["missing-order", "x", "bad%20id%21"])
async def test_unknown_order_is_404(ingress: Ingress, order_id: str) -> None:
    status, doc = await get(ingress, f"/api/orders/{order_id}")
    assert status == 404
    assert doc["error"]["code"] == "order_not_found"


async def test_listing_pages_newest_first_with_a_cursor(ingress: Ingress) -> None:
    for i in range(7):  # two share a timestamp: the id breaks the tie
        oid = f"order-page-{i}"
        ingress.store.orders[oid] = record(oid, submitted_ms=1_700_000_000_000 + min(i, 5) * 1000)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        url = "/api/orders?limit=3" + (f"&before={cursor}" if cursor else "")
        status, doc = await get(ingress, url)
        assert status == 200
        seen += [o["orderId"] for o in doc["orders"]]
        pages += 1
        cursor = doc["nextBefore"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [f"order-page-{i}" for i in (6, 5, 4, 3, 2, 1, 0)]
    _, doc = await get(ingress, "/api/orders")
    assert len(doc["orders"]) == 7 and doc["nextBefore"] is None
    assert "events" not in doc["orders"][0]


@pytest.mark.parametrize(("query", "field"), [
    ("limit=0", "limit"), ("limit=201", "limit"), ("limit=abc", "limit"), ("limit=-1", "limit"),
    ("limit=%C2%B2", "limit"), ("before=not-a-cursor", "before"), ("before=WzEsMl0", "before"),
])
async def test_bad_listing_parameters_are_400(ingress: Ingress, query: str, field: str) -> None:
    status, doc = await get(ingress, f"/api/orders?{query}")
    assert status == 400
    assert doc["error"]["field"] == field


async def test_store_unavailable_is_503(ingress: Ingress) -> None:
    from ingress.ports import StoreUnavailable

    async def down(*_: Any) -> None:
        raise StoreUnavailable(message="database unavailable: test")

    ingress.store.get_order = down  # type: ignore[method-assign,assignment]
    status, doc = await get(ingress, "/api/orders/some-order")
    assert (status, doc["error"]["code"]) == (503, "database_unavailable")


@pytest.fixture
async def rpc_url() -> AsyncIterator[tuple[str, dict[str, Any]]]:
    answer: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "result": "ok"}

    async def handle(request: web.Request) -> web.Response:
        assert (await request.json())["method"] == "getHealth"
        return web.json_response(answer)

    app = web.Application()
    app.router.add_post("/", handle)
    async with TestServer(app) as server:
        yield str(server.make_url("/")), answer


async def test_healthz_reports_each_check(rpc_url: tuple[str, dict[str, Any]],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "CACHE_S", 0.0)  # every call checks afresh
    url, answer = rpc_url
    bus, store = FakeBus(), FakeStore()
    app = build_app(ingress_config(rpc_url=url), producer=bus, store=store, hub=StatusHub())
    async with TestClient(TestServer(app)) as client:
        async with client.get("/healthz") as resp:
            doc = await resp.json()
            assert resp.status == 200, doc
        assert doc["status"] == "ok"
        assert {k: v["ok"] for k, v in doc["checks"].items()} == {
            "broker": True, "database": True, "rpc": True, "workers": True}

        store.healthy = False
        answer.pop("result")
        answer["error"] = {"code": -32005, "message": "Node is behind"}
        async with client.get("/healthz") as resp:
            doc = await resp.json()
            assert resp.status == 503
        assert doc["failing"] == ["database", "rpc"]
        assert "Node is behind" in doc["checks"]["rpc"]["error"]
        assert doc["checks"]["broker"]["ok"] is True


async def test_healthz_without_rpc_configured_skips_it(ingress: Ingress) -> None:
    status, doc = await get(ingress, "/healthz")
    assert status == 200
    assert doc["checks"]["rpc"] == {"ok": True, "skipped": "not configured"}


async def test_metrics_exposition(ingress: Ingress) -> None:
    async with ingress.client.get("/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    for name in ("orderflow_ingress_ws_clients", "orderflow_ingress_ws_messages_sent_total",
                 "orderflow_ingress_status_decode_errors_total"):
        assert name in text


async def test_ui_is_served(ingress: Ingress) -> None:
    async with ingress.client.get("/") as resp:
        assert resp.status == 200
        assert "<form" in await resp.text()
    for asset, kind in (("/ui/js/main.js", "javascript"), ("/ui/js/swap.js", "javascript"),
                        ("/ui/style.css", "text/css"), ("/ui/favicon.svg", "image/svg+xml")):
        async with ingress.client.get(asset) as resp:
            assert resp.status == 200, asset
            assert kind in resp.headers["Content-Type"], asset  # modules need a JS MIME type


class RefusingProducer:
    def __init__(self, error: BaseException | None) -> None:
        self.error = error

    async def send_and_wait(self, topic: str, value: bytes, key: bytes) -> None:
        if self.error is not None:
            raise self.error
        await asyncio.Event().wait()  # never acknowledged


@pytest.mark.parametrize("error", [KafkaConnectionError("refused"), KafkaTimeoutError(), None])
async def test_kafka_failures_become_broker_unavailable(error: BaseException | None) -> None:
    bus = KafkaOrderBus(RefusingProducer(error), send_timeout_s=0.05)
    with pytest.raises(BrokerUnavailable) as raised:
        await bus.send("orders", b"k", b"v")
    assert raised.value.code == "broker_unavailable" and "'orders'" in raised.value.message


class AckingProducer:
    """Acks every send (as Tansu does even for a topic that does not exist)."""

    def __init__(self, topics: set[str]) -> None:
        self.existing = topics
        self.metadata_calls = 0
        self.client = self

    async def send_and_wait(self, topic: str, value: bytes, key: bytes) -> None:
        await asyncio.sleep(0)

    async def fetch_all_metadata(self) -> Any:
        self.metadata_calls += 1
        await asyncio.sleep(0.01)
        names = set(self.existing)

        class Metadata:
            def topics(self) -> set[str]:
                return names

        return Metadata()


async def test_an_ack_for_a_topic_that_does_not_exist_is_broker_unavailable() -> None:
    producer = AckingProducer(set())
    bus = KafkaOrderBus(producer)
    with pytest.raises(BrokerUnavailable) as raised:
        await bus.send("orders", b"k", b"v")
    assert "does not exist" in raised.value.message
    producer.existing.add("orders")
    await bus.send("orders", b"k", b"v")


async def test_concurrent_sends_share_the_metadata_confirmation() -> None:
    producer = AckingProducer({"orders"})
    bus = KafkaOrderBus(producer)
    await asyncio.gather(*(bus.send("orders", b"k", b"v") for _ in range(50)))
    assert 1 <= producer.metadata_calls <= 3, producer.metadata_calls


class FakeWorkers:
    def __init__(self, *beats: WorkerBeat) -> None:
        self.rows = list(beats)
        self.reads = 0

    async def beats(self) -> list[WorkerBeat]:
        self.reads += 1
        return list(self.rows)


async def test_healthz_needs_live_executor_and_sinks_workers_and_is_cached() -> None:
    workers = FakeWorkers()
    app = build_app(ingress_config(), producer=FakeBus(), store=FakeStore(), hub=StatusHub(),
                    workers=workers)
    async with TestClient(TestServer(app)) as client:
        async def healthz() -> tuple[int, Any]:
            async with client.get("/healthz") as resp:
                return resp.status, await resp.json()

        status, doc = await healthz()
        assert (status, doc["failing"]) == (503, ["workers"])
        assert "executor or sinks" in doc["checks"]["workers"]["error"]
        reads = workers.reads
        await asyncio.gather(*(healthz() for _ in range(20)))
        assert workers.reads == reads  # cached for a second: 21 polls, one read
        assert health.CACHE_S <= 2

    for rows, ready in [
        ([WorkerBeat("a", ("executor", "sinks"), 0.5, False)], True),
        ([WorkerBeat("a", ("executor",), 0.5, False), WorkerBeat("b", ("sinks",), 9.9, False)],
         True),
        ([WorkerBeat("a", ("executor", "sinks"), 10.5, False)], False),  # stale
        ([WorkerBeat("a", ("executor", "sinks"), 0.1, True)], False),  # stopping
        ([WorkerBeat("a", ("sinks",), 0.1, False)], False),  # nobody executes
    ]:
        try:
            live = await health.workers_present(FakeWorkers(*rows))
        except health.NotReady:
            live = None
        assert (live is not None) == ready, rows
