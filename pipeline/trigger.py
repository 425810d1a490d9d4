"""The trigger engine: the open orders of the pairs this worker owns, fired by price updates.

Its I/O is behind two small ports, so it runs the same on doubles and in the worker
(``pipeline/trigger_agent.py``): a :class:`~pipeline.trigger_store.TriggerStore` (the
journal rows of open orders and the ``open -> triggered`` compare-and-set) and a
:data:`Fire` callback (publish ``triggered`` and hand the order to the executor).

Partitioning: a pair's open orders belong to one partition of ``open-orders``
(:func:`partition_of`), so exactly one worker holds them; on every assignment the book
keeps the pairs of the partitions still owned and is rebuilt from the journal for the
others (:meth:`TriggerEngine.assign`). A trigger is decided by the store, never by the
book alone: a second worker holding a stale copy (during a rebalance) loses the
compare-and-set, so an order fires once.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from solders.pubkey import Pubkey

from pipeline.errors import EngineUnavailable, InvalidOrder
from pipeline.lifecycle import OrderTriggered
from pipeline.model import OrderType
from pipeline.price_feed import Pair, pair_of
from pipeline.sniper import NewPool, OpenSniper, PoolBirths, PoolProbe, SniperBook, new_to, refusal
from pipeline.tasks import spawn
from pipeline.trigger_book import OpenLimit, TriggerBook, sweep
from pipeline.trigger_curves import PairView
from pipeline.trigger_store import TriggerStore
from pipeline.wire import ExecuteOrder, decode_execute_order, now_ms, parse_iso_ms
from pipeline.wire_terms import terms_from_json

log = logging.getLogger(__name__)

FIRE_CONCURRENCY = 64
"""Triggers of one sweep decided and published concurrently (journal + broker round trips)."""

Fire = Callable[[ExecuteOrder, int, OrderTriggered], Awaitable[None]]
"""Called once per order whose compare-and-set this worker won: (command, attempt, event)."""
Expire = Callable[[str], Awaitable[None]]
"""Called with an order id whose expiry passed while it was open (the executor ends it)."""
ASSIGN_BACKOFF_S = (0.1, 2.0)
"""First and longest wait between reads of the journal at an assignment while it is away."""


def pair_key(token_a: str, token_b: str) -> bytes:
    """The ``open-orders`` key of a pair: both mints, sorted (both directions together)."""
    return "|".join(sorted((token_a, token_b))).encode()


def partition_of(token_a: str, token_b: str, partitions: int) -> int:
    return zlib.crc32(pair_key(token_a, token_b)) % partitions


def command_of(doc: dict[str, Any]) -> ExecuteOrder:
    """The command of a journal row. The row holds ``ExecuteOrder.to_json()`` as the
    executor wrote it, so it is read directly; only when that reading does not give the
    same JSON back (a row this code did not write) is it decoded and validated in full.
    (Full validation costs ~0.25 ms, which a price move firing 10,000 orders feels.)"""
    try:
        submitted = parse_iso_ms(doc["submittedAt"])
        terms = terms_from_json(doc, submitted)
        cmd = ExecuteOrder(
            order_id=doc["orderId"], token_in=doc["tokenIn"], token_out=doc["tokenOut"],
            amount_in=doc["amountIn"], slippage_bps=doc["slippageBps"],
            submitted_at_ms=submitted, source=doc["source"], client_ref=doc.get("clientRef"),
            max_price_impact_bps=doc.get("maxPriceImpactBps"), order_type=terms.order_type,
            expires_at_ms=terms.expires_at_ms, limit=terms.limit, sniper=terms.sniper)
        exact = (all(str(Pubkey.from_string(m)) == m for m in (cmd.token_in, cmd.token_out))
                 and all(type(v) is int for v in (cmd.amount_in, cmd.slippage_bps))
                 and type(cmd.max_price_impact_bps) in (int, type(None)))
        if exact and cmd.to_json() == doc:
            return cmd
    except (KeyError, TypeError, ValueError, InvalidOrder):
        pass
    return decode_execute_order(orjson.dumps(doc))


@dataclass
class Stats:
    sweeps: int = 0
    candidates: int = 0
    quotes: int = 0
    fired: int = 0
    lost: int = 0  # the store said no: cancelled, expired or fired elsewhere
    refused: int = 0  # new pools a sniper's guards refused
    last_sweep_s: float = 0.0
    trigger_latency_s: list[float] = field(default_factory=list)


class TriggerEngine:
    def __init__(self, store: TriggerStore, fire: Fire, *, partitions: int,
                 expire: Expire | None = None) -> None:
        self.book = TriggerBook()
        self.snipers = SniperBook()
        self._store = store
        self._fire = fire
        self._expire = expire
        self._partitions = partitions
        self._owned: set[int] | None = None  # None: every partition (a single worker)
        self._expiry: list[tuple[int, str]] = []
        self._pending_opens: set[str] = set()
        self._max_amount: dict[tuple[str, str], int] = {}  # never lowered: a probe size
        self._tasks: set[asyncio.Task[Any]] = set()
        self._listed: dict[frozenset[str], dict[str, NewPool]] = {}  # by pair, see on_listed
        self._listed_via: tuple[PoolProbe, PoolBirths] | None = None
        self.stats = Stats()

    # ---- what the book holds ----

    def owns(self, token_a: str, token_b: str) -> bool:
        return (self._owned is None
                or partition_of(token_a, token_b, self._partitions) in self._owned)

    def accept(self, cmd: ExecuteOrder) -> bool:
        """Hold an open limit or sniper order of an owned pair; False if not ours or held
        already."""
        if not self.owns(cmd.token_in, cmd.token_out):
            return False
        if cmd.order_type is OrderType.LIMIT and cmd.limit is not None:
            added = self.book.add(OpenLimit(cmd.order_id, cmd.token_in, cmd.token_out,
                                            cmd.amount_in, cmd.limit.min_out))
            key = (cmd.token_in, cmd.token_out)
            self._max_amount[key] = max(self._max_amount.get(key, 0), cmd.amount_in)
        elif cmd.order_type is OrderType.SNIPER and cmd.sniper is not None:
            added = self.snipers.add(OpenSniper(cmd.order_id, cmd.token_in, cmd.token_out,
                                                cmd.amount_in, cmd.sniper,
                                                cmd.submitted_at_ms))
        else:
            return False
        if added and cmd.expires_at_ms is not None:
            heapq.heappush(self._expiry, (cmd.expires_at_ms, cmd.order_id))
        return added

    def probe_amount(self, token_in: str, token_out: str) -> int:
        """The largest amount an open order of the direction sells (at least ever held):
        how far a feed must read a pool for every candidate's exact quote."""
        return self._max_amount.get((token_in, token_out), 0)

    def pairs(self) -> list[Pair]:
        return list({pair_of(*d) for d in self.book.directions()})

    async def assign(self, partitions: Iterable[int] | None) -> None:
        """The partitions this worker now owns (None: all): drop the pairs of the others,
        load the open orders of the new ones from the journal, and run again any order
        triggered whose execution no worker is driving (a crash in between)."""
        self._owned = None if partitions is None else set(partitions)
        if self._owned is not None:
            self.book.retain({d for d in self.book.directions() if self.owns(*d)})
            self.snipers.retain(lambda pair: self.owns(*sorted(pair)))
        loaded = 0
        for doc in await self._read_held(self._store.open_orders):
            try:
                loaded += self.accept(command_of(doc))
            except InvalidOrder as exc:  # written by this engine, so a bug: say it
                log.error("open order %s in the journal is unreadable: %s",
                          doc.get("orderId"), exc)
        log.info("trigger book: %d open orders loaded, %d held in %d directions (partitions "
                 "%s)", loaded, len(self.book), len(self.book.directions()),
                 "all" if self._owned is None else sorted(self._owned))
        for doc, attempt in await self._read_held(self._store.triggered):
            cmd = command_of(doc)
            if self.owns(cmd.token_in, cmd.token_out):
                log.warning("order %s: triggered before a crash; executing it now",
                            cmd.order_id)
                try:
                    await self._fire(cmd, attempt, OrderTriggered(slot=0))
                except EngineUnavailable as exc:  # as above; the row stays triggered
                    log.warning("order %s: not resumed now (%s); the orphan sweep or the "
                                "next assignment runs it", cmd.order_id, exc)
        # after the resumption above, so an order triggered here is not also resumed there
        await self._check_listed([p for pair in self.snipers.pairs()
                                  for p in self._listed.get(pair, {}).values()])

    async def _read_held(self, read: Callable[[], Awaitable[list[Any]]]) -> list[Any]:
        """``read()`` again until the journal answers: an assignment runs in faust's
        partitions-assigned hook, where an exception crashes the worker (a rebalance right
        after PostgreSQL restarted meets a dead pooled connection first)."""
        delay = ASSIGN_BACKOFF_S[0]
        while True:
            try:
                return await read()
            except EngineUnavailable as exc:
                log.warning("trigger book: journal unavailable at assignment (%s); reading "
                            "again in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, ASSIGN_BACKOFF_S[1])

    # ---- price updates ----

    async def on_view(self, pair: Pair, view: PairView) -> None:
        """One pool-state change of ``pair``: sweep both directions, fire what fills."""
        started = time.perf_counter()
        fired: list[tuple[OpenLimit, int]] = []
        for token_in in pair:
            (token_out,) = pair - {token_in}

            def best_out(amount: int, tin: str = token_in, tout: str = token_out) -> int:
                return view.best_out(tin, tout, amount)

            done = sweep(self.book, (token_in, token_out), view.rate_bound(token_in, token_out),
                         best_out)
            self.stats.candidates += done.candidates
            self.stats.quotes += done.quotes
            fired.extend((o, best_out(o.amount_in)) for o in done.triggered)
        self.stats.sweeps += 1
        self.stats.last_sweep_s = time.perf_counter() - started
        # Each trigger is a journal round trip and a broker ack: many at once, not in turn.
        for start in range(0, len(fired), FIRE_CONCURRENCY):
            await asyncio.gather(*(self._trigger(order, observed, view.slot)
                                   for order, observed in fired[start:start + FIRE_CONCURRENCY]))

    async def _trigger(self, order: OpenLimit, observed_out: int, slot: int) -> None:
        try:
            won = await self._store.mark_triggered(order.order_id)
        except EngineUnavailable as exc:
            log.warning("order %s: trigger not recorded (%s); it stays open", order.order_id,
                        exc.message)
            self.book.add(order)  # decided at the next update
            return
        if won is None:
            self.stats.lost += 1
            return
        doc, attempt = won
        self.stats.fired += 1
        await self._fire(command_of(doc), attempt,
                         OrderTriggered(slot=slot, observed_out=observed_out))

    # ---- new pools (sniper orders) ----

    async def on_pool(self, pool: NewPool, probe: PoolProbe) -> None:
        """A sighting of a new pool: each sniper order waiting for its pair is probed and
        guarded; the first sighting that passes its guards triggers it."""
        for order in self.snipers.waiting_for(pool):
            if not new_to(pool, order.submitted_at_ms):
                continue
            result = await probe.probe(pool, order.token_in, order.token_out, order.amount_in)
            if result.opens_in_s > 0:  # not open for swaps yet: look again when it is
                self._look_again(pool, probe, result.opens_in_s)
                return
            why = refusal(order.terms, pool=pool, probe=result)
            if why is not None:
                self.stats.refused += 1
                log.info("sniper %s refused: %s", order.order_id, why)
                await self._store.refuse(order.order_id, why)
                continue
            if self.snipers.take(order.order_id) is None:
                continue
            event = OrderTriggered(slot=pool.seen_slot, observed_out=result.out,
                                   pool=pool.address, pool_slot=pool.created_slot)
            try:
                won = await self._store.mark_triggered(order.order_id)
            except EngineUnavailable as exc:
                log.warning("sniper %s: trigger not recorded (%s)", order.order_id,
                            exc.message)
                self.snipers.add(order)
                continue
            if won is None:
                self.stats.lost += 1
                continue
            self.stats.fired += 1
            await self._fire(command_of(won[0]), won[1], event)

    async def on_listed(self, pools: Iterable[NewPool], probe: PoolProbe,
                        births: PoolBirths) -> None:
        """The pools the watch found already there at its start. One may have launched
        while no worker watched (this one down, restarting): a sniper accepted before its
        birth must still buy it (:func:`~pipeline.sniper.new_to`). Kept by pair, so the
        orders an assignment loads later are checked against them too."""
        self._listed_via = (probe, births)
        pools = list(pools)
        for p in pools:
            self._listed.setdefault(frozenset((p.mint_a, p.mint_b)), {})[p.address] = p
        await self._check_listed(pools)

    async def _check_listed(self, pools: list[NewPool]) -> None:
        """A sighting of each listed pool a sniper waits for, with its birth asked of the
        cluster (only then: a listing can hold every pool of a program)."""
        if self._listed_via is None:
            return
        probe, births = self._listed_via
        for pool in pools:
            if not self.snipers.waiting_for(pool):
                continue
            birth = await births.birth(pool)
            if birth is not None:
                await self.on_pool(replace(pool, created_slot=birth[0], born_ms=birth[1]),
                                   probe)

    def _look_again(self, pool: NewPool, probe: PoolProbe, after_s: int) -> None:
        """One more sighting of ``pool`` once its opening time has come (a real wait: the
        program refuses swaps before it)."""
        if pool.address in self._pending_opens:
            return
        self._pending_opens.add(pool.address)

        async def later() -> None:
            try:
                await asyncio.sleep(after_s)
            finally:
                self._pending_opens.discard(pool.address)
            await self.on_pool(pool, probe)
        spawn(later(), name=f"pool-opens-{pool.address}", into=self._tasks)

    # ---- expiry ----

    async def expire_due(self, now: int | None = None) -> int:
        """Take the orders whose expiry passed out of the book and hand each to
        :data:`Expire` (the executor ends it ``expired`` through the lifecycle)."""
        now = now_ms() if now is None else now
        count = 0
        while self._expiry and self._expiry[0][0] <= now:
            _, order_id = heapq.heappop(self._expiry)
            if (self.book.take(order_id) or self.snipers.take(order_id)) is not None:
                count += 1
                if self._expire is not None:
                    await self._expire(order_id)
        return count
