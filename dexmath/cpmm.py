"""Raydium CPMM (cp-swap) swap math, integer-exact.

Mirrors ``programs/cp-swap/src/curve/{fees,constant_product,calculator}.rs`` so that
a quote computed here is the amount the real program would pay:

* ``trade_fee = ceil(amount_in * trade_fee_rate / 1_000_000)``
* ``out = floor((amount_in - fee) * R_out / (R_in + amount_in - fee))`` which is the
  same number as ``R_out - ceil(R_in * R_out / (R_in + amount_in - fee))``.
* The whole ``amount_in`` (fee included) stays in the input vault.

The reserves here are the program's *effective* reserves: a real pool's vault balances
minus the protocol, fund (and creator) fees it has accrued but not yet collected (see
``pipeline.venues.raydium_cp``). The local venue accrues none, so there vault == reserve.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from typing import NamedTuple

FEE_RATE_DENOMINATOR = 1_000_000
U64_MAX = (1 << 64) - 1


class CpmmError(ValueError):
    """A swap the program would reject (bad input, empty pool, overflow)."""


@dataclass(frozen=True, slots=True)
class CpmmState:
    """Pool reserves (== vault balances) and the AmmConfig trade fee rate (per 1e6)."""

    reserve_a: int
    reserve_b: int
    trade_fee_rate: int = 2_500

    def __post_init__(self) -> None:
        if not 0 <= self.trade_fee_rate < FEE_RATE_DENOMINATOR:
            raise CpmmError(f"trade_fee_rate {self.trade_fee_rate} out of range")
        if not (0 <= self.reserve_a <= U64_MAX and 0 <= self.reserve_b <= U64_MAX):
            raise CpmmError("reserves must fit in u64")

    def reserves(self, a_to_b: bool) -> tuple[int, int]:
        """(reserve_in, reserve_out) for the given direction."""
        return (self.reserve_a, self.reserve_b) if a_to_b else (self.reserve_b, self.reserve_a)

    def with_reserves(self, a_to_b: bool, reserve_in: int, reserve_out: int) -> CpmmState:
        if a_to_b:
            return replace(self, reserve_a=reserve_in, reserve_b=reserve_out)
        return replace(self, reserve_a=reserve_out, reserve_b=reserve_in)


class CpmmQuote(NamedTuple):
    """Result of an exact-in swap; unpacks as ``(out, fee, new_state, price_impact)``."""

    amount_out: int
    fee: int
    new_state: CpmmState
    price_impact: Fraction


def trading_fee(amount: int, trade_fee_rate: int) -> int:
    """``Fees::trading_fee``: the fee is rounded *up* so the pool never undercharges."""
    return (amount * trade_fee_rate + FEE_RATE_DENOMINATOR - 1) // FEE_RATE_DENOMINATOR


def swap_base_input_without_fees(amount_in: int, reserve_in: int, reserve_out: int) -> int:
    """``ConstantProductCurve::swap_base_input_without_fees`` (floor division)."""
    return (amount_in * reserve_out) // (reserve_in + amount_in)


def quote_exact_in(state: CpmmState, a_to_b: bool, amount_in: int) -> CpmmQuote:
    """Swap ``amount_in`` of the input token; pure, returns the post-swap state.

    ``price_impact`` compares the output with what the post-fee input would fetch at the
    pre-trade spot price (fee excluded, like Jupiter's ``priceImpactPct``), as a fraction of 1.
    A tiny input can legitimately produce ``amount_out == 0``; callers decide whether to trade.
    """
    if amount_in <= 0 or amount_in > U64_MAX:
        raise CpmmError(f"amount_in must be in 1..u64::MAX, got {amount_in}")
    reserve_in, reserve_out = state.reserves(a_to_b)
    if reserve_in == 0 or reserve_out == 0:
        raise CpmmError("pool is empty")
    fee = trading_fee(amount_in, state.trade_fee_rate)
    amount_less_fee = amount_in - fee
    out = swap_base_input_without_fees(amount_less_fee, reserve_in, reserve_out)
    new_in = reserve_in + amount_in
    if new_in > U64_MAX:
        raise CpmmError("input vault would overflow u64")
    new_state = state.with_reserves(a_to_b, new_in, reserve_out - out)
    ideal = Fraction(amount_less_fee * reserve_out, reserve_in)
    impact = Fraction(0) if ideal == 0 else max(Fraction(0), 1 - out / ideal)
    return CpmmQuote(out, fee, new_state, impact)


def invariant(state: CpmmState) -> int:
    """k = reserve_a * reserve_b; a swap never decreases it."""
    return state.reserve_a * state.reserve_b


def spot_price(state: CpmmState, a_to_b: bool) -> Fraction:
    """Marginal output per unit input (raw units, no fee)."""
    reserve_in, reserve_out = state.reserves(a_to_b)
    return Fraction(reserve_out, reserve_in)
