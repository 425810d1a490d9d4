"""Ingress restarts: a WebSocket client reconnects and gets exactly the events it missed.

Real broker, real PostgreSQL, the real status sink (``PostgresStatusStore.write``, what
the worker's persist-status agent runs). A client follows an order and receives its
first events live; the ingress stops (the client sees 1001 going away); while it is
down the order moves on (published to ``order-status`` and persisted); a new ingress
starts on the same port, and the client reconnects.

Protocol (documented in README/OpenAPI): the reconnecting client passes the last
eventId it has, ``/api/orders/ws?orderId=X&after=<eventId>``, and receives only the
order's later events, in lifecycle order, then ``subscribed``, then live events. A
client that does not pass ``after`` receives the whole history and de-duplicates by
eventId (eventIds are deterministic); both are checked here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType
from psycopg_pool import AsyncConnectionPool

from ingress.app import running_ingress
from ingress.config import IngressConfig
from pipeline.wire import StatusEvent
from sinks.postgres import PostgresStatusStore
from tests.helpers import free_port, wait_until
from tests.integration.test_ingress_kafka import lifecycle, publish, schema_dsn, topics

pytestmark = pytest.mark.integration
topics = topics  # the module-scoped fixture, shared
SCHEMA = "ingress_restart_it"


@pytest.fixture(scope="module")
async def dsn(database_url: str) -> str:
    return await schema_dsn(database_url, SCHEMA)


@pytest.fixture
async def sink(dsn: str) -> AsyncIterator[PostgresStatusStore]:
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(dsn, min_size=1, max_size=2,
                                                         open=False)
    await pool.open(wait=True, timeout=10)
    try:
        yield PostgresStatusStore(pool)
    finally:
        await pool.close()


class Client:
    """A WebSocket client that keeps reading (as a browser does) into ``messages``."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []
        self.closed: asyncio.Event = asyncio.Event()
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type is WSMsgType.TEXT:
                self.messages.append(msg.json())
        self.closed.set()

    def statuses(self) -> list[str]:
        return [m["eventId"] for m in self.messages if m["type"] == "status"]

    async def wait_for(self, n_messages: int, what: str) -> None:
        await wait_until(lambda: len(self.messages) >= n_messages, 15, what)

    async def wait_for_event(self, event_id: str) -> None:
        await wait_until(lambda: event_id in self.statuses(), 15, f"event {event_id}")

    async def close(self) -> None:
        await self.ws.close()
        await asyncio.wait_for(self._reader, 10)


async def test_reconnect_after_an_ingress_restart_gets_exactly_the_missed_events(
        topics: str, dsn: str, sink: PostgresStatusStore) -> None:
    config = IngressConfig(bootstrap=topics, database_url=dsn, port=free_port())
    order_id = f"it-restart-{uuid.uuid4().hex[:12]}"
    pending, routing, building, submitted, confirmed = lifecycle(order_id)

    async def happen(*events: StatusEvent) -> None:
        """What the worker and the sink do: publish to order-status, persist."""
        await publish(topics, *events)
        await sink.write(list(events))

    async with aiohttp.ClientSession() as http:
        async with running_ingress(config) as ingress:
            first = Client(await http.ws_connect(f"{ingress.url}/api/orders/ws?orderId={order_id}"))
            await first.wait_for(1, "the subscription")
            assert first.messages == [{"type": "subscribed", "orderId": order_id, "replayed": 0}]
            await happen(pending, routing)
            await first.wait_for(3, "the live events")
        await asyncio.wait_for(first.closed.wait(), 10)  # the ingress said goodbye
        assert first.ws.close_code == aiohttp.WSCloseCode.GOING_AWAY
        had = first.statuses()
        assert had == [pending.event_id, routing.event_id]

        await happen(building, submitted)  # while no ingress is running

        async with running_ingress(config) as ingress:
            url = f"{ingress.url}/api/orders/ws?orderId={order_id}"
            resumed = Client(await http.ws_connect(f"{url}&after={had[-1]}"))
            naive = Client(await http.ws_connect(url))  # no `after`: de-duplicates itself
            await resumed.wait_for(3, "the missed events")
            await naive.wait_for(5, "the whole history")
            await happen(confirmed)
            # A marker behind `confirmed` on its partition (same key): once a client has it,
            # everything `confirmed` could have caused has reached that client too.
            marker = dataclasses.replace(confirmed, event_id=f"{order_id}:marker")
            await publish(topics, marker)
            await resumed.wait_for_event(marker.event_id)
            await naive.wait_for_event(marker.event_id)
            for client in (resumed, naive):
                assert client.messages.pop() == {"type": "status", **marker.to_json()}

            missed = [building.event_id, submitted.event_id, confirmed.event_id]
            assert resumed.messages == [
                {"type": "status", **building.to_json()}, {"type": "status", **submitted.to_json()},
                {"type": "subscribed", "orderId": order_id, "replayed": 2},
                {"type": "status", **confirmed.to_json()}]
            assert naive.statuses() == had + missed
            assert [e for e in naive.statuses() if e not in had] == missed  # after de-duplication
            await resumed.close()
            await naive.close()
