"""The route an order took, from the executor's events to the API, on real PostgreSQL:
the ``building`` event of a split carries ``data.route`` (valid against the v1 status
schema), the real sink store persists it (migration 006) and GET /api/orders/{id}'s
view shows it; an event without a route (written before it existed) changes nothing."""

from __future__ import annotations

import uuid

import pytest
from jsonschema import Draft202012Validator
from psycopg_pool import AsyncConnectionPool

from ingress.pg_store import PostgresOrderStore
from ingress.views import order_detail
from pipeline.lifecycle import (
    OrderAccepted,
    OrderConfirmed,
    OrderQuoted,
    OrderRouted,
    OrderSubmitted,
    apply,
)
from pipeline.model import RouteLeg, Venue
from pipeline.wire import StatusEvent, contract
from sinks.postgres import PostgresStatusStore
from tests.integration.test_journal import pool  # noqa: F401 (the fixture)
from tests.unit.executor_doubles import market_order

pytestmark = pytest.mark.integration

LEGS = (RouteLeg(Venue.RAYDIUM, "RayPool111", 600_000_000, 90_000_000, 89_550_000, 6_000),
        RouteLeg(Venue.METEORA, "MetPool111", 400_000_000, 60_000_000, 59_700_000, 4_000))


def _events(order_id: str, legs: tuple[RouteLeg, ...]) -> list[StatusEvent]:
    order = apply(market_order(order_id).to_order(), OrderAccepted())
    out = []
    order = apply(order, OrderQuoted(()))
    out.append(StatusEvent.of(order))
    order = apply(order, OrderRouted(Venue.RAYDIUM, 150_000_000, 149_250_000, legs))
    out.append(StatusEvent.of(order))
    order = apply(order, OrderSubmitted("5" * 64, 99))
    order = apply(order, OrderConfirmed("5" * 64, 42, 1_000_000_000, 150_000_001, "150"))
    out.append(StatusEvent.of(order))
    return out


async def test_a_split_route_is_on_the_events_in_the_table_and_in_the_api(
        pool: AsyncConnectionPool) -> None:  # noqa: F811
    order_id = f"o-{uuid.uuid4().hex[:8]}"
    events = _events(order_id, LEGS)
    validator = Draft202012Validator(contract("order-status.v1.schema.json"))
    for event in events:
        validator.validate(event.to_json())
    building, confirmed = events[1].data, events[2].data
    assert building["route"] == confirmed["route"] == {
        "version": 1, "split": True, "legs": [
            {"venue": "raydium", "pool": "RayPool111", "amountIn": 600_000_000,
             "expectedOut": 90_000_000, "minOut": 89_550_000, "fractionBps": 6_000},
            {"venue": "meteora", "pool": "MetPool111", "amountIn": 400_000_000,
             "expectedOut": 60_000_000, "minOut": 59_700_000, "fractionBps": 4_000}]}
    assert building["venue"] == "raydium" and building["minOut"] == 149_250_000
    bad = {**events[1].to_json(), "data": {**building, "route": {"version": 1, "split": True,
                                                               "legs": [{"venue": "x"}]}}}
    assert not validator.is_valid(bad)

    store = PostgresStatusStore(pool)
    await store.write(events[:2])
    await store.write(events[2:])
    record = await PostgresOrderStore(pool).get_order(order_id)
    assert record is not None and record.route == building["route"]
    view = order_detail(record, events)
    assert view["route"] == building["route"]
    assert view["venue"] == "raydium" and view["amountOut"] == 150_000_001


async def test_events_without_a_route_leave_it_null(
        pool: AsyncConnectionPool) -> None:  # noqa: F811
    order_id = f"o-{uuid.uuid4().hex[:8]}"
    events = _events(order_id, ())
    assert all("route" not in e.data for e in events)
    await PostgresStatusStore(pool).write(events)
    record = await PostgresOrderStore(pool).get_order(order_id)
    assert record is not None and record.route is None
    assert order_detail(record, events)["route"] is None
