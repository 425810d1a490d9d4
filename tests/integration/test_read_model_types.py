"""Order types, expiry and the new states in the read model, on real PostgreSQL: the real
sink store writes migration 007's columns (order_type, expires_at, terms) and the error of
an ``expired`` or ``cancelled`` order; the ingress store reads them back, filters by status
and type, and the API view shows them; an event from before order types is a market order."""

from __future__ import annotations

import uuid
from dataclasses import replace

import orjson
import pytest
from psycopg_pool import AsyncConnectionPool

from ingress.order_filters import OrderFilter
from ingress.pg_store import PostgresOrderStore
from ingress.records import datetime_to_ms
from ingress.views import order_detail
from pipeline.lifecycle import OrderAccepted, OrderCancelled, OrderExpired, OrderOpened, apply
from pipeline.model import LimitTerms, OrderType
from pipeline.wire import StatusEvent
from sinks.postgres import PostgresStatusStore
from tests.integration.test_journal import pool  # noqa: F401 (the fixture)
from tests.unit.executor_doubles import SUBMITTED_MS, market_order

pytestmark = pytest.mark.integration
EXPIRES = SUBMITTED_MS + 3_600_000


def _limit(order_id: str) -> list[StatusEvent]:
    cmd = replace(market_order(order_id), order_type=OrderType.LIMIT, expires_at_ms=EXPIRES,
                  limit=LimitTerms(160_500_000))
    order = apply(cmd.to_order(), OrderAccepted())
    out = [StatusEvent.of(order, ts_ms=SUBMITTED_MS + 1)]
    order = apply(order, OrderOpened())
    out.append(StatusEvent.of(order, ts_ms=SUBMITTED_MS + 2))
    order = apply(order, OrderCancelled("changed my mind", SUBMITTED_MS + 3))
    out.append(StatusEvent.of(order, ts_ms=SUBMITTED_MS + 3))
    return out


async def test_a_cancelled_limit_order_in_the_read_model(
        pool: AsyncConnectionPool) -> None:  # noqa: F811
    order_id = f"lim-{uuid.uuid4().hex[:8]}"
    events = _limit(order_id)
    store, reads = PostgresStatusStore(pool), PostgresOrderStore(pool)
    await store.write(events[:2])
    opened = await reads.get_order(order_id)
    assert opened is not None
    assert (opened.status, opened.order_type, opened.terms) == (
        "open", "limit", {"limit": {"minOut": 160_500_000}})
    assert opened.expires_at is not None and datetime_to_ms(opened.expires_at) == EXPIRES
    mine = OrderFilter(statuses=("open",), types=("limit",))
    assert order_id in {r.order_id for r in await reads.list_orders(200, None, mine)}
    await store.write(events[2:])
    done = await reads.get_order(order_id)
    assert done is not None
    assert (done.status, done.error_code, done.error_message) == (
        "cancelled", "cancelled", "changed my mind")
    assert done.terms == opened.terms and done.expires_at == opened.expires_at
    assert order_id not in {r.order_id for r in await reads.list_orders(200, None, mine)}
    back = await reads.events_for([order_id])
    assert {e.order["type"] for e in back} == {"limit"}
    assert all(e.order["limit"] == {"minOut": 160_500_000} for e in back)
    view = order_detail(done, back)
    assert (view["type"], view["status"], view["error"]["code"]) == (
        "limit", "cancelled", "cancelled")
    assert view["terms"]["limit"]["minAmountOut"] == "160500000"
    assert [e["status"] for e in view["events"]] == ["pending", "open", "cancelled"]


async def test_an_expired_market_order_and_an_event_from_before_types(
        pool: AsyncConnectionPool) -> None:  # noqa: F811
    order_id = f"mkt-{uuid.uuid4().hex[:8]}"
    order = apply(market_order(order_id).to_order(market_ttl_ms=5_000), OrderAccepted())
    expired = apply(order, OrderExpired(SUBMITTED_MS + 6_000))
    store, reads = PostgresStatusStore(pool), PostgresOrderStore(pool)
    await store.write([StatusEvent.of(order), StatusEvent.of(expired)])
    record = await reads.get_order(order_id)
    assert record is not None and record.expires_at is not None
    assert (record.status, record.order_type, record.error_code, record.terms) == (
        "expired", "market", "expired", None)
    assert datetime_to_ms(record.expires_at) == SUBMITTED_MS + 5_000

    old_id = f"old-{uuid.uuid4().hex[:8]}"
    doc = StatusEvent.of(apply(market_order(old_id).to_order(), OrderAccepted())).to_json()
    del doc["order"]["type"], doc["order"]["expiresAt"]  # as v1 events were written
    await store.write([StatusEvent.from_json(orjson.loads(orjson.dumps(doc)))])
    old = await reads.get_order(old_id)
    assert old is not None
    assert (old.order_type, old.expires_at, old.terms) == ("market", None, None)
