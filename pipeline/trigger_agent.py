"""The trigger agent in the worker: ``open-orders``, the price feed, the trigger engine.

An opened conditional order (``pipeline/conditional.py``) is produced to ``open-orders``
keyed and partitioned by its pair (:func:`~pipeline.trigger.partition_of`), so the worker
that owns the partition holds the pair's whole book. The journal row is the durable copy;
the topic only delivers it to its owner, and every assignment rebuilds the book of the
owned partitions from the journal, so a lost or replayed message changes nothing.

On a trigger (the journal's ``open -> triggered`` won) the agent publishes ``triggered``
and runs the order through the executor, whose claim, broadcast record and chain look-up
make it execute once, even if this worker is killed right after the trigger: the row is
then ``triggered`` with no owner, and the next assignment (or the executor's orphan
sweep) runs it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import faust
from mode import Service
from psycopg_pool import AsyncConnectionPool
from solana.rpc.async_api import AsyncClient
from solders.pubkey import Pubkey

from pipeline import topics
from pipeline.accounts import RpcAccounts
from pipeline.config import ExecutorConfig
from pipeline.errors import BrokerUnavailable
from pipeline.failpoints import Failpoints
from pipeline.kafka_outbox import BROKER_ERRORS, PRODUCE_TIMEOUT_S
from pipeline.lifecycle import OrderStatus, OrderTriggered, apply
from pipeline.market_pool_watch import MarketPoolWatch, MarketProbe
from pipeline.metrics import EngineMetrics
from pipeline.model import Venue
from pipeline.onchain_feed import OnchainPairsFeed
from pipeline.pool_births import ChainBirths, RpcBlockTimes
from pipeline.pool_watch import OnchainProbe, OnListed, WsPoolWatch, watched_programs
from pipeline.price_feed import AccountWakeups, MarketPoolsFeed, PriceFeed
from pipeline.sniper import NewPool, PoolProbe
from pipeline.solana_rpc import RpcChain
from pipeline.status_out import StatusPublisher
from pipeline.tasks import spawn
from pipeline.trigger import TriggerEngine, command_of, pair_key, partition_of
from pipeline.trigger_store import PgTriggerStore
from pipeline.venues.base import Cluster
from pipeline.venues.learnt_pools import LEARNT
from pipeline.venues.raydium_cp import RAYDIUM_CP_PROGRAM
from pipeline.wire import ExecuteOrder, StatusEvent, decode_execute_order

log = logging.getLogger(__name__)
EXPIRY_TICK_S = 0.25


def pubsub_url(rpc_url: str) -> str:
    """The cluster's PubSub URL as Solana clients derive it: ws(s), RPC port + 1."""
    parts = urlsplit(rpc_url)
    netloc = parts.netloc
    if parts.port is not None:
        netloc = netloc[: netloc.rindex(":")] + f":{parts.port + 1}"
    return urlunsplit(parts._replace(scheme="wss" if parts.scheme == "https" else "ws",
                                     netloc=netloc))


class TriggerService(Service):
    """Started with the worker after the executor's :class:`~pipeline.engine.Engine`."""

    def __init__(self, app: faust.App, engine: Any, config: ExecutorConfig, *,
                 partitions: int, metrics: EngineMetrics, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.engine = engine  # pipeline.engine.Engine (its executor, outbox and tasks)
        self.config = config
        self.partitions = partitions
        self.topic = app.topic(topics.OPEN_ORDERS, key_type=bytes, value_type=bytes)
        self.status = StatusPublisher(engine.outbox, metrics, budget_s=30.0)
        self._failpoints = Failpoints(config.failpoints)
        self.trigger: TriggerEngine | None = None
        self.ready = asyncio.Event()
        self._pool: AsyncConnectionPool | None = None
        self._session: aiohttp.ClientSession | None = None
        self._assigned: set[int] | None = None
        self._store: PgTriggerStore | None = None
        self.pool_watch: WsPoolWatch | None = None
        self.market_watch: MarketPoolWatch | None = None
        self._client: AsyncClient | None = None
        self._chain: RpcChain | None = None  # signatures and block times: pools' births

    async def on_start(self) -> None:
        self._pool = AsyncConnectionPool(self.config.database_url, min_size=1, max_size=4,
                                         open=False, kwargs={"autocommit": True})
        await self._pool.open(wait=True, timeout=30)
        self._session = aiohttp.ClientSession()
        self._store = PgTriggerStore(self._pool)
        self.trigger = TriggerEngine(self._store, self._fire, partitions=self.partitions,
                                     expire=self._expire)
        self.add_future(self._boot(self.trigger))

    async def _boot(self, trigger: TriggerEngine) -> None:
        """Once the executor is up: the book of the assigned partitions, then the feed."""
        await self.engine.ready.wait()
        self.engine.executor.set_opener(self.open)
        await trigger.assign(self._assigned)
        feed = self._feed(trigger)
        if feed is not None:
            self.add_future(feed.run(trigger.pairs, trigger.on_view))
        if self.config.venues == "onchain":
            self.add_future(self._watch_pools(trigger))
        elif self.config.venues == "local-market" and self.config.venue_url is not None:
            self.add_future(self._watch_market_pools(trigger, self.config.venue_url))
        self.add_future(self._expiry_loop())
        self.ready.set()

    def _feed(self, trigger: TriggerEngine) -> PriceFeed | None:
        c = self.config
        wakeups = AccountWakeups(pubsub_url(c.solana_rpc_url))
        if c.venues == "local-market" and c.venue_url is not None:
            assert self._session is not None
            return MarketPoolsFeed(c.venue_url, self._session, wakeups=wakeups)
        if c.venues == "onchain":
            explicit: dict[Venue, list[Pubkey]] = {}
            for venue, address in c.pools:
                explicit.setdefault(Venue(venue), []).append(Pubkey.from_string(address))
            return OnchainPairsFeed(self._reader(), RAYDIUM_CP_PROGRAM[Cluster(c.cluster)],
                                    probe_amount=trigger.probe_amount, explicit=explicit,
                                    wakeups=wakeups)
        log.warning("no price feed for venues=%s: limit orders stay open until they "
                    "expire", c.venues)
        return None

    def _reader(self) -> RpcAccounts:
        if self._client is None:
            self._client = AsyncClient(self.config.solana_rpc_url, timeout=10)
        return RpcAccounts(self._client)

    async def _watch_pools(self, trigger: TriggerEngine) -> None:
        """Sniper orders: new pools of both programs, from the PubSub's notifications;
        each one learnt by this process's venues (``venues/learnt_pools.py``)."""
        program = RAYDIUM_CP_PROGRAM[Cluster(self.config.cluster)]
        reader = self._reader()
        probe = OnchainProbe(reader, program)
        watched = watched_programs(program)
        self.pool_watch = WsPoolWatch(pubsub_url(self.config.solana_rpc_url), reader, watched)
        program_of = {p.venue: p.program for p in watched}

        async def on_pool(pool: NewPool) -> None:
            try:
                # tradable before any sniper triggers on it, even with ORDERFLOW_POOLS set
                LEARNT.learn(program_of[pool.venue], Pubkey.from_string(pool.address),
                             Pubkey.from_string(pool.mint_a), Pubkey.from_string(pool.mint_b))
                await trigger.on_pool(pool, probe)
            except Exception as exc:  # one bad sighting must not stop the watch
                log.warning("new pool %s: %r", pool.address, exc)
        await self.pool_watch.run(on_pool, self._on_listed(trigger, probe))

    def _on_listed(self, trigger: TriggerEngine, probe: PoolProbe) -> OnListed:
        """The pools a watch found at its start, to the trigger engine with their births."""
        births = ChainBirths(self._rpc_chain(), RpcBlockTimes(self._rpc_chain().client))

        async def on_listed(pools: list[NewPool]) -> None:
            try:
                await trigger.on_listed(pools, probe, births)
            except Exception as exc:  # the watch goes on; these pools stay unbought
                log.warning("pools listed at start: %r", exc)
        return on_listed

    def _rpc_chain(self) -> RpcChain:
        if self._chain is None:
            self._chain = RpcChain(self.config.solana_rpc_url)
        return self._chain

    async def _watch_market_pools(self, trigger: TriggerEngine, venue_url: str) -> None:
        """Sniper orders on the local market: its pool list, read while one waits."""
        assert self._session is not None
        self.market_watch = MarketPoolWatch(MarketPoolsFeed(venue_url, self._session).snapshot)
        probe = MarketProbe(self.market_watch)

        async def on_pool(pool: NewPool) -> None:
            try:
                await trigger.on_pool(pool, probe)
            except Exception as exc:  # one bad sighting must not stop the watch
                log.warning("new pool %s: %r", pool.address, exc)
        await self.market_watch.run(lambda: len(trigger.snipers) > 0, on_pool,
                                    self._on_listed(trigger, probe))

    async def on_stop(self) -> None:
        if self._chain is not None:
            await self._chain.close()
        if self._client is not None:
            await self._client.close()
        if self._session is not None:
            await self._session.close()
        if self._pool is not None:
            await self._pool.close()

    async def on_assigned(self, assigned: Any) -> None:
        """faust's ``on_partitions_assigned``: the worker's whole new assignment."""
        self._assigned = {tp.partition for tp in assigned if tp.topic == topics.OPEN_ORDERS}
        if self.trigger is not None and self.ready.is_set():
            await self.trigger.assign(self._assigned)

    async def open(self, cmd: ExecuteOrder) -> None:
        """The executor's :data:`~pipeline.conditional.Opener`: deliver the open order to
        the worker owning its pair; returns once the broker has it."""
        try:
            fut = await self.topic.send(
                key=pair_key(cmd.token_in, cmd.token_out), value=cmd.encode(),
                partition=partition_of(cmd.token_in, cmd.token_out, self.partitions))
            await asyncio.wait_for(fut, PRODUCE_TIMEOUT_S)
        except BROKER_ERRORS as exc:
            raise BrokerUnavailable(message=f"{topics.OPEN_ORDERS}: {exc!r}") from exc

    async def accept(self, raw: bytes) -> None:
        await self.ready.wait()
        assert self.trigger is not None
        self.trigger.accept(decode_execute_order(raw))

    async def _fire(self, cmd: ExecuteOrder, attempt: int, event: OrderTriggered) -> None:
        order = apply(replace(cmd.to_order(), status=OrderStatus.OPEN, attempt=attempt), event)
        # Acknowledged before the execution starts: a crash after this point still shows
        # the trigger (the order itself is resumed from its ``triggered`` journal row).
        await self.status.emit(StatusEvent.of(order, client_ref=cmd.client_ref), wait=True)
        self._failpoints.hit("after_trigger")  # crash tests: triggered, not yet executing
        self._run(cmd)

    async def _expire(self, order_id: str) -> None:
        assert self._store is not None
        doc = await self._store.command(order_id)
        if doc is not None:
            self._run(command_of(doc))  # the executor ends it expired

    def _run(self, cmd: ExecuteOrder) -> None:
        """Execute a triggered order within the engine's in-flight bound (its slots), so a
        price move that fires thousands of orders queues them instead of flooding venues."""
        executor = self.engine.executor
        assert executor is not None

        async def run() -> None:
            async with self.engine.slots:
                await executor.run(cmd)
        spawn(run(), name=f"triggered-{cmd.order_id}", into=self.engine.tasks)

    async def _expiry_loop(self) -> None:
        while not self.should_stop:
            await asyncio.sleep(EXPIRY_TICK_S)
            if self.trigger is not None:
                try:
                    await self.trigger.expire_due()
                except Exception as exc:
                    log.warning("expiry sweep failed: %r", exc)


def register(app: faust.App, service: TriggerService) -> None:
    """The ``trigger-orders`` agent and the rebalance hook (wiring only)."""
    app.service(service)  # type: ignore[arg-type]

    @app.agent(service.topic, name="trigger-orders")
    async def trigger_orders(stream: Any) -> None:
        async for raw in stream:
            await service.accept(raw)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(_app: Any, *args: Any, signal: Any, **_: Any) -> None:
        (assigned,) = args
        await service.on_assigned(assigned)
