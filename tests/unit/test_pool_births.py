"""Pools there when a watch started (its worker was down when they launched): the watches
list them, the on-chain watch makes them tradable (``learnt_pools``), and their birth is
read from the cluster (``pipeline/pool_births.py``) so a sniper accepted before it buys."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from solders.pubkey import Pubkey

from pipeline.chain_history import SignatureEntry
from pipeline.errors import RpcUnavailable
from pipeline.market_pool_watch import MarketPoolWatch, MarketProbe
from pipeline.model import Venue
from pipeline.pool_births import ChainBirths
from pipeline.pool_watch import WsPoolWatch, watched_programs
from pipeline.sniper import NewPool
from pipeline.tokens import SOL
from pipeline.venues.learnt_pools import LearntPools
from tests.unit.test_market_pool_watch import LAUNCHED, LISTED, Pools
from tests.unit.test_raydium_cp import POOL_KEYS, pool_bytes

PROGRAM = Pubkey.new_unique()
POOL = Pubkey.new_unique()


class Reader:
    """A program scan that finds one CP-Swap pool (the DLMM program: none)."""

    async def program_accounts(self, program: Pubkey, filters: Sequence[dict[str, Any]]
                               ) -> list[tuple[Pubkey, bytes]]:
        return [(POOL, pool_bytes())] if program == PROGRAM else []


async def test_the_onchain_watch_lists_and_learns_the_pools_there_at_its_start() -> None:
    learnt = LearntPools()
    reader: Any = Reader()
    watch = WsPoolWatch("ws://unused", reader, watched_programs(PROGRAM), learnt=learnt)
    (pool,) = await watch.seed()
    assert (pool.venue, pool.address, pool.listed) == (Venue.RAYDIUM, str(POOL), True)
    mints = (POOL_KEYS["token_0_mint"], POOL_KEYS["token_1_mint"])
    assert (pool.mint_a, pool.mint_b) == tuple(map(str, mints))
    # a sniper triggered on it elsewhere is routed here, even with ORDERFLOW_POOLS set
    assert learnt.of(PROGRAM, *mints) == [POOL]


async def test_the_market_watch_lists_launched_pools_there_at_its_start() -> None:
    watch = MarketPoolWatch(Pools([LISTED, LAUNCHED]).snapshot)
    (pool,) = await watch.seed()  # the genesis pool (createdSlot 0) is never new
    assert (pool.address, pool.created_slot, pool.listed) == ("launch", 12, True)
    probed = await MarketProbe(watch).probe(pool, SOL.mint, pool.mint_a, 10**8)
    assert probed.quote_liquidity == 20 * 10**9 and probed.out > 0


class Cluster:
    def __init__(self, pages: list[list[SignatureEntry]], times: dict[int, int]) -> None:
        self.pages = pages
        self.times = times
        self.befores: list[str | None] = []

    async def signatures_for_address(self, address: str, *, before: str | None = None,
                                     until: str | None = None,
                                     limit: int = 1000) -> list[SignatureEntry]:
        self.befores.append(before)
        return self.pages.pop(0) if self.pages else []

    async def block_time(self, slot: int) -> int | None:
        if slot not in self.times:
            raise RpcUnavailable(message="getBlockTime: slot not available")
        return self.times[slot]


def listed(created_slot: int = 0) -> NewPool:
    return NewPool(Venue.RAYDIUM, str(POOL), "a", "b", ("va", "vb"), created_slot, 50,
                   listed=True)


def sig(n: int, slot: int, block_time: int | None = None) -> SignatureEntry:
    return SignatureEntry(f"sig{n}", slot, None, None, block_time)


async def test_a_listed_pools_birth_is_its_oldest_signature() -> None:
    cluster = Cluster([[sig(3, 30, 1_700_000_030), sig(2, 20, 1_700_000_020)],
                       [sig(1, 10)]], {10: 1_700_000_010})
    births = ChainBirths(cluster, cluster, page=2)
    assert await births.birth(listed()) == (10, 1_700_000_010_000)
    assert cluster.befores == [None, "sig2"]


async def test_a_pool_older_than_the_pages_read_or_unknown_to_the_cluster_has_no_birth(
        ) -> None:
    many = [[sig(i, i) for i in (2 * n + 1, 2 * n)] for n in range(5, 0, -1)]
    assert await ChainBirths(Cluster(many, {}), Cluster([], {}), page=2,
                             max_pages=3).birth(listed()) is None
    assert await ChainBirths(Cluster([], {}), Cluster([], {})).birth(listed()) is None
    assert await ChainBirths(Cluster([], {}), Cluster([], {})).birth(listed(12)) is None


async def test_a_market_pools_birth_is_its_launch_slots_block_time() -> None:
    cluster = Cluster([], {12: 1_700_000_012})
    assert await ChainBirths(cluster, cluster).birth(listed(12)) == (12, 1_700_000_012_000)
    assert cluster.befores == []  # the launch slot is known: no history read
