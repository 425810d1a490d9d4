"""On-chain venues as the engine's :class:`~pipeline.venues.base.Venues`: pools read from
the chain, quoted exactly, and a transaction the engine builds itself.

``quote`` reads the cluster clock (the DLMM variable fee depends on it), asks the venue
for every pool of the pair and keeps the best; the quote carries its own minimum output
(``otherAmountThreshold``, from the order's slippage), the way to build its leg, the
pool's exact curve on the state read (``Quote.curve``: the router searches a split on it
with no further RPC) and what its leg adds to the fee (``Quote.cost_lamports``: the leg's
estimated compute units at the priority price the recent fees give).

``swap_transaction`` builds one leg, or for a split (``Quote.legs``) both legs in ONE
transaction, so the split is atomic: each leg carries its own minimum output, which its
program enforces. The legs go in the envelope of :mod:`pipeline.txbuild` (ATAs, SOL
wrap/unwrap of the whole input, memo), simulated for the compute limit, priced from
recent prioritization fees over all the legs' writable accounts (or at the order's own
price, a sniper's priority fee), and returned unsigned:
the executor signs, records, then sends.

What a quote costs: one Clock read and one ``getRecentPrioritizationFees`` (concurrent),
then per venue two ``getMultipleAccounts`` (see ``pipeline/venues/onchain_pools.py``); a
split costs nothing more. A swap costs a blockhash, a simulation and a fee read.
"""

from __future__ import annotations

import asyncio
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
        (slot, unix), recent = await asyncio.gather(self._reader.clock(),
                                                    self._reader.prioritization_fees([]))
        found = await pools.quote_pools(self._reader, Pubkey.from_string(input_mint),
                                        Pubkey.from_string(output_mint), amount,
                                        ClusterTime(slot, unix))
        usable = [q for q in found if q.amount_out > 0]
        if not usable:
            raise NoRoute(message=f"no {venue} pool can swap {amount} of {input_mint} "
                                  f"for {output_mint}")
        best = max(usable, key=lambda q: q.amount_out)
        return pool_quote(best, routing.min_out(best.amount_out, slippage_bps), slot,
                          priority_price(recent, self._fees))

    async def swap_transaction(self, quote: Quote, user_public_key: str, *,
                               memo: str | None = None,
                               priority_fee_micro_lamports: int | None = None
                               ) -> SwapTransaction:
        parts = quote.legs or (quote,)
        pool_quotes = [p.raw.get("poolQuote") for p in parts]
        if memo is None or not all(isinstance(p, PoolQuote) for p in pool_quotes):
            raise NoRoute(message="an on-chain swap needs its own quote and the order memo")
        user = Pubkey.from_string(user_public_key)
        legs = []
        for part, pq in zip(parts, pool_quotes, strict=True):
            assert isinstance(pq, PoolQuote)
            legs.append(pq.build_leg(user, wallet_account(user, pq.mint_in),
                                     wallet_account(user, pq.mint_out),
                                     int(str(part.raw["otherAmountThreshold"]))))
        first = pool_quotes[0]
        assert isinstance(first, PoolQuote)
        env = SwapEnvelope(user, first.mint_in, first.mint_out, quote.in_amount, memo)
        blockhash, last_valid = await self._reader.latest_blockhash()
        draft = swap_message(env, legs, cu_limit=MAX_COMPUTE_UNITS, cu_price=0,
                             blockhash=blockhash)
        units = await self._reader.simulate_units(_unsigned(draft))
        writable = list(dict.fromkeys(m.pubkey for leg in legs for m in leg.accounts
                                      if m.is_writable))
        price = (priority_fee_micro_lamports if priority_fee_micro_lamports is not None
                 else priority_price(await self._reader.prioritization_fees(writable),
                                     self._fees))
        message = swap_message(env, legs, cu_limit=compute_limit(units, self._fees),
                               cu_price=price, blockhash=blockhash)
        return SwapTransaction(bytes(_unsigned(message)), last_valid)


def pool_quote(best: PoolQuote, min_out: int, slot: int, cu_price: int) -> Quote:
    """The engine's quote of one pool: its leg enforces ``min_out``; its curve answers for
    other amounts on the same state; its cost is the leg's units at ``cu_price``."""
    impact = Decimal(best.price_impact.numerator) / Decimal(best.price_impact.denominator)
    return Quote(best.venue, best.amount_in, best.amount_out, best.fee, str(best.mint_in),
                 f"{impact:.12f}", str(best.pool), slot,
                 raw={"otherAmountThreshold": str(min_out), "poolQuote": best},
                 cost_lamports=-(-best.compute_units * cu_price // 1_000_000),
                 curve=_Curve(best, slot, cu_price))


class _Curve:
    """:class:`pipeline.model.PoolCurve` of one pool on the state its quote read; outputs
    are remembered (the split search asks some amounts twice)."""

    def __init__(self, base: PoolQuote, slot: int, cu_price: int) -> None:
        self._base = base
        self._slot = slot
        self._cu_price = cu_price
        self._seen: dict[int, PoolQuote | None] = {}

    def _at(self, amount_in: int) -> PoolQuote | None:
        if amount_in not in self._seen:
            self._seen[amount_in] = self._base.at(amount_in)
        return self._seen[amount_in]

    def out(self, amount_in: int) -> int:
        found = self._at(amount_in) if amount_in > 0 else None
        return 0 if found is None else found.amount_out

    def at(self, amount_in: int, min_out: int) -> Quote:
        found = self._at(amount_in)
        if found is None:
            raise NoRoute(message=f"{self._base.pool} cannot swap {amount_in}")
        return pool_quote(found, min_out, self._slot, self._cu_price)


def _unsigned(message: object) -> VersionedTransaction:
    """The message with empty signature slots (the executor fills the wallet's)."""
    from solders.message import MessageV0

    assert isinstance(message, MessageV0)
    n = message.header.num_required_signatures
    return VersionedTransaction.populate(message, [Signature.default()] * n)
