"""Ingress on the real broker and the real PostgreSQL.

An order POSTed over HTTP is on ``orders`` byte for byte as the contract says;
a WebSocket that joins late gets the persisted prefix, the broadcast-only
events and then the live ones, in order, each once; ``serve()`` starts and
stops cleanly. Tables come from the real migrations, in a schema of this
module's own so other tests' rows never interfere.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from psycopg import sql
from psycopg.types.json import Jsonb

from ingress.app import RunningIngress, running_ingress, serve
from ingress.config import IngressConfig
from pipeline.lifecycle import (
    Order,
    OrderAccepted,
    OrderConfirmed,
    OrderEvent,
    OrderQuoted,
    OrderRouted,
    OrderSubmitted,
    apply,
)
from pipeline.model import Quote, Venue
from pipeline.tokens import SOL, USDC
from pipeline.topics import ORDER_STATUS, ORDERS
from pipeline.wire import StatusEvent, decode_execute_order, now_ms, parse_iso_ms
from sinks.migrate import migrate
from tests.helpers import free_port, wait_until

pytestmark = pytest.mark.integration

SCHEMA = "ingress_it"


@pytest.fixture(scope="module")
async def topics(broker: str) -> str:
    """Create the two topics ingress uses (idempotently) with the default partition counts."""
    defaults = IngressConfig(bootstrap=broker, database_url="")
    admin = AIOKafkaAdminClient(bootstrap_servers=broker)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [NewTopic(ORDERS, defaults.orders_partitions, 1),
                  NewTopic(ORDER_STATUS, defaults.status_partitions, 1)]
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            await admin.create_topics(missing)
    finally:
        await admin.close()
    return broker


async def schema_dsn(database_url: str, schema: str) -> str:
    """A DSN whose tables live in a fresh ``schema``, created by the real migrations."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
            sql.Identifier(schema)))
        await conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    sep = "&" if "?" in database_url else "?"
    dsn = f"{database_url}{sep}options={quote(f'-c search_path={schema}')}"
    await migrate(dsn)
    return dsn


@pytest.fixture(scope="module")
async def dsn(database_url: str) -> str:
    """The test database, with this module's own schema created by the real migrations."""
    return await schema_dsn(database_url, SCHEMA)


@pytest.fixture(scope="module")
async def ingress(topics: str, dsn: str) -> AsyncIterator[RunningIngress]:
    config = IngressConfig(bootstrap=topics, database_url=dsn, port=free_port())
    async with running_ingress(config) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


async def tail(bootstrap: str, topic: str) -> AIOKafkaConsumer:
    """A group-less consumer positioned at the current end of every partition."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False)
    await consumer.start()
    parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
    consumer.assign(parts)
    await consumer.seek_to_end(*parts)
    for tp in parts:
        await consumer.position(tp)
    return consumer


async def next_with_key(consumer: AIOKafkaConsumer, key: bytes, timeout: float = 15) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for r in records:
                    if r.key == key:
                        return r


async def test_posted_order_is_on_the_orders_topic_exactly(
        ingress: RunningIngress, topics: str, http: aiohttp.ClientSession) -> None:
    orders, statuses = await tail(topics, ORDERS), await tail(topics, ORDER_STATUS)
    try:
        before = now_ms()
        async with http.post(f"{ingress.url}/api/orders/execute", json={
                "tokenIn": "SOL", "tokenOut": "USDC", "amount": "1.5", "slippageBps": 75}) as r:
            doc = await r.json()
            assert r.status == 202, doc
        after = now_ms()
        order_id = doc["orderId"]
        assert doc == {"orderId": order_id, "status": "pending"}
        assert str(uuid.UUID(order_id)) == order_id

        record = await next_with_key(orders, order_id.encode())
        value = orjson.loads(record.value)
        assert value == {
            "schemaVersion": 1, "orderId": order_id, "type": "market",
            "tokenIn": SOL.mint, "tokenOut": USDC.mint, "amountIn": 1_500_000_000,
            "slippageBps": 75, "submittedAt": value["submittedAt"], "source": "http"}
        assert before <= parse_iso_ms(value["submittedAt"]) <= after
        assert decode_execute_order(record.value).order_id == order_id

        pending = StatusEvent.decode((await next_with_key(statuses, order_id.encode())).value)
        assert (pending.event_id, pending.status.value, pending.order["amountIn"]) == (
            f"{order_id}:1:pending", "pending", 1_500_000_000)
    finally:
        await orders.stop()
        await statuses.stop()


QUOTE = Quote(Venue.METEORA, 1_500_000_000, 225_000_000, 3_750_000, SOL.mint, "0.1",
              "pool111", 7)
STEPS: tuple[OrderEvent, ...] = (
    OrderAccepted(), OrderQuoted((QUOTE,)), OrderRouted(Venue.METEORA, 225_000_000, 223_875_000),
    OrderSubmitted("5ig", 100), OrderConfirmed("5ig", 9, 1_500_000_000, 224_900_000, "149.9"))


def lifecycle(order_id: str) -> list[StatusEvent]:
    t0 = now_ms()
    order = Order(order_id, SOL.mint, USDC.mint, 1_500_000_000, 50, "http", t0)
    out = []
    for i, step in enumerate(STEPS):
        order = apply(order, step)
        out.append(StatusEvent.of(order, ts_ms=t0 + 7 * (i + 1)))
    return out


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


async def persist(dsn: str, events: list[StatusEvent]) -> None:
    """What the status sink would have written for these events (current row = last one)."""
    last, o = events[-1], events[-1].order
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO orders (order_id, status, rank, attempt, source, token_in, token_out,"
            " amount_in, slippage_bps, submitted_at, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (last.order_id, last.status.value, last.rank, last.attempt, o["source"],
             o["tokenIn"], o["tokenOut"], o["amountIn"], o["slippageBps"],
             _at(parse_iso_ms(o["submittedAt"])), _at(last.ts_ms)))
        for e in events:
            await conn.execute(
                "INSERT INTO order_events (event_id, order_id, status, attempt, rank, ts, data)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (e.event_id, e.order_id, e.status.value, e.attempt, e.rank, _at(e.ts_ms),
                 Jsonb(e.data)))


async def publish(bootstrap: str, *events: StatusEvent | bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for e in events:
            if isinstance(e, bytes):
                await producer.send_and_wait(ORDER_STATUS, e, key=b"garbage")
            else:
                await producer.send_and_wait(ORDER_STATUS, e.encode(), key=e.order_id.encode())
    finally:
        await producer.stop()


async def test_late_websocket_joiner_gets_every_event_once_in_order(
        ingress: RunningIngress, topics: str, dsn: str, http: aiohttp.ClientSession) -> None:
    order_id = f"it-late-{uuid.uuid4().hex[:12]}"
    pending, routing, building, submitted, confirmed = events = lifecycle(order_id)
    bad_before = ingress.metrics.registry.get_sample_value(
        "orderflow_ingress_status_decode_errors_total") or 0

    # Persisted by the sink: pending (broadcast before this ingress started, so only in the
    # database) and routing. Seen by the hub: garbage, a redelivered routing, and building,
    # which the sink has not persisted yet (so only in the hub's cache).
    await persist(dsn, [pending, routing])
    await publish(topics, b"not json", routing, b'{"schemaVersion": 9}', building)
    await wait_until(lambda: len(ingress.hub.cached(order_id)) == 2, 15, "the hub to see 2 events")
    assert ingress.metrics.registry.get_sample_value(
        "orderflow_ingress_status_decode_errors_total") == bad_before + 2

    async with http.ws_connect(f"{ingress.url}/api/orders/ws?orderId={order_id}") as ws:
        backlog = [await ws.receive_json(timeout=10) for _ in range(4)]
        assert backlog == [*({"type": "status", **e.to_json()} for e in events[:3]),
                           {"type": "subscribed", "orderId": order_id, "replayed": 3}]

        await publish(topics, submitted, routing, building, confirmed)
        live = [await ws.receive_json(timeout=10) for _ in range(2)]
        assert live == [{"type": "status", **e.to_json()} for e in (submitted, confirmed)]
        with pytest.raises(TimeoutError):
            await ws.receive_json(timeout=0.5)  # the redeliveries were not sent again


async def test_execute_over_websocket_streams_real_status_events(
        ingress: RunningIngress, topics: str, http: aiohttp.ClientSession) -> None:
    async with http.ws_connect(f"{ingress.url}/api/orders/execute") as ws:
        await ws.send_json({"tokenIn": "SOL", "tokenOut": "USDC", "amount": "1.5"})
        accepted = await ws.receive_json(timeout=10)
        assert accepted["type"] == "accepted", accepted
        order_id = accepted["orderId"]
        first = await ws.receive_json(timeout=10)  # our own pending, back through Kafka
        assert (first["type"], first["eventId"]) == ("status", f"{order_id}:1:pending")
        rest = [StatusEvent(f"{order_id}:1:{e.status.value}", order_id, e.status, 1, e.ts_ms,
                            e.order, e.data) for e in lifecycle(order_id)[1:]]
        await publish(topics, *rest)
        got = [(await ws.receive_json(timeout=10))["status"] for _ in rest]
        assert got == ["routing", "building", "submitted", "confirmed"]
        msg = await ws.receive(timeout=10)
        assert msg.type is aiohttp.WSMsgType.CLOSE and ws.close_code == 1000


async def test_order_detail_and_listing_read_postgres(
        ingress: RunningIngress, dsn: str, http: aiohttp.ClientSession) -> None:
    order_id = f"it-read-{uuid.uuid4().hex[:12]}"
    events = lifecycle(order_id)
    await persist(dsn, events[:3])
    async with http.get(f"{ingress.url}/api/orders/{order_id}") as resp:
        doc = await resp.json()
        assert resp.status == 200, doc
    assert (doc["status"], doc["amountIn"], doc["amountInUi"]) == ("building", 1_500_000_000,
                                                                   "1.5")
    assert doc["tokenIn"]["symbol"] == "SOL" and doc["tokenOut"]["symbol"] == "USDC"
    assert [e["eventId"] for e in doc["events"]] == [e.event_id for e in events[:3]]
    assert doc["events"][1]["data"] == events[1].data
    assert doc["submittedAt"] == events[0].order["submittedAt"]

    async with http.get(f"{ingress.url}/api/orders?limit=1") as resp:
        page = await resp.json()
    assert page["orders"][0]["orderId"] == order_id  # the newest
    async with http.get(f"{ingress.url}/api/orders?limit=200&before={page['nextBefore']}"
                        ) as resp:
        rest = await resp.json()
    assert order_id not in {o["orderId"] for o in rest["orders"]}

    async with http.get(f"{ingress.url}/api/orders/it-missing-order") as resp:
        assert resp.status == 404


async def test_healthz_checks_the_real_broker_and_database(
        ingress: RunningIngress, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{ingress.url}/healthz") as resp:
        doc = await resp.json()
    assert doc["checks"]["broker"]["ok"] and doc["checks"]["database"]["ok"], doc
    # no worker beats in this module's schema: not ready (test_ingress_readiness.py)
    assert resp.status == 503 and doc["failing"] == ["workers"], doc


async def _healthy(url: str) -> bool:
    """The ingress answers /healthz (not ready without workers, but serving)."""
    try:
        async with aiohttp.ClientSession() as s, s.get(f"{url}/healthz") as resp:
            return resp.status in (200, 503)
    except aiohttp.ClientError:
        return False


async def test_serve_stops_cleanly_on_cancel_and_on_sigterm(topics: str, dsn: str) -> None:
    original = signal.getsignal(signal.SIGTERM)
    for stop in ("cancel", "sigterm"):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        task = asyncio.ensure_future(serve(IngressConfig(bootstrap=topics, database_url=dsn,
                                                         port=port)))

        def up_or_failed(task: asyncio.Future[None] = task, url: str = url) -> Any:
            if task.done():
                task.result()  # serve() failed to start: show why
            return _healthy(url)

        await wait_until(up_or_failed, 30, f"serve() on {url}")
        if stop == "cancel":
            task.cancel()
        else:
            assert signal.getsignal(signal.SIGTERM) is not original  # serve's handler is in
            os.kill(os.getpid(), signal.SIGTERM)
        done, _ = await asyncio.wait({task}, timeout=15)
        assert done, f"serve() did not stop on {stop}"
        assert task.cancelled() if stop == "cancel" else task.result() is None
        assert not await _healthy(url)
        assert signal.getsignal(signal.SIGTERM) == original  # and removed again
