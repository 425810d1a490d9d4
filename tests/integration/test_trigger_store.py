"""The trigger store on the real PostgreSQL journal: ``open -> triggered`` is decided once
across any number of concurrent triggers (workers), never while a worker holds the row,
never over a cancel that already won; open and orphaned triggered rows are found for a
rebuild; a sniper's refusal is kept on its open row."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from psycopg_pool import AsyncConnectionPool

from pipeline.journal import Journal
from pipeline.lifecycle import OrderStatus
from pipeline.ports import CancelRequest
from pipeline.trigger_store import PgTriggerStore
from pipeline.wire import now_ms
from sinks.migrate import migrate

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(own_database_url: str) -> AsyncIterator[AsyncConnectionPool]:
    await migrate(own_database_url)
    p = AsyncConnectionPool(own_database_url, min_size=2, max_size=12, open=False,
                            kwargs={"autocommit": True})
    await p.open(wait=True)
    try:
        yield p
    finally:
        await p.close()


async def opened(j: Journal, tag: str = "o") -> str:
    """An order as the executor leaves it once opened: status open, no owner."""
    oid = f"{tag}-{uuid.uuid4().hex[:12]}"
    assert await j.claim(oid, {"orderId": oid}) is not None
    await j.advance(oid, status=OrderStatus.OPEN, attempt=1, release=True)
    return oid


async def test_concurrent_triggers_decide_once(pool: AsyncConnectionPool) -> None:
    j, store = Journal(pool, "worker-a"), PgTriggerStore(pool)
    oid = await opened(j)
    assert [c["orderId"] for c in await store.open_orders()] == [oid]
    results = await asyncio.gather(*(store.mark_triggered(oid) for _ in range(10)))
    won = [r for r in results if r is not None]
    assert won == [({"orderId": oid}, 1)]
    assert await store.open_orders() == []
    assert await store.triggered() == [({"orderId": oid}, 1)]  # no worker drives it yet
    assert await j.claim(oid, {"orderId": oid}) is not None  # the executor takes it over
    assert await store.triggered() == []  # driven: not an orphan


async def test_a_claimed_row_or_a_won_cancel_is_not_triggered(pool: AsyncConnectionPool) -> None:
    j, store = Journal(pool, "worker-a"), PgTriggerStore(pool)
    held = await opened(j)
    assert await j.claim(held, {"orderId": held}) is not None  # e.g. being expired
    assert await store.mark_triggered(held) is None
    cancelled = await opened(j)
    assert await j.cancel(cancelled, CancelRequest("changed my mind", now_ms(), "http")) \
        is None
    assert await store.mark_triggered(cancelled) is None


async def test_a_sniper_refusal_is_kept_on_the_open_row(pool: AsyncConnectionPool) -> None:
    j, store = Journal(pool, "worker-a"), PgTriggerStore(pool)
    oid = await opened(j, "s")
    await store.refuse(oid, "pool P holds 1 on the quote side, below the minimum 5")
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT status, error_code, error_message FROM executions "
                                 "WHERE order_id = %s", (oid,))
        row = await cur.fetchone()
    assert row == ("open", "sniper_refused",
                   "pool P holds 1 on the quote side, below the minimum 5")
    assert await store.mark_triggered(oid) is not None  # still open: a later pool may pass
