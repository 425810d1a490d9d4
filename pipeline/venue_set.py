"""Which venues an engine process trades on, built from one frozen description.

The executor trades on them; the ingress quotes on the same ones (``GET /api/quote``) so
that a quote shown before an order is the quote the executor would get. Both build them
here, so the two cannot drift apart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
from solders.pubkey import Pubkey

from pipeline.accounts import RpcAccounts
from pipeline.model import Venue
from pipeline.txbuild import FeePolicy
from pipeline.venues import JupiterConfig, JupiterVenues, Venues
from pipeline.venues.base import Cluster
from pipeline.venues.onchain import OnchainVenues
from pipeline.venues.onchain_pools import MeteoraDlmmPools, RaydiumCpPools
from pipeline.venues.pools import PoolVenue
from pipeline.venues.raydium_cp import RAYDIUM_CP_PROGRAM


@dataclass(frozen=True, slots=True)
class VenueSet:
    """``kind``: ``local-market`` or ``jupiter`` (a Jupiter-shaped API at ``venue_url``),
    or ``onchain`` (the CP-Swap and DLMM programs read directly over the RPC)."""

    kind: str = "local-market"
    venue_url: str | None = None
    cluster: str = "localnet"
    pools: tuple[tuple[str, str], ...] = ()  # (venue, pool address): skip program scans
    jupiter_api_key: str | None = dataclasses.field(default=None, repr=False)
    jupiter_priority_level: str = "veryHigh"
    jupiter_max_priority_lamports: int = 1_000_000
    fees: FeePolicy = dataclasses.field(default_factory=FeePolicy)  # engine-built txs
    enabled: tuple[Venue, ...] = (Venue.RAYDIUM, Venue.METEORA)

    @property
    def engine_built(self) -> bool:
        """The engine builds the transaction (and pays a priority fee it estimates)."""
        return self.kind == "onchain"


def pool_venues(spec: VenueSet) -> dict[Venue, RaydiumCpPools | MeteoraDlmmPools]:
    """The on-chain venue adapters of ``spec`` (its pool directories: ``spec.pools`` or
    the program scan); share them to quote and chart the same pools."""
    cluster = Cluster(spec.cluster)

    def explicit(venue: str) -> list[Pubkey]:
        return [Pubkey.from_string(addr) for v, addr in spec.pools if v == venue]

    return {
        Venue.RAYDIUM: RaydiumCpPools(RAYDIUM_CP_PROGRAM[cluster], explicit=explicit("raydium")),
        Venue.METEORA: MeteoraDlmmPools(explicit=explicit("meteora")),
    }


def build_venues(spec: VenueSet, session: aiohttp.ClientSession, accounts: RpcAccounts, *,
                 taker: str, pools: Mapping[Venue, PoolVenue] | None = None) -> Venues:
    """The venues ``spec`` describes; ``taker`` is the wallet (Jupiter v2 quotes for it);
    ``pools``: the on-chain adapters to use (default: new ones, :func:`pool_venues`)."""
    if spec.kind != "onchain":
        if spec.venue_url is None:
            raise ValueError(f"venues {spec.kind!r} need a venue URL")
        return JupiterVenues(JupiterConfig(
            spec.venue_url, api_key=spec.jupiter_api_key,
            priority_level=spec.jupiter_priority_level,
            max_priority_lamports=spec.jupiter_max_priority_lamports),
            session, accounts, taker=taker)
    return OnchainVenues(accounts, pools if pools is not None else pool_venues(spec),
                         fees=spec.fees)
