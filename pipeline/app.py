"""The faust-streaming application: partitioned agents over the public topics.

``execute-orders`` consumes ``orders`` with manual acknowledgement: each order
runs as its own task (bounded by ``max_in_flight``), so awaiting a confirmation
never blocks the other orders of its partition, and the order's offset is
acknowledged only after its terminal status is on the broker. faust commits the
highest contiguous acknowledged offset, so a crash redelivers unfinished orders.

``persist-status`` (the sink role) batches ``order-status`` events into
PostgreSQL and acknowledges them only after the transaction commits.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterable
from typing import Any

import aiohttp
import faust
import orjson
from aiokafka.errors import KafkaError
from faust.exceptions import ProducerSendError
from faust.types import EventT, StreamT
from mode import Service
from psycopg_pool import AsyncConnectionPool

from orderflow.settings import Settings
from pipeline import topics
from pipeline.errors import BrokerUnavailable, EngineUnavailable, InvalidOrder
from pipeline.executor import OrderExecutor, StageTimer
from pipeline.failpoints import Failpoints
from pipeline.faust_compat import HeldOffsets, guard_commit_gaps, shorten_fetch_wait
from pipeline.guards import PriceLimits
from pipeline.heartbeat import Heartbeat
from pipeline.journal import Journal
from pipeline.metrics import (
    EngineMetrics,
    InstrumentedChain,
    InstrumentedVenues,
    faust_consumer_lag,
)
from pipeline.ports import FailedOrder, Origin, RetryRequest
from pipeline.solana_rpc import ConfirmationWatcher, RpcChain
from pipeline.venues import JupiterVenues
from pipeline.wallet import load_keypair
from pipeline.wire import RetryMessage, StatusEvent, decode_execute_order, now_ms
from sinks.postgres import PostgresStatusStore
from sinks.reconciler import ReadModelReconciler

log = logging.getLogger(__name__)
Event = EventT[bytes]

ROLES = frozenset({"executor", "sinks"})
PRODUCE_TIMEOUT_S = 30.0
DRAIN_S = 8.0
"""How long a stopping worker lets in-flight orders finish (under Docker's 10 s stop
grace); what is still running then is left to the journal's lease and redelivery."""
_BROKER_ERRORS = (KafkaError, ProducerSendError, OSError, TimeoutError)
"""What a produce raises when the broker cannot take the message now."""
HELD = HeldOffsets()
"""Offsets delivered to this process and not yet acknowledged (see pipeline/faust_compat)."""


def faust_config(settings: Settings) -> dict[str, Any]:
    assert settings.kafka_bootstrap is not None
    return {
        "broker": [f"kafka://{h.strip()}" for h in settings.kafka_bootstrap.split(",")],
        "store": "memory://",
        "key_serializer": "raw",
        "value_serializer": "raw",
        "topic_partitions": settings.orders_partitions,
        "topic_allow_declare": False,
        "topic_disable_leader": True,
        "datadir": str(settings.data_dir / "faust"),
        "processing_guarantee": "at_least_once",
        "broker_rebalance_timeout": settings.rebalance_timeout_s,
        "broker_session_timeout": settings.session_timeout_s,
        "broker_heartbeat_interval": max(0.3, settings.session_timeout_s / 6),
        "broker_commit_interval": 0.5,
        "producer_acks": -1,
        "producer_linger_ms": 1,
        # faust waits 20 minutes for a produce by default; an order's status must not.
        "producer_request_timeout": PRODUCE_TIMEOUT_S,
        "consumer_auto_offset_reset": "earliest",
        "stream_buffer_maxsize": 4096,
        "web_enabled": False,
        "table_cleanup_interval": 3600.0,
    }


def _log_task(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("task %s failed", task.get_name(), exc_info=task.exception())


class Engine(Service):
    """Long-lived clients the executor needs, started and stopped with the worker."""

    def __init__(self, app: faust.App, settings: Settings, *, metrics: EngineMetrics,
                 owner: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app = app
        self.settings = settings
        self.metrics = metrics
        self.status_topic = app.topic(topics.ORDER_STATUS, key_type=bytes, value_type=bytes)
        self.dead_letters = app.topic(topics.DEAD_LETTERS, key_type=bytes, value_type=bytes)
        self.retry_topics = {d: app.topic(topics.retry_topic(d), key_type=bytes,
                                          value_type=bytes) for d in topics.RETRY_DELAYS_MS}
        self.slots = asyncio.Semaphore(settings.max_in_flight)
        # Retries wait for their due time inside their task: a separate bound, so waiting
        # retries can never take the places of live orders.
        self.retry_slots = asyncio.Semaphore(settings.max_in_flight)
        self.tasks: set[asyncio.Task[Any]] = set()
        self.executor: OrderExecutor | None = None
        self.owner = owner
        self._session: aiohttp.ClientSession | None = None
        self._chain: RpcChain | None = None
        self._watcher: ConfirmationWatcher | None = None
        self._pool: AsyncConnectionPool | None = None
        # faust starts agents before app services: messages wait here until we are ready
        self.ready = asyncio.Event()

    async def on_start(self) -> None:
        s = self.settings.require("solana_rpc_url", "venue_url", "wallet", "database_url")
        assert s.solana_rpc_url and s.venue_url and s.wallet and s.database_url
        wallet = load_keypair(s.wallet)
        self._pool = AsyncConnectionPool(s.database_url, min_size=2, max_size=16, open=False,
                                         kwargs={"autocommit": True})
        await self._pool.open(wait=True, timeout=30)
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
        self._chain = RpcChain(s.solana_rpc_url)
        chain = InstrumentedChain(self._chain, self.metrics)
        self._watcher = ConfirmationWatcher(chain, poll_s=s.confirm_poll_ms / 1000,
                                            commitment=s.commitment,
                                            rebroadcast_s=s.rebroadcast_ms / 1000)
        self._watcher.start()
        self.executor = OrderExecutor(
            venues=InstrumentedVenues(JupiterVenues(s.venue_url, self._session), self.metrics),
            chain=chain, timer=StageTimer(self.metrics.stage), metrics=self.metrics,
            watcher=self._watcher, wallet=wallet, outbox=self,
            journal=Journal(self._pool, self.owner, lease_s=s.lease_s,
                            on_batch=self.metrics.journal_batch),
            max_attempts=s.max_attempts, failpoints=Failpoints(s.failpoints),
            price_limits=PriceLimits(s.max_price_impact_bps, s.max_venue_deviation_bps,
                                     s.max_recent_deviation_bps))
        watcher = self._watcher
        self.metrics.track_in_flight(lambda: len(self.tasks), lambda: watcher.in_flight)
        self.add_future(self._renew_leases())
        self.add_future(self._sweep_orphans())
        self.ready.set()
        log.info("engine %s started: wallet %s, rpc %s, venue %s", self.owner, wallet.pubkey(),
                 s.solana_rpc_url, s.venue_url)

    async def on_stop(self) -> None:
        await self._drain(DRAIN_S)
        if self._watcher is not None:
            await self._watcher.stop()
        if self._chain is not None:
            await self._chain.close()
        if self._session is not None:
            await self._session.close()
        if self._pool is not None:
            await self._pool.close()

    async def _drain(self, within_s: float) -> None:
        """Let in-flight orders finish (held ones give up at once: see :meth:`handle`), then
        cancel what remains; nothing unfinished is acknowledged, so it is redelivered."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        if self.tasks:
            log.info("stopping: draining %d in-flight orders (up to %.0fs)", len(self.tasks),
                     within_s)
        while self.tasks and loop.time() < deadline:
            await asyncio.wait(list(self.tasks), timeout=deadline - loop.time())
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            log.warning("stopping: %d orders left to redelivery", len(self.tasks))
            await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _renew_leases(self) -> None:
        """Keep the leases of the orders this worker is running (one UPDATE for all)."""
        interval = self.settings.lease_s / 3
        while not self.should_stop:
            await asyncio.sleep(interval)
            if self.executor is None or not self.executor.owned:
                continue
            try:
                await self.executor.renew_leases()
            except Exception as exc:
                log.warning("lease renewal failed: %r", exc)

    async def _sweep_orphans(self) -> None:
        """The guarantee behind Kafka redelivery: the journal is the source of truth, and
        any order it shows unfinished and undriven is resumed here."""
        idle_s = self.settings.lease_s * 2
        while not self.should_stop:
            await asyncio.sleep(self.settings.lease_s)
            if self.executor is None:
                continue
            try:
                for cmd in await self.executor.orphans(idle_s):
                    log.warning("order %s: resuming an orphaned order from the journal",
                                cmd.order_id)
                    task = asyncio.create_task(self.executor.run(cmd),
                                               name=f"orphan-{cmd.order_id}")
                    self.tasks.add(task)
                    task.add_done_callback(self.tasks.discard)
                    task.add_done_callback(_log_task)
            except Exception as exc:
                log.warning("orphan sweep failed: %r", exc)

    async def _produce(self, topic: faust.types.TopicT, key: bytes | None,
                       value: bytes, *, wait: bool = True) -> None:
        """Produce one message; a broker that cannot take it is :class:`BrokerUnavailable`
        (the executor holds the order and tries again; nothing about the order failed)."""
        try:
            fut = await topic.send(key=key, value=value)
            if wait:
                await asyncio.wait_for(fut, PRODUCE_TIMEOUT_S)
        except _BROKER_ERRORS as exc:
            raise BrokerUnavailable(message=f"{topic.get_topic_name()}: {exc!r}") from exc

    # ---- pipeline.ports.Outbox ----

    async def publish(self, event: StatusEvent, *, wait: bool) -> None:
        await self._produce(self.status_topic, event.order_id.encode(), event.encode(),
                            wait=wait)

    async def schedule_retry(self, req: RetryRequest) -> None:
        topic = self.retry_topics[req.delay_ms]
        msg = RetryMessage(req.command, req.attempt, req.due_ms, req.origin, req.error.as_dict())
        await self._produce(topic, req.command.order_id.encode(), msg.encode())
        self.metrics.retry(req.delay_ms, req.error.code)

    async def _dead_letter(self, key: bytes | None, record: dict[str, Any]) -> None:
        await self._produce(self.dead_letters, key, orjson.dumps(record))
        self.metrics.dead_letter(str(record["reason"]))

    async def dead_letter(self, failed: FailedOrder) -> None:
        """A failed order's command, with its final error, for post-mortem and replay."""
        await self._dead_letter(failed.command.order_id.encode(), {
            "reason": failed.code,
            "error": {"code": failed.code, "message": failed.message},
            "attempts": failed.attempts,
            "order": failed.command.to_json(),
            "source": failed.origin,
            "failedAt": now_ms(),
        })

    async def dead_letter_message(self, ev: Event, error: InvalidOrder) -> None:
        """Keep a message we cannot read, with its reason; it is never silently dropped."""
        msg = ev.message
        await self._dead_letter(msg.key, {
            "reason": error.code,
            "error": error.as_dict(),
            "source": {"topic": msg.topic, "partition": msg.partition, "offset": msg.offset},
            "key": (msg.key or b"").decode(errors="replace"),
            "value": (msg.value or b"").decode(errors="replace")[:65536],
            "failedAt": now_ms(),
        })
        log.warning("dead-lettered %s[%d]@%d: %s %s", msg.topic, msg.partition, msg.offset,
                    error.code, error.message)

    def spawn(self, ev: Event, *, retry: bool) -> asyncio.Task[None]:
        msg = ev.message
        HELD.hold(msg.topic, msg.partition, msg.offset)
        task = asyncio.create_task(self.handle(ev, retry=retry),
                                   name=f"{ev.message.topic}-{ev.message.partition}-"
                                        f"{ev.message.offset}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        task.add_done_callback(_log_task)
        return task

    async def handle(self, ev: Event, *, retry: bool) -> None:
        """Execute one message. It is acknowledged only once its order is terminal, waits
        on a retry topic, or the message is dead-lettered: while the journal or the broker
        is down the order is held (retried here with back-off), never acked and never
        failed for it; a worker that stops meanwhile leaves it to redelivery."""
        msg = ev.message
        try:
            await self.ready.wait()
            delay = 0.5
            while True:
                try:
                    await self._handle_once(ev, retry=retry)
                    break
                except EngineUnavailable as exc:
                    self.metrics.unavailable(exc.code)
                    log.warning("%s[%d]@%d held: %s; trying again in %.1fs", msg.topic,
                                msg.partition, msg.offset, exc.message, delay)
                if self.should_stop:
                    return  # not acked: redelivered to whoever runs next
                self.metrics.orders_held.inc()
                try:
                    await asyncio.sleep(delay)
                finally:
                    self.metrics.orders_held.dec()
                delay = min(delay * 2, 10.0)
            ev.ack()
            HELD.release(msg.topic, msg.partition, msg.offset)
        finally:
            (self.retry_slots if retry else self.slots).release()

    async def _handle_once(self, ev: Event, *, retry: bool) -> None:
        msg = ev.message
        try:
            if retry:
                rm = RetryMessage.decode(msg.value or b"")
                cmd, attempt = rm.command, rm.attempt
            else:
                cmd = decode_execute_order(msg.value or b"",
                                           record_ts_ms=int(msg.timestamp * 1000))
                attempt = None
        except InvalidOrder as exc:
            await self.dead_letter_message(ev, exc)
            return
        assert self.executor is not None
        origin: Origin = {"topic": msg.topic, "partition": msg.partition, "offset": msg.offset}
        outcome = await self.executor.run(cmd, origin=origin, retry_attempt=attempt)
        log.debug("order %s: %s", cmd.order_id, outcome)


class StatusSink(Service):
    """Batches status events into PostgreSQL; acks only what was committed."""

    def __init__(self, app: faust.App, settings: Settings, *, metrics: EngineMetrics,
                 max_batch: int = 500, within_s: float = 0.1, reconcile_s: float = 15.0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.status_topic = app.topic(topics.ORDER_STATUS, key_type=bytes, value_type=bytes)
        self.dead_letters = app.topic(topics.DEAD_LETTERS, key_type=bytes, value_type=bytes)
        self.reconcile_s = reconcile_s
        self.reconciler: ReadModelReconciler | None = None
        self.settings = settings
        self.metrics = metrics
        self.max_batch = max_batch
        self.within_s = within_s
        self.buffer: list[tuple[Event, StatusEvent | None]] = []
        self.first_at = 0.0
        self.lock = asyncio.Lock()
        self.pool: AsyncConnectionPool | None = None
        self.store: PostgresStatusStore | None = None

    async def on_start(self) -> None:
        s = self.settings.require("database_url")
        assert s.database_url
        self.pool = AsyncConnectionPool(s.database_url, min_size=1, max_size=4, open=False,
                                        timeout=5.0)
        await self.pool.open()
        self.store = PostgresStatusStore(self.pool)
        self.reconciler = ReadModelReconciler(self.pool, self._republish)
        self.add_future(self._reconcile())

    async def _republish(self, event: StatusEvent) -> None:
        fut = await self.status_topic.send(key=event.order_id.encode(), value=event.encode())
        await asyncio.wait_for(fut, PRODUCE_TIMEOUT_S)

    async def _reconcile(self) -> None:
        """Heal the read model from the journal (see sinks/reconciler.py)."""
        while not self.should_stop:
            await asyncio.sleep(self.reconcile_s)
            assert self.reconciler is not None
            try:
                healed = await self.reconciler.sweep()
                if healed:
                    log.warning("read model reconciler re-published %d final events", healed)
            except Exception as exc:  # next sweep tries again; nothing is lost meanwhile
                log.warning("read model reconciliation failed: %r", exc)

    async def on_stop(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    async def add(self, ev: Event) -> None:
        try:
            status: StatusEvent | None = StatusEvent.decode(ev.message.value or b"")
        except Exception as exc:
            await self._dead_letter_unreadable(ev, exc)
            status = None
        if not self.buffer:
            self.first_at = time.monotonic()
        self.buffer.append((ev, status))
        if len(self.buffer) >= self.max_batch:
            await self.flush()

    async def _dead_letter_unreadable(self, ev: Event, exc: Exception) -> None:
        """A status event the sink cannot read is kept on the dead-letter topic with its
        reason (never silently skipped); its offset is acked with the batch after that."""
        msg = ev.message
        log.error("unreadable status event at %s[%d]@%d: %r", msg.topic, msg.partition,
                  msg.offset, exc)
        record = {"reason": "unreadable_status_event",
                  "error": {"code": "unreadable_status_event", "message": repr(exc)[:500]},
                  "source": {"topic": msg.topic, "partition": msg.partition,
                             "offset": msg.offset},
                  "key": (msg.key or b"").decode(errors="replace"),
                  "value": (msg.value or b"").decode(errors="replace")[:65536],
                  "failedAt": now_ms()}
        delay = 0.5
        while True:  # back-pressure: the sink does not move past it until it is kept
            try:
                fut = await self.dead_letters.send(key=msg.key, value=orjson.dumps(record))
                await asyncio.wait_for(fut, PRODUCE_TIMEOUT_S)
                self.metrics.dead_letter("unreadable_status_event")
                return
            except _BROKER_ERRORS as err:
                log.warning("dead-lettering the unreadable status event failed: %r", err)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def flush_if_due(self) -> None:
        if self.buffer and time.monotonic() - self.first_at >= self.within_s:
            await self.flush()

    async def flush(self) -> None:
        async with self.lock:
            batch, self.buffer = self.buffer, []
            if not batch:
                return
            events = [st for _, st in batch if st is not None]
            delay = 0.1
            t0 = time.monotonic()
            while True:
                try:
                    assert self.store is not None
                    await self.store.write(events)
                    break
                except Exception as exc:
                    self.metrics.sink_write_error()
                    log.warning("status sink write of %d events failed, retrying in %.1fs: %r",
                                len(events), delay, exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
            self.metrics.sink_batch(len(events), time.monotonic() - t0)
            for ev, _ in batch:
                ev.ack()


def build_app(settings: Settings, roles: Iterable[str] = ROLES) -> faust.App:
    """Build the faust app for the given roles; nothing here runs until the worker starts."""
    roles = frozenset(roles)
    unknown = roles - ROLES
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}; choose from {sorted(ROLES)}")
    # Workers with different roles subscribe to different topics, so each role set is its
    # own consumer group; workers running all roles share the plain app id.
    app_id = settings.app_id if roles == ROLES else f"{settings.app_id}-{'-'.join(sorted(roles))}"
    shorten_fetch_wait(settings.fetch_max_wait_ms)
    guard_commit_gaps(HELD)
    app = faust.App(app_id, **faust_config(settings))
    metrics = EngineMetrics.default()
    metrics.track_consumer_lag(faust_consumer_lag(app))
    orders_topic = app.topic(topics.ORDERS, key_type=bytes, value_type=bytes)
    status_topic = app.topic(topics.ORDER_STATUS, key_type=bytes, value_type=bytes)

    assert settings.database_url is not None
    worker_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    app.service(Heartbeat(settings.database_url, worker_id, roles))  # type: ignore[arg-type]

    if "executor" in roles:
        engine = Engine(app, settings, metrics=metrics, owner=worker_id)
        app.service(engine)  # type: ignore[arg-type]

        @app.agent(orders_topic, name="execute-orders")
        async def execute_orders(stream: StreamT[bytes]) -> None:
            async for ev in stream.noack().events():  # type: ignore[attr-defined]
                await engine.slots.acquire()
                engine.spawn(ev, retry=False)

        retry_topics = app.topic(*(topics.retry_topic(d) for d in topics.RETRY_DELAYS_MS),
                                 key_type=bytes, value_type=bytes)

        @app.agent(retry_topics, name="retry-orders")
        async def retry_orders(stream: StreamT[bytes]) -> None:
            # Each retry waits for its due time in its own task: a retry never blocks live
            # orders, and never runs early.
            async for ev in stream.noack().events():  # type: ignore[attr-defined]
                await engine.retry_slots.acquire()
                engine.spawn(ev, retry=True)

    if "sinks" in roles:
        sink = StatusSink(app, settings, metrics=metrics)
        app.service(sink)  # type: ignore[arg-type]

        @app.agent(status_topic, name="persist-status")
        async def persist_status(stream: StreamT[bytes]) -> None:
            async for ev in stream.noack().events():  # type: ignore[attr-defined]
                await sink.add(ev)

        @app.timer(interval=0.05, name="flush-status-sink")  # type: ignore[untyped-decorator]
        async def flush_status_sink() -> None:
            await sink.flush_if_due()

    return app
