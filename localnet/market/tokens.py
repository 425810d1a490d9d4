"""The tokens the local market lists, at their mainnet mint addresses.

Using the mainnet addresses lets one token registry (and one venue client) serve the
localnet and mainnet alike; the localnet creates these mints at the same addresses.
"""

from __future__ import annotations

from dataclasses import dataclass

from solders.pubkey import Pubkey


@dataclass(frozen=True, slots=True)
class MarketToken:
    symbol: str
    mint: Pubkey
    decimals: int

    @property
    def is_native(self) -> bool:
        """Wrapped SOL: its token accounts hold lamports and are (un)wrapped by the swap."""
        return self.mint == NATIVE_MINT


NATIVE_MINT = Pubkey.from_string("So11111111111111111111111111111111111111112")

SOL = MarketToken("SOL", NATIVE_MINT, 9)
USDC = MarketToken("USDC", Pubkey.from_string("EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"), 6)
USDT = MarketToken("USDT", Pubkey.from_string("Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB"), 6)

TOKENS: tuple[MarketToken, ...] = (SOL, USDC, USDT)
BY_MINT: dict[str, MarketToken] = {str(t.mint): t for t in TOKENS}
