"""The on-chain venues' pools as the markets view shows them, read by the same venue
adapters (and so the same pool directories: ``ORDERFLOW_POOLS`` or the program scan) the
engine quotes with.

One Clock read, then per venue what its ``snapshots`` reads (two ``getMultipleAccounts``
each), concurrently; discovery scans come from the adapters' directory caches.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Protocol

from solders.pubkey import Pubkey

from pipeline.accounts import AccountReader
from pipeline.model import Venue
from pipeline.venues.pool_snapshot import Pairs, PoolSnapshot, PoolsSnapshot
from pipeline.venues.pools import ClusterTime


class ChartedVenue(Protocol):
    """A venue adapter that shows its pools (``onchain_pools.RaydiumCpPools``,
    ``MeteoraDlmmPools``)."""

    async def snapshots(self, reader: AccountReader, pairs: Pairs, now: ClusterTime
                        ) -> list[PoolSnapshot]:
        """Every pool of these pairs the venue would quote, as the markets view shows it."""
        ...


class OnchainPoolCharts:
    def __init__(self, reader: AccountReader, venues: Mapping[Venue, ChartedVenue]) -> None:
        self._reader = reader
        self._venues = dict(venues)

    async def snapshot(self, pairs: Sequence[tuple[str, str]]) -> PoolsSnapshot:
        """Every pool of ``pairs`` (mint addresses, either order) on every venue."""
        slot, unix = await self._reader.clock()
        now = ClusterTime(slot, unix)
        keys = [(Pubkey.from_string(a), Pubkey.from_string(b)) for a, b in pairs]
        found = await asyncio.gather(*(v.snapshots(self._reader, keys, now)
                                       for v in self._venues.values()))
        return PoolsSnapshot(slot, unix, tuple(p for group in found for p in group))
