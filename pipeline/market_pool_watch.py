"""New pools of the local market (its ``GET /pools``), seen and probed for sniper orders.

The local market's pools are not program accounts, so there is nothing to
``programSubscribe`` to (``pipeline/pool_watch.py`` watches the real programs); the market
lists every pool with the slot it was launched in (``createdSlot``). The watch reads the
list once at start (those pools exist: not a launch it saw; the launched ones among them
are handed to ``on_listed``, new to an order accepted before their birth, see
``pipeline/sniper.py``) and then, while a sniper order
waits, every ``poll_s``: a pool it has not listed before is reported with its launch slot
as the creation slot, and again whenever its state changes (a pool funded after its
launch is seen funded), like the programs' watch.

The probe answers from the read that saw the pool: its quote-side reserve and the exact
output of the market's own curve (``pipeline/venues/market_pools.py``) for the order's
amount; the impact is that output's shortfall from the pool's best marginal net rate (no
amount gets more per unit: ``pipeline/trigger_curves.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from fractions import Fraction
from typing import Any

import aiohttp

from pipeline.sniper import BPS, NewPool, Probe
from pipeline.venues.market_pools import MarketPool, MarketSnapshot

log = logging.getLogger(__name__)
OnPool = Callable[[NewPool], Awaitable[None]]
OnListed = Callable[[list[NewPool]], Awaitable[None]]
Snapshot = Callable[[], Awaitable[MarketSnapshot]]
READ_ERRORS = (aiohttp.ClientError, OSError, TimeoutError, ValueError, KeyError)


class MarketPoolWatch:
    """See the module docstring; ``snapshot`` reads ``GET /pools``
    (:meth:`pipeline.price_feed.MarketPoolsFeed.snapshot`)."""

    def __init__(self, snapshot: Snapshot, *, poll_s: float = 0.1) -> None:
        self._snapshot = snapshot
        self._poll_s = poll_s
        self._existing: set[str] | None = None
        self._reported: dict[str, tuple[Any, ...]] = {}  # new pool -> state last reported
        self.latest: dict[str, MarketPool] = {}  # new pools as last read
        self.reads = 0
        self.seeded = asyncio.Event()

    async def run(self, waiting: Callable[[], bool], on_pool: OnPool,
                  on_listed: OnListed | None = None) -> None:
        """Until cancelled; reads only while ``waiting()`` (a sniper order is open)."""
        while True:
            try:
                if self._existing is None:
                    listed = await self.seed()
                    if on_listed is not None:
                        await on_listed(listed)
                elif waiting():
                    await self.read_once(on_pool)
            except READ_ERRORS as exc:
                log.warning("market pool watch: %r", exc)
            await asyncio.sleep(self._poll_s)

    async def seed(self) -> list[NewPool]:
        """The pools there at start; returns the launched ones (not genesis pools)."""
        snap = await self._snapshot()
        self.reads += 1
        self._existing = {p.amm_key for p in snap.pools}
        listed = []
        for pool in snap.pools:
            if pool.created_slot > 0:
                self.latest[pool.amm_key] = pool  # what the probe reads
                listed.append(NewPool(pool.venue, pool.amm_key, pool.curve.mint_a,
                                      pool.curve.mint_b, pool.vaults, pool.created_slot,
                                      snap.slot, listed=True))
        self.seeded.set()
        return listed

    async def read_once(self, on_pool: OnPool) -> int:
        """One read; report each new pool first seen or changed. Returns how many."""
        assert self._existing is not None, "seed first"
        snap = await self._snapshot()
        self.reads += 1
        reported = 0
        for pool in snap.pools:
            if pool.amm_key in self._existing:
                if pool.amm_key in self.latest:  # listed at start: its probe reads it
                    self.latest[pool.amm_key] = pool
                continue
            self.latest[pool.amm_key] = pool
            if self._reported.get(pool.amm_key) == pool.fingerprint:
                continue
            self._reported[pool.amm_key] = pool.fingerprint
            curve = pool.curve
            await on_pool(NewPool(pool.venue, pool.amm_key, curve.mint_a, curve.mint_b,
                                  pool.vaults, pool.created_slot or snap.slot, snap.slot))
            reported += 1
        return reported


class MarketProbe:
    """:class:`~pipeline.sniper.PoolProbe` over the watch's latest read of the pool."""

    def __init__(self, watch: MarketPoolWatch) -> None:
        self._watch = watch

    async def probe(self, pool: NewPool, token_in: str, token_out: str,
                    amount_in: int) -> Probe:
        found = self._watch.latest.get(pool.address)
        if found is None:
            return Probe(0, 0, BPS)
        return probe_of(found, token_in, amount_in)


def probe_of(pool: MarketPool, token_in: str, amount_in: int) -> Probe:
    a_to_b = token_in == pool.curve.mint_a
    out = pool.curve.out(a_to_b, amount_in)
    best = pool.curve.rate_bound(a_to_b) * amount_in
    impact = BPS if best <= 0 else -(-(1 - Fraction(out) / best) * BPS // 1)
    return Probe(pool.reserve_of(token_in), out, max(0, min(BPS, int(impact))))
