"""In-memory doubles of ingress's ports, and a running app built on them (no tests here).

They implement :class:`ingress.ports.OrderBus` / :class:`ingress.ports.OrderStore`
exactly as the Kafka and PostgreSQL adapters do, so the routes under test are
the real ones.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from ingress.app import RUNNER_OPTIONS, build_app
from ingress.config import IngressConfig
from ingress.hub import StatusHub
from ingress.idempotency import IdempotencyStore, InMemoryIdempotencyStore
from ingress.metrics import IngressMetrics
from ingress.order_filters import OrderFilter
from ingress.ports import BrokerUnavailable, OrderBus, OrderStore
from ingress.records import OrderRecord, PageCursor, ms_to_datetime
from orderflow.settings import REPO_ROOT
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
from pipeline.wire import StatusEvent


def ingress_config(**changes: Any) -> IngressConfig:
    """A config for routes on fakes (nothing connects to its broker or database), with the
    repository's UI."""
    fields: dict[str, Any] = {"bootstrap": "unused:9092", "database_url": "postgresql://unused",
                              "ui_dir": REPO_ROOT / "ui"}
    return IngressConfig(**{**fields, **changes})


@dataclass(frozen=True)
class Sent:
    topic: str
    key: bytes
    value: bytes

    def json(self) -> Any:
        return orjson.loads(self.value)


class FakeBus:
    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self.down_topics: set[str] = set()
        self.healthy = True
        self.gate: asyncio.Event | None = None  # when set, every send waits for it
        self.sending = 0  # sends waiting at the gate

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        if self.gate is not None:
            self.sending += 1
            try:
                await self.gate.wait()
            finally:
                self.sending -= 1
        if topic in self.down_topics:
            raise BrokerUnavailable(message="test broker is down")
        self.sent.append(Sent(topic, key, value))

    def on(self, topic: str) -> list[Sent]:
        return [s for s in self.sent if s.topic == topic]

    async def check(self) -> None:
        if not self.healthy:
            raise ConnectionError("test broker is down")


class FakeStore:
    def __init__(self) -> None:
        self.orders: dict[str, OrderRecord] = {}
        self.events: list[StatusEvent] = []
        self.healthy = True
        self.events_gate: asyncio.Event | None = None  # when set, events_for waits for it
        self.events_reads = 0
        self.owners: dict[str, str] = {}  # orderId -> API key id (for OrderFilter.owner)

    async def get_order(self, order_id: str) -> OrderRecord | None:
        return self.orders.get(order_id)

    async def list_orders(self, limit: int, before: PageCursor | None = None,
                          where: OrderFilter | None = None) -> list[OrderRecord]:
        rows = sorted(self.orders.values(), key=lambda r: (r.submitted_at, r.order_id),
                      reverse=True)
        if where is not None:
            rows = [r for r in rows if self.matches(r, where)]
        if before is not None:
            rows = [r for r in rows if (r.submitted_at, r.order_id)
                    < (before.submitted_at, before.order_id)]
        return rows[:limit]

    def matches(self, r: OrderRecord, f: OrderFilter) -> bool:
        """What the SQL of ingress/order_filters.where_sql selects (records are market
        orders; ``owners`` maps an order to the API key that submitted it)."""
        return ((not f.statuses or r.status in f.statuses)
                and (not f.types or "market" in f.types)
                and (f.venue is None or r.venue == f.venue)
                and (f.token is None or f.token in (r.token_in, r.token_out))
                and (f.submitted_from is None or r.submitted_at >= f.submitted_from)
                and (f.submitted_to is None or r.submitted_at < f.submitted_to)
                and (f.owner is None or self.owners.get(r.order_id) == f.owner))

    async def events_for(self, order_ids: Sequence[str]) -> list[StatusEvent]:
        self.events_reads += 1
        if self.events_gate is not None:
            await self.events_gate.wait()
        return [e for e in self.events if e.order_id in order_ids]

    async def check(self) -> None:
        if not self.healthy:
            raise ConnectionError("test database is down")


_bus: OrderBus = FakeBus()  # the doubles satisfy the protocols (checked by mypy)
_store: OrderStore = FakeStore()
_keys: IdempotencyStore = InMemoryIdempotencyStore()


def record(order_id: str, *, submitted_ms: int = 1_700_000_000_000, **changes: Any
           ) -> OrderRecord:
    at = ms_to_datetime(submitted_ms)
    base = OrderRecord(order_id=order_id, status="pending", attempt=1, source="http",
                       token_in=SOL.mint, token_out=USDC.mint, amount_in=1_500_000_000,
                       slippage_bps=50, submitted_at=at, created_at=at, updated_at=at)
    return dataclasses.replace(base, **changes)


QUOTE = Quote(Venue.RAYDIUM, 1_500_000_000, 225_000_000, 3_750_000, SOL.mint, "0.12",
              "amm1111", 42)
STEPS: tuple[OrderEvent, ...] = (
    OrderAccepted(),
    OrderQuoted((QUOTE,)),
    OrderRouted(Venue.RAYDIUM, 225_000_000, 223_875_000),
    OrderSubmitted("5igSig", 1234),
    OrderConfirmed("5igSig", 99, 1_500_000_000, 224_900_000, "149.933333"),
)


def lifecycle(order_id: str, *, t0: int = 1_700_000_000_000) -> list[StatusEvent]:
    """pending, routing, building, submitted, confirmed: real events from the real lifecycle."""
    order = Order(order_id, SOL.mint, USDC.mint, 1_500_000_000, 50, "http", t0)
    events = []
    for i, step in enumerate(STEPS):
        order = apply(order, step)
        events.append(StatusEvent.of(order, ts_ms=t0 + 10 * (i + 1)))
    return events


@dataclass
class Ingress:
    client: TestClient[Any, Any]
    bus: FakeBus
    store: FakeStore
    hub: StatusHub
    metrics: IngressMetrics = field(default_factory=IngressMetrics)
    keys: InMemoryIdempotencyStore = field(default_factory=InMemoryIdempotencyStore)


@pytest.fixture
async def ingress() -> AsyncIterator[Ingress]:
    bus, store, metrics = FakeBus(), FakeStore(), IngressMetrics()
    keys = InMemoryIdempotencyStore()
    hub = StatusHub(client_capacity=64)
    app = build_app(ingress_config(), producer=bus, store=store, hub=hub, metrics=metrics,
                    idempotency=keys)
    server = TestServer(app)
    await server.start_server(**RUNNER_OPTIONS)  # as running_ingress runs it
    async with TestClient(server) as client:
        yield Ingress(client, bus, store, hub, metrics, keys)
