"""Pools learnt at runtime (``pipeline/venues/learnt_pools.py``): with an explicit pool list
(``ORDERFLOW_POOLS``) or a cached program scan, an on-chain venue still trades the pool the
sniper's watch found after start."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from solders.pubkey import Pubkey

from pipeline.venues import raydium_cp as ray
from pipeline.venues.learnt_pools import LEARNT, LearntPools
from pipeline.venues.onchain_pools import RaydiumCpPools
from pipeline.venues.pools import ClusterTime, PoolDirectory
from tests.unit.test_raydium_cp import POOL_KEYS, config_bytes, pool_bytes

MINT_0, MINT_1 = POOL_KEYS["token_0_mint"], POOL_KEYS["token_1_mint"]


def token_account(amount: int) -> bytes:
    return bytes(64) + struct.pack("<Q", amount) + bytes(165 - 72)


class Reader:
    """Accounts by address; program scans answer nothing (counted)."""

    def __init__(self, accounts: dict[Pubkey, bytes]) -> None:
        self.data = accounts
        self.scans = 0

    async def accounts(self, keys: Sequence[Pubkey]) -> list[bytes | None]:
        return [self.data.get(k) for k in keys]

    async def program_accounts(self, program: Pubkey, filters: Sequence[dict[str, Any]]
                               ) -> list[tuple[Pubkey, bytes]]:
        self.scans += 1
        return []


async def test_the_directory_adds_the_pairs_learnt_pools_to_its_list_and_its_scan() -> None:
    program, listed, new, other = (Pubkey.new_unique() for _ in range(4))
    learnt = LearntPools()
    explicit = PoolDirectory(program, ray.pool_filters, explicit=[listed], learnt=learnt)
    scanned = PoolDirectory(program, ray.pool_filters, learnt=learnt)
    reader: Any = Reader({})  # the reads a directory makes, not the whole AccountReader
    assert await explicit.pools(reader, MINT_0, MINT_1) == [listed]
    assert await scanned.pools(reader, MINT_0, MINT_1) == []  # scanned before the launch
    learnt.learn(program, new, MINT_1, MINT_0)  # either mint order
    learnt.learn(program, new, MINT_0, MINT_1)  # once
    learnt.learn(Pubkey.new_unique(), other, MINT_0, MINT_1)  # another program's
    learnt.learn(program, other, MINT_0, Pubkey.new_unique())  # another pair's
    assert await explicit.pools(reader, MINT_0, MINT_1) == [listed, new]
    assert await scanned.pools(reader, MINT_0, MINT_1) == [new]  # the cached scan + learnt
    assert reader.scans == 2  # one scan per mint order, cached


def test_the_oldest_pairs_are_forgotten_first() -> None:
    learnt, program = LearntPools(max_pairs=2), Pubkey.new_unique()
    pairs = [(Pubkey.new_unique(), Pubkey.new_unique()) for _ in range(3)]
    for i, (a, b) in enumerate(pairs):
        learnt.learn(program, Pubkey(bytes([i + 1]) * 32), a, b)
    assert learnt.of(program, *pairs[0]) == [] and len(learnt) == 2
    assert learnt.of(program, *pairs[2]) == [Pubkey(bytes([3]) * 32)]


async def test_a_venue_with_an_explicit_list_quotes_a_pool_learnt_after_start() -> None:
    program, listed, launched = (Pubkey.new_unique() for _ in range(3))
    reader: Any = Reader({launched: pool_bytes(), POOL_KEYS["amm_config"]: config_bytes(),
                     POOL_KEYS["token_0_vault"]: token_account(20_000 * 10**6),
                     POOL_KEYS["token_1_vault"]: token_account(20 * 10**9)})
    venue = RaydiumCpPools(program, explicit=[listed])  # ORDERFLOW_POOLS: not the new pool
    now = ClusterTime(100, 1_700_000_000)
    assert await venue.quote_pools(reader, MINT_1, MINT_0, 10**8, now) == []
    LEARNT.learn(program, launched, MINT_0, MINT_1)  # what the trigger agent's watch does
    (quote,) = await venue.quote_pools(reader, MINT_1, MINT_0, 10**8, now)
    assert quote.pool == launched and quote.amount_out > 0
    assert reader.scans == 0  # still no program scan
