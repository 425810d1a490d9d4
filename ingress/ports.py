"""The two small interfaces the HTTP layer needs from the outside world.

Handlers depend on these protocols, not on aiokafka or psycopg, so unit tests
can drive the real routes with in-memory doubles and production wires in
:class:`ingress.kafka_bus.KafkaOrderBus` and :class:`ingress.pg_store.PostgresOrderStore`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ingress.order_filters import OrderFilter
from ingress.records import OrderRecord, PageCursor
from pipeline.errors import TransientError
from pipeline.wire import StatusEvent


class BrokerUnavailable(TransientError):
    """The broker did not acknowledge a record, so the caller must not treat it as accepted."""

    default_code = "broker_unavailable"


class StoreUnavailable(TransientError):
    """The read store could not answer; the API reports 503, not 500."""

    default_code = "database_unavailable"


class OrderBus(Protocol):
    """Durable, acknowledged publishing of records to Kafka topics."""

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        """Return only once the broker has acknowledged the record (acks=all).

        Raises :class:`BrokerUnavailable` when it cannot.
        """
        ...

    async def check(self) -> None:
        """Raise if the broker cannot answer a metadata request."""
        ...


class OrderStore(Protocol):
    """Read side of the ``orders`` / ``order_events`` tables the status sink fills.

    Every method raises :class:`StoreUnavailable` when the database cannot answer.
    """

    async def get_order(self, order_id: str) -> OrderRecord | None: ...

    async def list_orders(self, limit: int, before: PageCursor | None = None,
                          where: OrderFilter | None = None) -> list[OrderRecord]:
        """Newest first by (submitted_at, order_id), strictly older than ``before``, only
        those ``where`` matches."""
        ...

    async def events_for(self, order_ids: Sequence[str]) -> list[StatusEvent]:
        """Persisted status events of these orders, in any order."""
        ...

    async def check(self) -> None:
        """Raise if the database cannot run ``SELECT 1``."""
        ...


@dataclass(frozen=True, slots=True)
class WorkerBeat:
    """One worker's last heartbeat; ``age_s`` measured by the database clock."""

    worker_id: str
    roles: tuple[str, ...]
    age_s: float
    stopping: bool


class WorkerRegistry(Protocol):
    """Who is there to move orders: the workers' heartbeat rows (migration 005)."""

    async def beats(self) -> list[WorkerBeat]:
        """Recent heartbeats; raises :class:`StoreUnavailable` when the database cannot answer."""
        ...
