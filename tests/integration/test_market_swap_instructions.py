"""The engine's Jupiter client against the local market's ``/swap-instructions`` on an
in-process :class:`Chain`: the client builds the transaction itself (its memo, its
blockhash), the engine's ``sign_as`` signs it alone, the chain lands it, and the market's
escrowed payout settles exactly; expiry and a failed swap give the escrow back to the vault.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from solders.hash import Hash
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from localnet.chain import MAX_PROCESSING_AGE, Chain
from localnet.market import Market, build_market_app
from localnet.market.escrow import EXPIRY_MARGIN_BLOCKS
from localnet.market.tokens import NATIVE_MINT, SOL, USDC
from localnet.market.txbuilder import ata
from pipeline.chain_history import has_memo
from pipeline.errors import SlippageExceeded
from pipeline.model import Venue
from pipeline.solana_rpc import sign_as
from pipeline.venues import JupiterConfig, JupiterVenues

ONE_SOL = 10**9
MEMO = "orderflow:0b7f6c8e-3d9a-4e1b-9c2f-5a6d7e8f9a0b"


class ChainReads:
    """The client's chain reads answered by the in-process chain itself."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain

    async def accounts(self, keys: Sequence[Pubkey]) -> list[bytes | None]:
        return [None if (a := self.chain.get_account(k)) is None else bytes(a.data)
                for k in keys]

    async def latest_blockhash(self) -> tuple[Hash, int]:
        return self.chain.latest_blockhash()


@dataclass
class Env:
    chain: Chain
    market: Market
    venues: JupiterVenues
    user: Keypair


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    chain = Chain(slot_ms=50)
    market = Market(chain, seed=7, drift_bps=0)
    user = Keypair()
    market.faucet(str(user.pubkey()))
    async with TestServer(build_market_app(market, run_drift=False)) as server, \
            aiohttp.ClientSession() as session:
        config = JupiterConfig(str(server.make_url("/swap/v1")), api_key="k-not-checked")
        yield Env(chain, market, JupiterVenues(config, session, ChainReads(chain),
                                               taker=str(user.pubkey())), user)


def pool_of(market: Market, amm_key: str) -> Any:
    return next(p for p in market.pools if str(p.amm_key) == amm_key)


def assert_books_match_vaults(market: Market) -> None:
    assert market.reconcile() == []


@pytest.mark.parametrize("venue", [Venue.RAYDIUM, Venue.METEORA])
async def test_sol_in_lands_with_our_memo_and_settles_exactly(env: Env, venue: Venue) -> None:
    chain, me = env.chain, env.user.pubkey()
    quote = await env.venues.quote(venue, str(SOL.mint), str(USDC.mint), 2 * ONE_SOL, 50)
    pool = pool_of(env.market, quote.amm_key)
    vault_usdc = chain.token_balance(pool.vault_y)
    lamports, usdc = chain.get_balance(me), chain.token_balance(ata(me, USDC.mint))

    swap = await env.venues.swap_transaction(quote, str(me), memo=MEMO)
    assert swap.last_valid_block_height == chain.latest_blockhash()[1]  # our blockhash
    assert env.market.reconcile() == []  # the payout sits in escrow, still the pool's
    assert chain.token_balance(pool.vault_y) == vault_usdc - quote.out_amount
    signed = sign_as(swap.tx_bytes, env.user)
    assert has_memo(signed, MEMO)
    assert signed.message.header.num_required_signatures == 1  # the wallet alone
    record = chain.transaction(chain.send(signed))
    assert record is not None and record.err is None, record and record.logs

    assert record.fee == 5_000
    assert chain.get_balance(me) == lamports - quote.in_amount - record.fee
    assert chain.get_account(ata(me, NATIVE_MINT)) is None  # unwrapped
    assert chain.token_balance(ata(me, USDC.mint)) == usdc + quote.out_amount
    assert not pool.book.pending()
    chain.tick()  # the finished escrow is closed on the next slot
    assert env.market.escrows == {}
    assert_books_match_vaults(env.market)


async def test_an_expired_escrow_goes_back_to_the_vault(env: Env) -> None:
    chain, me = env.chain, env.user.pubkey()
    quote = await env.venues.quote(Venue.METEORA, str(USDC.mint), str(SOL.mint),
                                   500 * 10**6, 50)
    pool = pool_of(env.market, quote.amm_key)
    before = pool.book.state
    vault_sol = chain.token_balance(pool.vault_x)
    await env.venues.swap_transaction(quote, str(me), memo=MEMO)  # never sent
    assert chain.token_balance(pool.vault_x) == vault_sol - quote.out_amount
    for _ in range(MAX_PROCESSING_AGE + EXPIRY_MARGIN_BLOCKS):
        chain.tick()
    assert pool.book.pending()  # kept for a transaction on a later blockhash
    chain.tick()
    assert not pool.book.pending() and pool.book.state == before
    assert env.market.escrows == {}
    assert chain.token_balance(pool.vault_x) == vault_sol
    assert_books_match_vaults(env.market)


async def test_a_failed_swap_releases_and_reclaims(env: Env) -> None:
    chain = env.chain
    broke = Keypair()  # SOL for the fee, no USDC to pay with
    env.market.faucet(str(broke.pubkey()), str(SOL.mint))
    quote = await env.venues.quote(Venue.RAYDIUM, str(USDC.mint), str(SOL.mint),
                                   100 * 10**6, 50)
    pool = pool_of(env.market, quote.amm_key)
    before = pool.book.state
    swap = await env.venues.swap_transaction(quote, str(broke.pubkey()), memo=MEMO)
    record = chain.transaction(chain.send(sign_as(swap.tx_bytes, broke)))
    assert record is not None and record.err is not None  # landed failed, fee charged
    assert pool.book.state == before and not pool.book.pending()
    chain.tick()
    assert env.market.escrows == {}
    assert_books_match_vaults(env.market)


async def test_a_moved_pool_is_refused_as_slippage(env: Env) -> None:
    stale = await env.venues.quote(Venue.RAYDIUM, str(SOL.mint), str(USDC.mint),
                                   10 * ONE_SOL, 0)
    other = await env.venues.quote(Venue.RAYDIUM, str(SOL.mint), str(USDC.mint),
                                   30 * ONE_SOL, 50)
    await env.venues.swap_transaction(other, str(env.user.pubkey()), memo=MEMO)
    with pytest.raises(SlippageExceeded):
        await env.venues.swap_transaction(stale, str(env.user.pubkey()), memo=MEMO)
    assert_books_match_vaults(env.market)
