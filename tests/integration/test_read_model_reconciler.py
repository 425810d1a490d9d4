"""The read model heals from the journal (issue 9, defect 4), on real PostgreSQL.

An order the journal shows terminal whose ``orders`` row is missing or behind (the
status event was lost) gets its final event re-published; the real sink store then
writes it, and the next sweep finds nothing left to heal.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from pipeline.lifecycle import OrderAccepted, OrderConfirmed, OrderFailed, OrderStatus, apply
from pipeline.model import Venue
from pipeline.wire import StatusEvent
from sinks.postgres import PostgresStatusStore
from sinks.reconciler import ReadModelReconciler
from tests.integration.test_journal import pool  # noqa: F401 (the fixture)
from tests.unit.executor_doubles import market_order

pytestmark = pytest.mark.integration


def _events(order_id: str) -> tuple[StatusEvent, StatusEvent]:
    """The order's ``submitted`` event and its terminal ``confirmed`` event."""
    order = apply(market_order(order_id).to_order(), OrderAccepted())
    order = replace(order, status=OrderStatus.SUBMITTED, venue=Venue.RAYDIUM,
                    signature="5" * 64, last_valid_block_height=9)
    submitted = StatusEvent.of(order)
    done = apply(order, OrderConfirmed("5" * 64, 42, 1_000_000_000, 150_000_000, "150"))
    return submitted, StatusEvent.of(done)


async def _journal_row(pool: AsyncConnectionPool, event: StatusEvent, *,  # noqa: F811
                       age_s: int) -> None:
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO executions (order_id, command, status, terminal, final_event, "
            "updated_at) VALUES (%s, %s, %s, true, %s, now() - %s::interval)",
            (event.order_id, Jsonb(market_order(event.order_id).to_json()),
             event.status.value, Jsonb(event.to_json()), f"{age_s} seconds"))


async def _status(pool: AsyncConnectionPool, order_id: str) -> str | None:  # noqa: F811
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT status FROM orders WHERE order_id = %s",
                                        (order_id,))).fetchone()
    return None if row is None else str(row[0])


async def test_terminal_orders_missing_or_behind_in_the_read_model_are_healed(
        pool: AsyncConnectionPool) -> None:  # noqa: F811
    store = PostgresStatusStore(pool)
    published: list[StatusEvent] = []

    async def publish(event: StatusEvent) -> None:
        published.append(event)
        await store.write([event])  # what the sink does with it

    behind, missing, settling, fine = (f"o-{uuid.uuid4().hex[:8]}" for _ in range(4))
    sub_behind, done_behind = _events(behind)
    await store.write([sub_behind])  # the read model stopped at submitted
    await _journal_row(pool, done_behind, age_s=60)
    _, done_missing = _events(missing)  # the read model never heard of it
    await _journal_row(pool, done_missing, age_s=60)
    _, done_settling = _events(settling)  # terminal a moment ago: its event may be en route
    await _journal_row(pool, done_settling, age_s=0)
    _, done_fine = _events(fine)
    await store.write([done_fine])
    await _journal_row(pool, done_fine, age_s=60)

    reconciler = ReadModelReconciler(pool, publish, settle_s=10)
    assert await reconciler.sweep() == 2
    assert {e.event_id for e in published} == {done_behind.event_id, done_missing.event_id}
    assert await _status(pool, behind) == "confirmed"
    assert await _status(pool, missing) == "confirmed"
    assert await _status(pool, settling) is None
    published.clear()
    assert await reconciler.sweep() == 0 and published == []


async def test_a_failed_order_is_healed_too(
        pool: AsyncConnectionPool) -> None:  # noqa: F811
    store = PostgresStatusStore(pool)
    order_id = f"o-{uuid.uuid4().hex[:8]}"
    order = apply(market_order(order_id).to_order(), OrderAccepted())
    failed = StatusEvent.of(apply(order, OrderFailed("no_route", "no venue")))
    await store.write([StatusEvent.of(order)])
    await _journal_row(pool, failed, age_s=30)
    reconciler = ReadModelReconciler(pool, lambda e: store.write([e]), settle_s=5)
    assert await reconciler.sweep() == 1
    assert await _status(pool, order_id) == "failed"
