"""On-chain venues as the engine's :class:`~pipeline.venues.base.Venues`: pools read from
the chain, quoted exactly, and a transaction the engine builds itself.

``quote`` reads the cluster clock (the DLMM variable fee depends on it), asks the venue
for every pool of the pair and keeps the best; the quote carries its own minimum output
(``otherAmountThreshold``, from the order's slippage) and the way to build its leg.
``swap_transaction`` wraps the leg in the envelope of :mod:`pipeline.txbuild` (ATAs,
SOL wrap/unwrap, memo), simulates it for the compute limit, prices it from recent
prioritization fees over its writable accounts, and returns it unsigned: the executor
signs, records, then sends.

What a quote costs: one Clock read, then per venue two ``getMultipleAccounts`` (see
``pipeline/venues/onchain_pools.py``); a swap costs a blockhash, a simulation and a fee
read.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from pipeline import routing
from pipeline.accounts import AccountReader
from pipeline.errors import NoRoute
from pipeline.model import Quote, Venue
from pipeline.txbuild import (
    MAX_COMPUTE_UNITS,
    FeePolicy,
    SwapEnvelope,
    compute_limit,
    priority_price,
    swap_message,
    wallet_account,
)
from pipeline.venues.base import SwapTransaction
from pipeline.venues.pools import ClusterTime, PoolQuote, PoolVenue


class OnchainVenues:
    def __init__(self, reader: AccountReader, venues: Mapping[Venue, PoolVenue], *,
                 fees: FeePolicy | None = None) -> None:
        self._reader = reader
        self._venues = dict(venues)
        self._fees = fees or FeePolicy()

    async def quote(self, venue: Venue, input_mint: str, output_mint: str, amount: int,
                    slippage_bps: int) -> Quote:
        pools = self._venues.get(venue)
        if pools is None:
            raise NoRoute(message=f"{venue} is not an enabled on-chain venue")
        slot, unix = await self._reader.clock()
        found = await pools.quote_pools(self._reader, Pubkey.from_string(input_mint),
                                        Pubkey.from_string(output_mint), amount,
                                        ClusterTime(slot, unix))
        usable = [q for q in found if q.amount_out > 0]
        if not usable:
            raise NoRoute(message=f"no {venue} pool can swap {amount} of {input_mint} "
                                  f"for {output_mint}")
        best = max(usable, key=lambda q: q.amount_out)
        min_out = routing.min_out(best.amount_out, slippage_bps)
        impact = Decimal(best.price_impact.numerator) / Decimal(best.price_impact.denominator)
        return Quote(venue, amount, best.amount_out, best.fee, input_mint,
                     f"{impact:.12f}", str(best.pool), slot,
                     raw={"otherAmountThreshold": str(min_out), "poolQuote": best})

    async def swap_transaction(self, quote: Quote, user_public_key: str, *,
                               memo: str | None = None) -> SwapTransaction:
        pool_quote = quote.raw.get("poolQuote")
        if not isinstance(pool_quote, PoolQuote) or memo is None:
            raise NoRoute(message="an on-chain swap needs its own quote and the order memo")
        user = Pubkey.from_string(user_public_key)
        min_out = int(str(quote.raw["otherAmountThreshold"]))
        leg = pool_quote.build_leg(user, wallet_account(user, pool_quote.mint_in),
                                   wallet_account(user, pool_quote.mint_out), min_out)
        env = SwapEnvelope(user, pool_quote.mint_in, pool_quote.mint_out, quote.in_amount,
                           memo)
        blockhash, last_valid = await self._reader.latest_blockhash()
        draft = swap_message(env, [leg], cu_limit=MAX_COMPUTE_UNITS, cu_price=0,
                             blockhash=blockhash)
        units = await self._reader.simulate_units(_unsigned(draft))
        writable = [m.pubkey for m in leg.accounts if m.is_writable]
        price = priority_price(await self._reader.prioritization_fees(writable), self._fees)
        message = swap_message(env, [leg], cu_limit=compute_limit(units, self._fees),
                               cu_price=price, blockhash=blockhash)
        return SwapTransaction(bytes(_unsigned(message)), last_valid)


def _unsigned(message: object) -> VersionedTransaction:
    """The message with empty signature slots (the executor fills the wallet's)."""
    from solders.message import MessageV0

    assert isinstance(message, MessageV0)
    n = message.header.num_required_signatures
    return VersionedTransaction.populate(message, [Signature.default()] * n)
