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


@dataclass(frozen=True, slots=True)
class FeeRates:
    """An ``AmmConfig``'s rates, per 1e6, as one swap sees them.

    ``protocol_fee_rate`` and ``fund_fee_rate`` are shares *of the trade fee*; the creator
    fee is charged on top, on the input or on the output (``creator_fee_on_input``, from the
    pool's ``creator_fee_on`` and the direction); a pool without creator fees has rate 0.
    """

    trade_fee_rate: int
    protocol_fee_rate: int = 0
    fund_fee_rate: int = 0
    creator_fee_rate: int = 0
    creator_fee_on_input: bool = False


class SwapResult(NamedTuple):
    """``CurveCalculator::swap_base_input``'s result, in the units the program uses.

    ``amount_out`` is what the output vault sends the trader (before any Token-2022
    transfer fee); ``swapped`` is the curve's output, which leaves the *effective* output
    reserve (the creator's share of it, when charged on output, stays accrued in the vault).
    ``new_reserve_in``/``new_reserve_out`` are the pool's effective reserves afterwards: the
    LP share of the trade fee stays in the pool, the protocol/fund/creator shares accrue.
    """

    amount_out: int
    swapped: int
    trade_fee: int
    protocol_fee: int
    fund_fee: int
    creator_fee: int
    new_reserve_in: int
    new_reserve_out: int


def _floor_div(amount: int, numerator: int, denominator: int) -> int:
    if denominator == 0:
        raise CpmmError("fee split by zero (the program's ZeroTradingTokens)")
    return amount * numerator // denominator


def swap_base_input(
    amount_in: int, reserve_in: int, reserve_out: int, rates: FeeRates
) -> SwapResult:
    """Exact-in swap against *effective* reserves, mirroring ``curve/calculator.rs``.

    A creator fee on input is taken with the trade fee as one ceiling
    (``ceil(x·(trade+creator)/1e6)``) and split by floor; one on output is
    ``ceil(swapped·creator/1e6)``. The program rejects (``ZeroTradingTokens``) a split over
    zero total rate, so does this. Whether a zero output is acceptable is the caller's call
    (the program requires ``amount_out > 0``).
    """
    if amount_in <= 0 or amount_in > U64_MAX:
        raise CpmmError(f"amount_in must be in 1..u64::MAX, got {amount_in}")
    if reserve_in <= 0 or reserve_out <= 0:
        raise CpmmError("pool is empty")
    creator_fee = 0
    if rates.creator_fee_on_input:
        total_fee = trading_fee(amount_in, rates.trade_fee_rate + rates.creator_fee_rate)
        creator_fee = _floor_div(total_fee, rates.creator_fee_rate,
                                 rates.trade_fee_rate + rates.creator_fee_rate)
        trade_fee = total_fee - creator_fee
    else:
        trade_fee = trading_fee(amount_in, rates.trade_fee_rate)
        total_fee = trade_fee
    if total_fee > amount_in:
        raise CpmmError("fee exceeds the input")
    protocol_fee = _floor_div(trade_fee, rates.protocol_fee_rate, FEE_RATE_DENOMINATOR)
    fund_fee = _floor_div(trade_fee, rates.fund_fee_rate, FEE_RATE_DENOMINATOR)
    swapped = swap_base_input_without_fees(amount_in - total_fee, reserve_in, reserve_out)
    amount_out = swapped
    if not rates.creator_fee_on_input:
        creator_fee = trading_fee(swapped, rates.creator_fee_rate)  # Fees::creator_fee: ceil
        amount_out = swapped - creator_fee
    accrued_in = protocol_fee + fund_fee + (creator_fee if rates.creator_fee_on_input else 0)
    return SwapResult(amount_out, swapped, trade_fee, protocol_fee, fund_fee, creator_fee,
                      reserve_in + amount_in - accrued_in, reserve_out - swapped)


def quote_exact_in(state: CpmmState, a_to_b: bool, amount_in: int) -> CpmmQuote:
    """Swap ``amount_in`` of the input token; pure, returns the post-swap state.

    The local venue's pool: trade fee only, all of it stays with the LPs, so the whole
    ``amount_in`` joins the input reserve. ``price_impact`` compares the output with what
    the post-fee input would fetch at the pre-trade spot price (fee excluded, like Jupiter's
    ``priceImpactPct``), as a fraction of 1. A tiny input can legitimately produce
    ``amount_out == 0``; callers decide whether to trade.
    """
    reserve_in, reserve_out = state.reserves(a_to_b)
    result = swap_base_input(amount_in, reserve_in, reserve_out, FeeRates(state.trade_fee_rate))
    if result.new_reserve_in > U64_MAX:
        raise CpmmError("input vault would overflow u64")
    new_state = state.with_reserves(a_to_b, result.new_reserve_in, result.new_reserve_out)
    ideal = Fraction((amount_in - result.trade_fee) * reserve_out, reserve_in)
    impact = Fraction(0) if ideal == 0 else max(Fraction(0), 1 - result.amount_out / ideal)
    return CpmmQuote(result.amount_out, result.trade_fee, new_state, impact)


def invariant(state: CpmmState) -> int:
    """k = reserve_a * reserve_b; a swap never decreases it."""
    return state.reserve_a * state.reserve_b


def spot_price(state: CpmmState, a_to_b: bool) -> Fraction:
    """Marginal output per unit input (raw units, no fee)."""
    reserve_in, reserve_out = state.reserves(a_to_b)
    return Fraction(reserve_out, reserve_in)
