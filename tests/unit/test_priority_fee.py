"""A sniper order's own priority fee (``priorityFeeMicroLamports``) is the
``SetComputeUnitPrice`` of its swap: on the Jupiter-shaped venues (the local market's and
Jupiter's ``/swap-instructions``, rebuilt in our envelope) and on engine-built on-chain
swaps, and the executor hands it to the venue for that order only."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from fractions import Fraction

import aiohttp
from aiohttp.test_utils import BaseTestServer
from solders.compute_budget import set_compute_unit_limit
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from pipeline.executor import Outcome
from pipeline.model import OrderType, SniperTerms, Venue
from pipeline.tokens import SOL, USDC
from pipeline.txbuild import (
    COMPUTE_BUDGET_PROGRAM,
    AggregatorSwap,
    FeePolicy,
    aggregator_instructions,
)
from pipeline.venues import JupiterConfig, JupiterVenues
from pipeline.venues.onchain import OnchainVenues, pool_quote
from pipeline.venues.pools import PoolQuote
from pipeline.wire import ExecuteOrder, now_ms
from tests.unit.executor_doubles import SigningVenues
from tests.unit.test_conditional import crig, trigger
from tests.unit.test_venues import MEMO, USER, Chain, FakeJupiter, server  # noqa: F401

FEE = 424_242  # micro-lamports per compute unit


def unit_prices(message: MessageV0) -> list[int]:
    """Every SetComputeUnitPrice of the message (there must be one)."""
    keys = message.account_keys
    return [int.from_bytes(bytes(ix.data)[1:9], "little") for ix in message.instructions
            if keys[ix.program_id_index] == COMPUTE_BUDGET_PROGRAM
            and bytes(ix.data)[:1] == b"\x03"]


def message_of(tx_bytes: bytes) -> MessageV0:
    message = VersionedTransaction.from_bytes(tx_bytes).message
    assert isinstance(message, MessageV0)
    return message


async def test_a_jupiter_shaped_swap_pays_the_orders_own_price(
        server: tuple[BaseTestServer, FakeJupiter]) -> None:  # noqa: F811
    srv, fake = server
    async with aiohttp.ClientSession() as session:
        venues = JupiterVenues(JupiterConfig(str(srv.make_url("/swap/v1"))), session, Chain())
        q = await venues.quote(Venue.RAYDIUM, SOL.mint, USDC.mint, 100_000_000, 50)
        policy = await venues.swap_transaction(q, USER, memo=MEMO)
        own = await venues.swap_transaction(q, USER, memo=MEMO,
                                            priority_fee_micro_lamports=FEE)
    (venue_price,) = unit_prices(message_of(policy.tx_bytes))  # the venue's, kept
    assert venue_price != FEE
    assert unit_prices(message_of(own.tx_bytes)) == [FEE]  # replaced, not added
    asked = fake.requests[-1][4]
    assert asked["computeUnitPriceMicroLamports"] == FEE
    assert "prioritizationFeeLamports" not in asked


def test_a_price_is_added_where_the_aggregator_set_none() -> None:
    swap = AggregatorSwap([set_compute_unit_limit(200_000)], [], Instruction(
        Pubkey.new_unique(), b"swap", []))
    ixs = aggregator_instructions(swap, None, cu_price=FEE)
    assert [bytes(ix.data)[:1] for ix in ixs[:2]] == [b"\x02", b"\x03"]
    assert int.from_bytes(bytes(ixs[1].data)[1:9], "little") == FEE
    assert bytes(ixs[0].data) == bytes(set_compute_unit_limit(200_000).data)  # no memo: as is


class Reader:
    """What an on-chain swap build reads: a blockhash, a simulation, the recent fees."""

    async def latest_blockhash(self) -> tuple[Hash, int]:
        return Hash.new_unique(), 99

    async def simulate_units(self, tx: VersionedTransaction) -> int:
        return 50_000

    async def prioritization_fees(self, writable: Sequence[Pubkey]) -> list[int]:
        return [700, 900]


async def test_an_engine_built_swap_pays_the_orders_own_price_over_the_policy() -> None:
    pool = Pubkey.new_unique()
    pq = PoolQuote(Venue.RAYDIUM, pool, Pubkey.from_string(SOL.mint),
                   Pubkey.from_string(USDC.mint), 10**9, 150 * 10**6, 2_500, Fraction(1, 1000),
                   lambda user, src, dst, min_out: Instruction(
                       Pubkey.new_unique(), min_out.to_bytes(8, "little"),
                       [AccountMeta(user, True, True), AccountMeta(pool, False, True)]))
    quote = pool_quote(pq, 149 * 10**6, 7, 0)
    venues = OnchainVenues(Reader(), {}, fees=FeePolicy(percentile=100))  # type: ignore[arg-type]
    by_policy = await venues.swap_transaction(quote, USER, memo=MEMO)
    own = await venues.swap_transaction(quote, USER, memo=MEMO, priority_fee_micro_lamports=FEE)
    assert unit_prices(message_of(by_policy.tx_bytes)) == [900]  # the recent fees' top
    assert unit_prices(message_of(own.tx_bytes)) == [FEE]


async def test_the_executor_hands_a_sniper_its_own_fee_and_others_none() -> None:
    r = crig(SigningVenues())
    now = now_ms()
    sniper = ExecuteOrder("s-1", SOL.mint, USDC.mint, 10**9, 50, now,
                          order_type=OrderType.SNIPER, expires_at_ms=now + 60_000,
                          sniper=SniperTerms(0, priority_fee_micro_lamports=FEE))
    plain = dataclasses.replace(sniper, order_id="s-2", sniper=SniperTerms(0))
    for cmd in (sniper, plain):
        assert await r.executor.run(cmd) is Outcome.OPENED
        trigger(r, cmd.order_id)
        assert await r.executor.run(cmd) is Outcome.CONFIRMED
    prices = {oid: unit_prices(message_of(bs[-1].tx))
              for oid, bs in r.journal.state.broadcasts.items()}
    assert prices == {"s-1": [FEE], "s-2": []}
