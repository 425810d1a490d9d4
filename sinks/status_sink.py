"""The sinks role: ``order-status`` into PostgreSQL (``orders``, ``order_events``).

:func:`register` adds it to a worker's faust app: the ``persist-status`` agent feeds a
:class:`StatusSink` (batched, acknowledged only after the transaction commits), a timer
flushes it, and the :class:`~sinks.reconciler.ReadModelReconciler` heals the read model
from the journal. An event the sink cannot read or write is kept on ``orders-dlt`` with
its reason, never skipped in silence, and never holds up the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import faust
import orjson
import psycopg
from faust.types import EventT, StreamT
from mode import Service
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from pipeline import topics
from pipeline.errors import BrokerUnavailable
from pipeline.kafka_outbox import produce, unreadable_record
from pipeline.metrics import EngineMetrics
from pipeline.wire import StatusEvent
from sinks.base import Ackable, Sink
from sinks.postgres import PostgresStatusStore
from sinks.reconciler import ReadModelReconciler

log = logging.getLogger(__name__)
Event = EventT[bytes]


@dataclass(frozen=True, slots=True)
class SinkConfig:
    database_url: str
    max_batch: int = 500
    within_s: float = 0.1
    reconcile_s: float = 15.0

    def __repr__(self) -> str:  # the URL may carry a password
        return f"SinkConfig(max_batch={self.max_batch}, within_s={self.within_s})"


class StatusSink(Sink[StatusEvent], Service):
    """Batches status events into PostgreSQL; acks only what was committed."""

    name = "status sink"

    def __init__(self, app: faust.App, config: SinkConfig, *, metrics: EngineMetrics,
                 **kwargs: Any) -> None:
        Sink.__init__(self, max_batch=config.max_batch, within_s=config.within_s)
        Service.__init__(self, **kwargs)
        self.config = config
        self.metrics = metrics
        self.status_topic = app.topic(topics.ORDER_STATUS, key_type=bytes, value_type=bytes)
        self.dead_letters = app.topic(topics.DEAD_LETTERS, key_type=bytes, value_type=bytes)
        self.pool: AsyncConnectionPool | None = None
        self.store: PostgresStatusStore | None = None
        self.reconciler: ReadModelReconciler | None = None

    async def on_start(self) -> None:
        self.pool = AsyncConnectionPool(self.config.database_url, min_size=1, max_size=4,
                                        open=False, timeout=5.0)
        await self.pool.open()
        self.store = PostgresStatusStore(self.pool)
        self.reconciler = ReadModelReconciler(self.pool, self._republish)
        self.add_future(self._reconcile())

    async def on_stop(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    async def add_message(self, ev: Event) -> None:
        try:
            status: StatusEvent | None = StatusEvent.decode(ev.message.value or b"")
        except Exception as exc:
            await self._keep(ev, "unreadable_status_event", exc)
            status = None
        await self.add(ev, status)

    # ---- Sink ----

    async def write(self, batch: Sequence[StatusEvent]) -> None:
        assert self.store is not None
        await self.store.write(batch)

    def unavailable(self, exc: BaseException) -> bool:
        return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError | PoolTimeout
                          | OSError)

    async def reject(self, message: Ackable, record: StatusEvent, exc: BaseException) -> None:
        assert isinstance(message, EventT)
        await self._keep(message, "unwritable_status_event", exc)

    def observe(self, records: int, seconds: float, failed_writes: int) -> None:
        self.metrics.sink_batch(records, seconds)
        for _ in range(failed_writes):
            self.metrics.sink_write_error()

    # ---- dead letters and healing ----

    async def _keep(self, ev: Event, reason: str, exc: BaseException) -> None:
        """Keep the event on the dead-letter topic; the sink does not move past it until
        it is kept (back-pressure while the broker is away)."""
        msg = ev.message
        log.error("%s at %s[%d]@%d: %r", reason, msg.topic, msg.partition, msg.offset, exc)
        record = unreadable_record(ev, reason, {"code": reason, "message": repr(exc)[:500]})
        delay = 0.5
        while True:
            try:
                await produce(self.dead_letters, msg.key, orjson.dumps(record))
                self.metrics.dead_letter(reason)
                return
            except BrokerUnavailable as err:
                log.warning("dead-lettering the %s failed: %s", reason, err.message)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _republish(self, event: StatusEvent) -> None:
        await produce(self.status_topic, event.order_id.encode(), event.encode())

    async def _reconcile(self) -> None:
        """Heal the read model from the journal (see sinks/reconciler.py)."""
        while not self.should_stop:
            await asyncio.sleep(self.config.reconcile_s)
            assert self.reconciler is not None
            try:
                healed = await self.reconciler.sweep()
                if healed:
                    log.warning("read model reconciler re-published %d final events", healed)
            except Exception as exc:  # next sweep tries again; nothing is lost meanwhile
                log.warning("read model reconciliation failed: %r", exc)


def register(app: faust.App, config: SinkConfig, *, metrics: EngineMetrics) -> StatusSink:
    """Add the sinks role to ``app``: the sink service, its agent and its flush timer."""
    sink = StatusSink(app, config, metrics=metrics)
    app.service(sink)  # type: ignore[arg-type]
    status_topic = app.topic(topics.ORDER_STATUS, key_type=bytes, value_type=bytes)

    @app.agent(status_topic, name="persist-status")
    async def persist_status(stream: StreamT[bytes]) -> None:
        async for ev in stream.noack().events():  # type: ignore[attr-defined]
            await sink.add_message(ev)

    @app.timer(interval=0.05, name="flush-status-sink")  # type: ignore[untyped-decorator]
    async def flush_status_sink() -> None:
        await sink.flush_if_due()

    return sink
