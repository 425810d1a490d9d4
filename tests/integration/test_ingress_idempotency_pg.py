"""Idempotency keys on the real PostgreSQL (and, end to end, the real broker).

The store: concurrent claims of one key produce once; a failed produce leaves the key
reserved for the same orderId; another request with the key is refused; expired keys
are forgotten and purged; a key locked too long is "in progress". End to end: eight
simultaneous POSTs with one key put exactly one order on ``orders``, and the key
still answers the same orderId from a new ingress process (it is durable).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson
import psycopg
import pytest
from aiokafka import AIOKafkaConsumer
from psycopg import AsyncConnection
from psycopg.types.json import set_json_loads
from psycopg_pool import AsyncConnectionPool

from ingress.app import running_ingress
from ingress.config import IngressConfig
from ingress.idempotency import IdempotencyKeyBusy, IdempotencyKeyReused, fingerprint
from ingress.pg_idempotency import PostgresIdempotencyStore, configure_connection
from ingress.ports import BrokerUnavailable
from pipeline.tokens import SOL, USDC
from pipeline.topics import ORDERS
from pipeline.wire import ExecuteOrder, decode_execute_order, now_ms
from tests.helpers import free_port
from tests.integration.test_ingress_kafka import schema_dsn, tail, topics

pytestmark = pytest.mark.integration
topics = topics  # the module-scoped fixture, shared
SCHEMA = "ingress_idempotency_it"


@pytest.fixture(scope="module")
async def dsn(database_url: str) -> str:
    return await schema_dsn(database_url, SCHEMA)


async def _pool(dsn: str, configure: Any = configure_connection) -> AsyncConnectionPool[Any]:
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        dsn, min_size=1, max_size=12, open=False, kwargs={"autocommit": True},
        configure=configure)
    await pool.open(wait=True, timeout=10)
    return pool


@pytest.fixture
async def keys(dsn: str) -> AsyncIterator[PostgresIdempotencyStore]:
    pool = await _pool(dsn)
    try:
        yield PostgresIdempotencyStore(pool)
    finally:
        await pool.close()


def new_order(amount: int = 1_500_000_000) -> ExecuteOrder:
    return ExecuteOrder(str(uuid.uuid4()), SOL.mint, USDC.mint, amount, 50, now_ms(), "http")


class Producer:
    """Records produced orderIds; can be slow or failing."""

    def __init__(self, *, delay: float = 0.0, failures: int = 0) -> None:
        self.delay = delay
        self.failures = failures
        self.produced: list[str] = []

    async def __call__(self, order: ExecuteOrder) -> None:
        await asyncio.sleep(self.delay)
        if self.failures:
            self.failures -= 1
            raise BrokerUnavailable(message="test broker is down")
        self.produced.append(order.order_id)


async def row(dsn: str, key: str) -> dict[str, Any] | None:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(
            "SELECT order_id, produced_at IS NOT NULL AS produced, fingerprint,"
            " expires_at - created_at AS ttl FROM idempotency_keys WHERE key = %s", (key,))
        found = await cur.fetchone()
    if found is None:
        return None
    return dict(zip(("order_id", "produced", "fingerprint", "ttl"), found, strict=True))


async def test_concurrent_claims_of_one_key_produce_exactly_once(
        keys: PostgresIdempotencyStore, dsn: str) -> None:
    key = f"race-{uuid.uuid4()}"
    produce = Producer(delay=0.2)
    candidates = [new_order() for _ in range(10)]
    claims = await asyncio.gather(*(keys.claim(key, fingerprint(o), o, produce)
                                    for o in candidates))
    assert len(produce.produced) == 1
    (order_id,) = {c.order.order_id for c in claims}
    assert order_id == produce.produced[0] and order_id in {o.order_id for o in candidates}
    assert sorted(c.replayed for c in claims) == [False] + [True] * 9
    assert sum(c.produced for c in claims) == 1
    stored = await row(dsn, key)
    assert stored is not None and stored["order_id"] == order_id and stored["produced"]
    assert stored["ttl"].total_seconds() == 24 * 3600


async def test_a_failed_produce_keeps_the_key_for_the_same_order(
        keys: PostgresIdempotencyStore, dsn: str) -> None:
    key = f"retry-{uuid.uuid4()}"
    first = new_order()
    produce = Producer(failures=2)
    for _ in range(2):
        with pytest.raises(BrokerUnavailable):
            await keys.claim(key, fingerprint(first), first, produce)
    stored = await row(dsn, key)
    assert stored is not None and (stored["order_id"], stored["produced"]) == (
        first.order_id, False)

    retry = new_order()  # a retry parses the request again: a fresh candidate orderId
    claim = await keys.claim(key, fingerprint(retry), retry, produce)
    assert claim.order == first  # the reserved order, submittedAt and all
    assert (claim.replayed, claim.produced, produce.produced) == (True, True, [first.order_id])
    again = await keys.claim(key, fingerprint(retry), new_order(), produce)
    assert (again.order, again.produced, produce.produced) == (first, False, [first.order_id])


async def test_same_key_with_another_request_is_refused(keys: PostgresIdempotencyStore) -> None:
    key = f"reuse-{uuid.uuid4()}"
    produce = Producer()
    order = new_order()
    await keys.claim(key, fingerprint(order), order, produce)
    other = new_order(amount=7)
    with pytest.raises(IdempotencyKeyReused):
        await keys.claim(key, fingerprint(other), other, produce)
    produce.failures = 1  # a reserved-but-unproduced key is not up for grabs either
    key2 = f"reuse-{uuid.uuid4()}"
    with pytest.raises(BrokerUnavailable):
        await keys.claim(key2, fingerprint(order), order, produce)
    with pytest.raises(IdempotencyKeyReused):
        await keys.claim(key2, fingerprint(other), other, produce)
    assert produce.produced == [order.order_id]


async def read_to_end(consumer: AIOKafkaConsumer) -> list[Any]:
    """Every record from the consumer's position up to the end offsets as of now."""
    parts = consumer.assignment()
    end = await consumer.end_offsets(list(parts))
    out: list[Any] = []
    async with asyncio.timeout(15):
        while [tp for tp in parts if await consumer.position(tp) < end[tp]]:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                out += records
    return out


class Clock:
    """The store's clock, moved by the test: expiry without waiting for it."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


async def test_expired_keys_start_new_orders_and_are_purged(dsn: str) -> None:
    pool = await _pool(dsn)
    try:
        clock = Clock()
        short = PostgresIdempotencyStore(pool, ttl_s=30, clock=clock)
        key = f"expire-{uuid.uuid4()}"
        produce = Producer()
        a, b = new_order(), new_order(amount=9)
        await short.claim(key, fingerprint(a), a, produce)
        clock.now += timedelta(seconds=29)
        with pytest.raises(IdempotencyKeyReused):  # still live: the key stands for `a`
            await short.claim(key, fingerprint(b), b, produce)
        await short.purge_expired()
        assert await row(dsn, key) is not None  # not purged before it expires
        clock.now += timedelta(seconds=1)  # expires_at <= now: expired
        claim = await short.claim(key, fingerprint(b), b, produce)  # another request: fine now
        assert (claim.order, claim.replayed, claim.produced) == (b, False, True)
        assert produce.produced == [a.order_id, b.order_id]
        clock.now += timedelta(seconds=30)
        assert await short.purge_expired() >= 1
        assert await row(dsn, key) is None
    finally:
        await pool.close()


async def test_a_key_locked_too_long_is_in_progress(dsn: str) -> None:
    async def quick_lock_timeout(conn: AsyncConnection[Any]) -> None:
        set_json_loads(orjson.loads, conn)
        await conn.execute("SET lock_timeout = 200")

    pool = await _pool(dsn, quick_lock_timeout)
    try:
        store = PostgresIdempotencyStore(pool)
        key = f"busy-{uuid.uuid4()}"
        order = new_order()
        produce = Producer(failures=1)
        with pytest.raises(BrokerUnavailable):  # reserved, not produced
            await store.claim(key, fingerprint(order), order, produce)
        async with await psycopg.AsyncConnection.connect(dsn) as holder:
            await holder.execute("SELECT 1 FROM idempotency_keys WHERE key = %s FOR UPDATE",
                                 (key,))  # someone else is "producing"
            with pytest.raises(IdempotencyKeyBusy):
                await store.claim(key, fingerprint(order), order, produce)
        claim = await store.claim(key, fingerprint(order), order, produce)
        assert (claim.order, claim.produced) == (order, True)
    finally:
        await pool.close()


async def test_http_requests_with_one_key_put_one_order_on_the_topic_even_across_restarts(
        topics: str, dsn: str) -> None:
    config = IngressConfig(bootstrap=topics, database_url=dsn, port=free_port())
    key = f"http-{uuid.uuid4()}"
    body = {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "0.25", "slippageBps": 30}
    orders = await tail(topics, ORDERS)
    try:
        async with running_ingress(config) as ingress, aiohttp.ClientSession() as http:
            async def post(doc: dict[str, Any]) -> tuple[int, Any, str | None]:
                async with http.post(f"{ingress.url}/api/orders/execute", json=doc,
                                     headers={"Idempotency-Key": key}) as resp:
                    return (resp.status, await resp.json(),
                            resp.headers.get("Idempotent-Replayed"))

            answers = await asyncio.gather(*(post(body) for _ in range(8)))
            assert {a[0] for a in answers} == {202}, answers
            (order_id,) = {a[1]["orderId"] for a in answers}
            assert sorted(a[2] or "" for a in answers) == ["false"] + ["true"] * 7
            status, doc, _ = await post({**body, "amount": "0.26"})
            assert (status, doc["error"]["code"]) == (422, "idempotency_key_reused")

        async with running_ingress(config) as ingress, aiohttp.ClientSession() as http:
            async with http.post(f"{ingress.url}/api/orders/execute", json=body,
                                 headers={"Idempotency-Key": key}) as resp:
                assert resp.status == 202
                assert (await resp.json())["orderId"] == order_id  # durable across restarts

        # Every produce was acknowledged before its 202: all of them lie below the end
        # offsets read now, so reading up to those is reading everything that came.
        produced = [r for r in await read_to_end(orders) if r.key == order_id.encode()]
        assert len(produced) == 1
        order = decode_execute_order(produced[0].value)
        assert (order.order_id, order.amount_in, order.slippage_bps) == (
            order_id, 250_000_000, 30)
    finally:
        await orders.stop()
