"""The executor role's long-lived service: clients, the message handler, the sweeps.

Each ``orders`` (or retry) message runs as its own task (bounded by ``max_in_flight``),
so awaiting a confirmation never blocks the other orders of its partition. A message
is acknowledged only once its order is terminal, waits on a retry topic, or the
message is dead-lettered; while the journal or the broker does not answer, the order is
held (retried in place with back-off), never acknowledged and never failed for it, and
the commit guard (:mod:`pipeline.faust_compat`) never commits past it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import faust
from faust.types import EventT
from mode import Service
from psycopg_pool import AsyncConnectionPool

from pipeline.accounts import RpcAccounts
from pipeline.config import ExecutorConfig
from pipeline.errors import EngineUnavailable, InvalidOrder
from pipeline.executor import OrderExecutor, StageTimer
from pipeline.failpoints import Failpoints
from pipeline.faust_compat import HeldOffsets
from pipeline.guards import PriceLimits
from pipeline.instrumented import InstrumentedChain, InstrumentedVenues
from pipeline.journal import Journal
from pipeline.kafka_outbox import KafkaOutbox
from pipeline.metrics import EngineMetrics
from pipeline.ports import Origin
from pipeline.signature_feed import WsSignatureFeed
from pipeline.solana_rpc import ConfirmationWatcher, RpcChain
from pipeline.tasks import spawn
from pipeline.venue_set import build_venues
from pipeline.venues import Venues
from pipeline.wallet import load_keypair
from pipeline.wire import CancelOrder, RetryMessage, decode_orders_message

log = logging.getLogger(__name__)
Event = EventT[bytes]

DRAIN_S = 8.0
"""How long a stopping worker lets in-flight orders finish (under Docker's 10 s stop
grace); what is still running then is left to the journal's lease and redelivery."""


class Engine(Service):
    """Long-lived clients the executor needs, started and stopped with the worker."""

    def __init__(self, app: faust.App, config: ExecutorConfig, *, metrics: EngineMetrics,
                 owner: str, held: HeldOffsets, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config = config
        self.metrics = metrics
        self.owner = owner
        self.held = held
        self.outbox = KafkaOutbox(app, metrics)
        self.slots = asyncio.Semaphore(config.max_in_flight)
        # Retries wait for their due time inside their task: a separate bound, so waiting
        # retries can never take the places of live orders.
        self.retry_slots = asyncio.Semaphore(config.max_in_flight)
        self.tasks: set[asyncio.Task[Any]] = set()
        self.executor: OrderExecutor | None = None
        self._session: aiohttp.ClientSession | None = None
        self._chain: RpcChain | None = None
        self._watcher: ConfirmationWatcher | None = None
        self._pool: AsyncConnectionPool | None = None
        # faust starts agents before app services: messages wait here until we are ready
        self.ready = asyncio.Event()

    async def on_start(self) -> None:
        c = self.config
        wallet = load_keypair(c.wallet)
        self._pool = AsyncConnectionPool(c.database_url, min_size=2, max_size=16, open=False,
                                         kwargs={"autocommit": True})
        await self._pool.open(wait=True, timeout=30)
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
        self._chain = RpcChain(c.solana_rpc_url)
        chain = InstrumentedChain(self._chain, self.metrics)
        feed = None if c.solana_ws_url is None else WsSignatureFeed(
            c.solana_ws_url, commitment=c.commitment)
        self._watcher = ConfirmationWatcher(chain, poll_s=c.confirm_poll_ms / 1000,
                                            commitment=c.commitment,
                                            rebroadcast_s=c.rebroadcast_ms / 1000, feed=feed)
        self._watcher.start()
        self.executor = OrderExecutor(
            venues=InstrumentedVenues(self._venues(str(wallet.pubkey())), self.metrics),
            chain=chain, timer=StageTimer(self.metrics.stage), metrics=self.metrics,
            watcher=self._watcher, wallet=wallet, outbox=self.outbox,
            journal=Journal(self._pool, self.owner, lease_s=c.lease_s,
                            on_batch=self.metrics.journal_batch),
            max_attempts=c.max_attempts, failpoints=Failpoints(c.failpoints),
            price_limits=PriceLimits(c.max_price_impact_bps, c.max_venue_deviation_bps,
                                     c.max_recent_deviation_bps),
            market_ttl_ms=c.market_ttl_ms, mints=RpcAccounts(self._chain.client))
        watcher = self._watcher
        self.metrics.track_in_flight(lambda: len(self.tasks), lambda: watcher.in_flight)
        self.add_future(self._renew_leases())
        self.add_future(self._sweep_orphans())
        self.ready.set()
        log.info("engine %s started: wallet %s, rpc %s, signatures via %s, venue %s",
                 self.owner, wallet.pubkey(), c.solana_rpc_url,
                 c.solana_ws_url or "the status poll only", c.venue_url)

    def _venues(self, wallet: str) -> Venues:
        """The configured venues, built as the ingress builds the ones it quotes on."""
        assert self._chain is not None and self._session is not None
        return build_venues(self.config.venue_set(), self._session,
                            RpcAccounts(self._chain.client), taker=wallet)

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
        interval = self.config.lease_s / 3
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
        idle_s = self.config.lease_s * 2
        while not self.should_stop:
            await asyncio.sleep(self.config.lease_s)
            if self.executor is None:
                continue
            try:
                for cmd in await self.executor.orphans(idle_s):
                    log.warning("order %s: resuming an orphaned order from the journal",
                                cmd.order_id)
                    spawn(self.executor.run(cmd), name=f"orphan-{cmd.order_id}",
                          into=self.tasks)
            except Exception as exc:
                log.warning("orphan sweep failed: %r", exc)

    def spawn(self, ev: Event, *, retry: bool) -> asyncio.Task[None]:
        msg = ev.message
        self.held.hold(msg.topic, msg.partition, msg.offset)
        return spawn(self.handle(ev, retry=retry),
                     name=f"{msg.topic}-{msg.partition}-{msg.offset}", into=self.tasks)

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
            self.held.release(msg.topic, msg.partition, msg.offset)
        finally:
            (self.retry_slots if retry else self.slots).release()

    async def _handle_once(self, ev: Event, *, retry: bool) -> None:
        msg = ev.message
        try:
            if retry:
                rm = RetryMessage.decode(msg.value or b"")
                cmd, attempt = rm.command, rm.attempt
            else:
                command = decode_orders_message(msg.value or b"",
                                                record_ts_ms=int(msg.timestamp * 1000))
                if isinstance(command, CancelOrder):
                    await self._cancel(ev, command)
                    return
                cmd, attempt = command, None
        except InvalidOrder as exc:
            await self.outbox.dead_letter_message(ev, exc)
            return
        assert self.executor is not None
        origin: Origin = {"topic": msg.topic, "partition": msg.partition, "offset": msg.offset}
        outcome = await self.executor.run(cmd, origin=origin, retry_attempt=attempt)
        log.debug("order %s: %s", cmd.order_id, outcome)

    async def _cancel(self, ev: Event, cmd: CancelOrder) -> None:
        """A cancel the journal refused is kept on the dead-letter topic with its reason."""
        assert self.executor is not None
        refusal = await self.executor.cancel(cmd)
        if refusal is not None:
            await self.outbox.dead_letter_message(ev, InvalidOrder(
                "cancel_refused", f"order {cmd.order_id} cannot be cancelled: {refusal}",
                field="orderId"))
