"""What every venue adapter offers the router and the executor."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from pipeline.model import Quote, Venue


class Cluster(StrEnum):
    """The Solana cluster a venue trades on: it picks the programs' ids."""

    LOCALNET = "localnet"
    DEVNET = "devnet"
    MAINNET = "mainnet"


@dataclass(frozen=True, slots=True)
class SwapTransaction:
    """An unsigned-by-us transaction from the venue and the block height it expires after."""

    tx_bytes: bytes
    last_valid_block_height: int


class Venues(Protocol):
    async def quote(self, venue: Venue, input_mint: str, output_mint: str, amount: int,
                    slippage_bps: int) -> Quote: ...

    async def swap_transaction(self, quote: Quote, user_public_key: str, *,
                               memo: str | None = None,
                               priority_fee_micro_lamports: int | None = None
                               ) -> SwapTransaction:
        """The venue's transaction for ``quote``; with ``memo``, it must carry an SPL Memo
        instruction with exactly that text (the engine checks before signing); with
        ``priority_fee_micro_lamports`` (an order's own, e.g. a sniper's), its
        ``SetComputeUnitPrice`` is exactly that, whatever the venue's fee policy says."""
        ...
