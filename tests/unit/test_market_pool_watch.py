"""The local market's pool watch for sniper orders (over a double of ``GET /pools``), its
probe, and the decimals of a token no registry lists (read from its mint account)."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Sequence
from typing import Any

import pytest
from solders.pubkey import Pubkey

from dexmath import cpmm
from pipeline.errors import InvalidOrder
from pipeline.market_pool_watch import MarketPoolWatch, MarketProbe, probe_of
from pipeline.mint_decimals import know_tokens
from pipeline.model import Venue
from pipeline.sniper import NewPool
from pipeline.tokens import SOL, USDC, resolve_token, token_by_mint
from pipeline.venues.market_pools import MarketSnapshot, parse_pools

ONE_SOL = 10**9
NEW = str(Pubkey.new_unique())


def cp_pool(key: str, mint_x: str, mint_y: str, rx: int, ry: int, created: int = 0
            ) -> dict[str, Any]:
    return {"label": "Raydium CP", "ammKey": key, "mintX": mint_x, "mintY": mint_y,
            "vaultX": f"{key}-x", "vaultY": f"{key}-y", "reserveX": str(rx),
            "reserveY": str(ry), "createdSlot": created, "cpmm": {"tradeFeeRate": 2_500}}


class Pools:
    """``GET /pools`` answers, one per read (the last repeats)."""

    def __init__(self, *answers: list[dict[str, Any]]) -> None:
        self.answers = list(answers)
        self.slot = 10

    async def snapshot(self) -> MarketSnapshot:
        pools = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        self.slot += 1
        return parse_pools({"pools": pools, "contextSlot": self.slot,
                            "unixTimestamp": 1_700_000_000})


LISTED = cp_pool("sol-usdc", SOL.mint, USDC.mint, 5_000 * ONE_SOL, 750_000 * 10**6)
LAUNCHED = cp_pool("launch", NEW, SOL.mint, 20_000 * 10**6, 20 * ONE_SOL, created=12)


async def test_a_launched_pool_is_reported_with_its_creation_slot_and_again_when_it_moves(
        ) -> None:
    moved = {**LAUNCHED, "reserveX": str(19_000 * 10**6), "reserveY": str(21 * ONE_SOL)}
    watch = MarketPoolWatch(Pools([LISTED], [LISTED, LAUNCHED], [LISTED, LAUNCHED],
                                  [LISTED, moved]).snapshot)
    seen: list[NewPool] = []

    async def on_pool(pool: NewPool) -> None:
        seen.append(pool)
    await watch.seed()  # what exists at start is never a launch
    assert await watch.read_once(on_pool) == 1
    assert await watch.read_once(on_pool) == 0  # unchanged: not reported again
    assert await watch.read_once(on_pool) == 1  # traded: seen again, same creation slot
    first, again = seen
    assert (first.venue, first.address, first.mint_a, first.mint_b) == (
        Venue.RAYDIUM, "launch", NEW, SOL.mint)
    assert first.vault_of(SOL.mint) == "launch-y"
    assert (first.created_slot, first.seen_slot) == (12, 12)
    assert (again.created_slot, again.seen_slot) == (12, 14)


async def test_the_watch_reads_only_while_a_sniper_waits() -> None:
    pools = Pools([LISTED])
    watch = MarketPoolWatch(pools.snapshot, poll_s=0.001)

    async def on_pool(pool: NewPool) -> None:
        raise AssertionError("nothing was launched")
    task = asyncio.ensure_future(watch.run(lambda: False, on_pool))
    await asyncio.wait_for(watch.seeded.wait(), 5)
    for _ in range(20):
        await asyncio.sleep(0.001)
    task.cancel()
    assert watch.reads == 1  # the seed only


async def test_the_probe_is_the_pools_exact_quote_its_quote_side_and_impact() -> None:
    watch = MarketPoolWatch(Pools([], [LAUNCHED]).snapshot)
    await watch.seed()
    pools: list[NewPool] = []

    async def on_pool(pool: NewPool) -> None:
        pools.append(pool)
    await watch.read_once(on_pool)
    probe = await MarketProbe(watch).probe(pools[0], SOL.mint, NEW, ONE_SOL // 2)
    state = cpmm.CpmmState(20 * ONE_SOL, 20_000 * 10**6, 2_500)
    exact = cpmm.quote_exact_in(state, True, ONE_SOL // 2)  # the program's math
    assert (probe.quote_liquidity, probe.out) == (20 * ONE_SOL, exact.amount_out)
    # 0.5 SOL into 20 SOL: ~0.5 / 20.5 of the price; the fee is not impact (as the market's
    # own priceImpactPct)
    assert abs(probe.impact_bps - exact.price_impact * 10_000) <= 1, (probe, exact)
    unknown = NewPool(Venue.RAYDIUM, "gone", NEW, SOL.mint, ("a", "b"), 1, 1)
    assert (await MarketProbe(watch).probe(unknown, SOL.mint, NEW, 1)).out == 0
    assert probe_of(watch.latest["launch"], NEW, 10**6).quote_liquidity == 20_000 * 10**6


class Mints:
    def __init__(self, accounts: dict[str, bytes | None]) -> None:
        self.accounts_ = accounts
        self.asked: list[list[str]] = []

    async def accounts(self, keys: Sequence[Pubkey]) -> list[bytes | None]:
        self.asked.append([str(k) for k in keys])
        return [self.accounts_.get(str(k)) for k in keys]


def mint_data(decimals: int, initialized: bool = True) -> bytes:
    """An SPL Token mint account's 82 bytes: authority option and key, supply, decimals,
    is_initialized, freeze authority option and key."""
    return struct.pack("<I32sQBBI32s", 0, bytes(32), 0, decimals, int(initialized), 0,
                       bytes(32))


async def test_a_new_tokens_decimals_come_from_its_mint_account_once() -> None:
    token = str(Pubkey.new_unique())
    mints = Mints({token: mint_data(5)})
    await know_tokens(mints, SOL.mint, token)
    await know_tokens(mints, SOL.mint, token)
    assert mints.asked == [[token]]  # SOL is listed; the new mint is read once
    learnt = token_by_mint(token)
    assert learnt is not None and learnt.decimals == 5
    with pytest.raises(InvalidOrder):  # known for amounts, never accepted by name
        resolve_token(token)


@pytest.mark.parametrize("data", [None, mint_data(6, initialized=False), b"\x01" * 40])
async def test_an_account_that_is_no_mint_is_refused(data: bytes | None) -> None:
    token = str(Pubkey.new_unique())
    with pytest.raises(InvalidOrder, match="is not a token mint"):
        await know_tokens(Mints({token: data}), token)
    with pytest.raises(InvalidOrder, match="reads no mint accounts"):
        await know_tokens(None, token)
    assert token_by_mint(token) is None
