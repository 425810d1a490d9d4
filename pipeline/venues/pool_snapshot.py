"""A pool as a person looks at it: reserves or bins, price and fee, in one shape for every
venue, so the markets view never decodes a venue's accounts itself.

Each venue adapter fills these from the state it quotes on (``raydium_cp.snapshot``,
``meteora.snapshot.snapshot``, the local market's curves); amounts are base units, rates
integers over their program's own denominator. ``vaults`` are the token accounts that
hold the pool's reserves: a trade shows as their balance changes
(:mod:`pipeline.venues.pool_trades`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from solders.pubkey import Pubkey

from pipeline.model import Venue

Pairs = Sequence[tuple[Pubkey, Pubkey]]
"""Pairs of mints (either order)."""


@dataclass(frozen=True, slots=True)
class SnapshotToken:
    mint: str
    decimals: int | None  # None: the venue's accounts do not say (DLMM without its mint)


@dataclass(frozen=True, slots=True)
class CpSnapshot:
    """A constant-product pool: the reserves its curve sees (vaults minus accrued fees)."""

    venue: Venue
    pool: str
    x: SnapshotToken
    y: SnapshotToken
    reserve_x: int
    reserve_y: int
    fee_rate: int  # the trade fee, per FEE_DENOMINATOR
    vaults: tuple[str, str] = ("", "")

    FEE_DENOMINATOR = 1_000_000


@dataclass(frozen=True, slots=True)
class SnapshotBin:
    bin_id: int
    amount_x: int
    amount_y: int


@dataclass(frozen=True, slots=True)
class DlmmSnapshot:
    """A liquidity-bin pair: the funded bins read around the active one, and its fee now
    (base plus the variable part a swap starting now pays in the active bin)."""

    venue: Venue
    pool: str
    x: SnapshotToken
    y: SnapshotToken
    bin_step: int
    active_id: int
    bins: tuple[SnapshotBin, ...]
    base_fee_rate: int  # per FEE_DENOMINATOR
    fee_rate: int
    vaults: tuple[str, str] = ("", "")

    FEE_DENOMINATOR = 1_000_000_000


PoolSnapshot = CpSnapshot | DlmmSnapshot


@dataclass(frozen=True, slots=True)
class PoolsSnapshot:
    """Every pool read at one cluster time."""

    slot: int
    unix_timestamp: int
    pools: tuple[PoolSnapshot, ...]
