"""Meteora DLMM (lb_clmm) swap math, integer-exact.

Mirrors the program's ``math/u64x64_math.rs`` (Q64.64 ``pow``), ``state/bin.rs``
(constant-sum swap inside one bin), ``state/lb_pair`` (fee rates) and
``state/parameters.rs`` (volatility accumulator), and the bin walk of
``commons/src/quote.rs::quote_exact_in``. Everything is a pure function of the state
and an explicit ``now`` (unix seconds) so the market, the tests and any client that
reads ``/pools`` compute the same numbers.

Token X is the base, Y the quote; ``price(id) = (1 + bin_step/10_000)^id`` is Y per X in
raw units, Q64.64. X->Y (``swap_for_y``) walks bins down, Y->X walks up.
Swap fees are charged on the input token and kept in the vault *outside* the bins
(the program credits them to LPs/protocol, not to bin reserves), so
``vault == sum(bins) + accrued fees``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction
from functools import lru_cache
from types import MappingProxyType
from typing import NamedTuple

SCALE_OFFSET = 64
ONE = 1 << SCALE_OFFSET
U128_MAX = (1 << 128) - 1
U64_MAX = (1 << 64) - 1
BASIS_POINT_MAX = 10_000
FEE_PRECISION = 1_000_000_000
MAX_FEE_RATE = 100_000_000  # 10%
MAX_EXPONENTIAL = 0x80000
MIN_BIN_ID = -443_636
MAX_BIN_ID = 443_636


class DlmmError(ValueError):
    """A swap the program would reject."""


class DlmmMathError(DlmmError):
    """``LBError::MathOverflow`` / ``TypeCastFailed``."""


class InsufficientLiquidity(DlmmError):
    """The walk ran out of bins holding the output token (``PairInsufficientLiquidity``)."""


# --------------------------------------------------------------------------- Q64.64 math


def _checked_u128(value: int) -> int:
    if value > U128_MAX:
        raise DlmmMathError("u128 overflow")
    return value


def get_base(bin_step: int) -> int:
    """``1 + bin_step/10_000`` in Q64.64 (the fraction is floored, as in the program)."""
    return ONE + (bin_step << SCALE_OFFSET) // BASIS_POINT_MAX


def pow_q64(base: int, exp: int) -> int:
    """``u64x64_math::pow``: square-and-multiply on the *inverted* base.

    The program inverts a base >= 1 (``u128::MAX / base``) so intermediate products stay
    in 128 bits, then inverts the result back; the truncation at each ``>> 64`` is part of
    the price, so it is reproduced bit for bit rather than computed with big floats.
    """
    invert = exp < 0
    if exp == 0:
        return ONE
    e = -exp if invert else exp
    if e >= MAX_EXPONENTIAL:
        raise DlmmMathError("exponent too large")
    squared = base
    result = ONE
    if squared >= result:
        squared = U128_MAX // squared
        invert = not invert
    bit = 1
    while bit < MAX_EXPONENTIAL:
        if bit > 1:
            squared = _checked_u128(squared * squared) >> SCALE_OFFSET
        if e & bit:
            result = _checked_u128(result * squared) >> SCALE_OFFSET
        bit <<= 1
    if result == 0:
        raise DlmmMathError("pow underflow")
    if invert:
        result = U128_MAX // result
    return result


@lru_cache(maxsize=8192)
def price_from_id(bin_id: int, bin_step: int) -> int:
    """``price_math::get_price_from_id``: Q64.64 price of a bin (Y per X, raw units)."""
    return pow_q64(get_base(bin_step), bin_id)


def _mul_div(x: int, y: int, denominator: int, round_up: bool) -> int:
    if round_up:
        return _checked_u128(-(-(x * y) // denominator))
    return _checked_u128((x * y) // denominator)


def _to_u64(value: int) -> int:
    if value > U64_MAX:
        raise DlmmMathError("u64 cast overflow")
    return value


def get_amount_out(amount_in: int, price: int, swap_for_y: bool) -> int:
    """``Bin::get_amount_out``: X->Y ``in*price >> 64``, Y->X ``(in << 64)/price``, floored."""
    if swap_for_y:
        return _to_u64(_mul_div(price, amount_in, ONE, round_up=False))
    return _to_u64(_mul_div(amount_in, ONE, price, round_up=False))


def get_max_amount_in(amount_x: int, amount_y: int, price: int, swap_for_y: bool) -> int:
    """``Bin::get_max_amount_in``: input that empties the bin's output side, rounded *up*."""
    if swap_for_y:
        return _to_u64(_mul_div(amount_y, ONE, price, round_up=True))
    return _to_u64(_mul_div(amount_x, price, ONE, round_up=True))


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True, slots=True)
class FeeParams:
    """``StaticParameters`` (defaults: the program's preset for bin_step 10)."""

    base_factor: int = 10_000
    filter_period: int = 30
    decay_period: int = 600
    reduction_factor: int = 5_000
    variable_fee_control: int = 40_000
    max_volatility_accumulator: int = 350_000
    protocol_share: int = 0
    base_fee_power_factor: int = 0


@dataclass(frozen=True, slots=True)
class VolatilityState:
    """``VariableParameters``: what the variable fee depends on."""

    volatility_accumulator: int = 0
    volatility_reference: int = 0
    index_reference: int = 0
    last_update_timestamp: int = 0


def base_fee_rate(params: FeeParams, bin_step: int) -> int:
    """``get_base_fee``: base_factor * bin_step * 10 * 10^power, in 1e9 units."""
    scale: int = 10**params.base_fee_power_factor
    return params.base_factor * bin_step * 10 * scale


def variable_fee_rate(params: FeeParams, bin_step: int, volatility_accumulator: int) -> int:
    """``compute_variable_fee``: vfc * (va * bin_step)^2, scaled 1e20 -> 1e9, rounded up."""
    if params.variable_fee_control == 0:
        return 0
    v_fee = params.variable_fee_control * (volatility_accumulator * bin_step) ** 2
    return (v_fee + 99_999_999_999) // 100_000_000_000


def total_fee_rate(params: FeeParams, bin_step: int, volatility_accumulator: int) -> int:
    """``get_total_fee``: base + variable, capped at 10%."""
    total = base_fee_rate(params, bin_step) + variable_fee_rate(
        params, bin_step, volatility_accumulator
    )
    return min(total, MAX_FEE_RATE)


def compute_fee_from_amount(amount_with_fees: int, fee_rate: int) -> int:
    """``compute_fee_from_amount``: fee that is *part of* the amount, rounded up."""
    return _to_u64((amount_with_fees * fee_rate + FEE_PRECISION - 1) // FEE_PRECISION)


def compute_fee(amount: int, fee_rate: int) -> int:
    """``compute_fee``: fee to add *on top of* ``amount`` so that it is the rate of the sum."""
    denominator = FEE_PRECISION - fee_rate
    return _to_u64((amount * fee_rate + denominator - 1) // denominator)


def update_references(
    vol: VolatilityState, params: FeeParams, active_id: int, now: int
) -> VolatilityState:
    """``VariableParameters::update_references``, run once at the start of a swap.

    Within the filter period (high-frequency trading) nothing changes; after it, the
    reference moves to the active bin and the accumulator decays by the reduction factor,
    or resets to zero once the decay period has also passed.
    """
    elapsed = now - vol.last_update_timestamp
    if elapsed < params.filter_period:
        return vol
    if elapsed < params.decay_period:
        reference = vol.volatility_accumulator * params.reduction_factor // BASIS_POINT_MAX
    else:
        reference = 0
    return replace(vol, index_reference=active_id, volatility_reference=reference)


def update_volatility_accumulator(
    vol: VolatilityState, params: FeeParams, active_id: int
) -> VolatilityState:
    """va = min(vr + |index_reference - active_id| * 10_000, max_va), per bin crossed."""
    delta = abs(vol.index_reference - active_id)
    accumulator = min(
        vol.volatility_reference + delta * BASIS_POINT_MAX, params.max_volatility_accumulator
    )
    return replace(vol, volatility_accumulator=accumulator)


# --------------------------------------------------------------------------- pool state


@dataclass(frozen=True, slots=True)
class Bin:
    amount_x: int = 0
    amount_y: int = 0


def _freeze_bins(bins: Mapping[int, Bin]) -> Mapping[int, Bin]:
    return MappingProxyType({k: v for k, v in sorted(bins.items()) if v.amount_x or v.amount_y})


@dataclass(frozen=True, slots=True, eq=False)
class DlmmState:
    """An ``LbPair`` plus its non-empty bins and the fees held in the vaults."""

    bin_step: int
    active_id: int
    bins: Mapping[int, Bin]
    params: FeeParams = field(default_factory=FeeParams)
    volatility: VolatilityState = field(default_factory=VolatilityState)
    fee_x: int = 0
    fee_y: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "bins", _freeze_bins(self.bins))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DlmmState):
            return NotImplemented
        return (
            self.bin_step == other.bin_step
            and self.active_id == other.active_id
            and dict(self.bins) == dict(other.bins)
            and self.params == other.params
            and self.volatility == other.volatility
            and self.fee_x == other.fee_x
            and self.fee_y == other.fee_y
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def total_x(self) -> int:
        """What the X vault must hold: bin liquidity plus accrued fees."""
        return sum(b.amount_x for b in self.bins.values()) + self.fee_x

    @property
    def total_y(self) -> int:
        return sum(b.amount_y for b in self.bins.values()) + self.fee_y

    def price(self, bin_id: int | None = None) -> int:
        return price_from_id(self.active_id if bin_id is None else bin_id, self.bin_step)


class BinStep(NamedTuple):
    """One bin of a swap walk, for inspection and tests."""

    bin_id: int
    amount_in: int  # includes fee
    amount_out: int
    fee: int
    fee_rate: int
    volatility_accumulator: int


class DlmmQuote(NamedTuple):
    """Result of an exact-in swap; unpacks as ``(out, fee, new_state, price_impact, steps)``."""

    amount_out: int
    fee: int
    new_state: DlmmState
    price_impact: Fraction
    steps: tuple[BinStep, ...]


def swap_in_bin(
    bin_: Bin, price: int, amount_in: int, swap_for_y: bool, fee_rate: int
) -> tuple[Bin, int, int, int]:
    """``Bin::swap``: returns (new_bin, amount_in_with_fees, amount_out, fee).

    If the input is more than enough to empty the bin, only what empties it (plus the fee
    on top, ``compute_fee``) is consumed; otherwise the fee is carved out of the input
    (``compute_fee_from_amount``) and the rest converts at the bin price.
    """
    max_amount_out = bin_.amount_y if swap_for_y else bin_.amount_x
    max_amount_in = get_max_amount_in(bin_.amount_x, bin_.amount_y, price, swap_for_y)
    max_fee = compute_fee(max_amount_in, fee_rate)
    max_amount_in += max_fee
    if amount_in > max_amount_in:
        used, out, fee = max_amount_in, max_amount_out, max_fee
    else:
        fee = compute_fee_from_amount(amount_in, fee_rate)
        out = min(get_amount_out(amount_in - fee, price, swap_for_y), max_amount_out)
        used = amount_in
    into_bin = used - fee
    if swap_for_y:
        new_bin = Bin(_to_u64(bin_.amount_x + into_bin), bin_.amount_y - out)
    else:
        new_bin = Bin(bin_.amount_x - out, _to_u64(bin_.amount_y + into_bin))
    return new_bin, used, out, fee


def _bins_in_walk_order(state: DlmmState, swap_for_y: bool) -> Iterator[int]:
    """Bin ids from the active bin outward that hold the output token.

    The program visits every bin id (and jumps over empty bin arrays via its bitmap); empty
    bins change nothing but the active id, and the volatility accumulator is a function of
    the active id only, so skipping straight to the next funded bin is equivalent.
    """
    if swap_for_y:
        ids = sorted(
            (i for i, b in state.bins.items() if i <= state.active_id and b.amount_y), reverse=True
        )
    else:
        ids = sorted(i for i, b in state.bins.items() if i >= state.active_id and b.amount_x)
    return iter(ids)


def quote_exact_in(state: DlmmState, swap_for_y: bool, amount_in: int, now: int) -> DlmmQuote:
    """Swap ``amount_in`` walking bins from the active one; pure, returns the new state.

    Raises :class:`InsufficientLiquidity` if the bins cannot absorb the whole input (the
    program reverts in that case too; it never partially fills an exact-in swap).
    """
    if amount_in <= 0 or amount_in > U64_MAX:
        raise DlmmError(f"amount_in must be in 1..u64::MAX, got {amount_in}")
    params, bin_step = state.params, state.bin_step
    vol = update_references(state.volatility, params, state.active_id, now)
    bins = dict(state.bins)
    active = state.active_id
    left = amount_in
    total_out = 0
    total_fee = 0
    steps: list[BinStep] = []
    walk = _bins_in_walk_order(state, swap_for_y)
    while left > 0:
        nxt = next(walk, None)
        if nxt is None:
            raise InsufficientLiquidity(
                f"bins hold too little {'Y' if swap_for_y else 'X'} for {amount_in} in"
            )
        if not MIN_BIN_ID <= nxt <= MAX_BIN_ID:
            raise InsufficientLiquidity("walked past the supported bin range")
        active = nxt
        vol = update_volatility_accumulator(vol, params, active)
        rate = total_fee_rate(params, bin_step, vol.volatility_accumulator)
        price = price_from_id(active, bin_step)
        new_bin, used, out, fee = swap_in_bin(bins[active], price, left, swap_for_y, rate)
        bins[active] = new_bin
        left -= used
        total_out += out
        total_fee += fee
        steps.append(BinStep(active, used, out, fee, rate, vol.volatility_accumulator))
    if active != state.active_id:
        # As the program does: the timestamp that the filter/decay periods are measured
        # from moves only when a swap moves the active bin. Refreshing it on every swap
        # would keep chained same-bin swaps inside the filter period, freeze the
        # volatility references and overcharge the variable fee on the next swap.
        vol = replace(vol, last_update_timestamp=now)
    new_state = replace(
        state,
        active_id=active,
        bins=bins,
        volatility=vol,
        fee_x=state.fee_x + (total_fee if swap_for_y else 0),
        fee_y=state.fee_y + (0 if swap_for_y else total_fee),
    )
    return DlmmQuote(
        total_out,
        total_fee,
        new_state,
        _price_impact(state, swap_for_y, amount_in, total_fee, total_out),
        tuple(steps),
    )


def _price_impact(
    state: DlmmState, swap_for_y: bool, amount_in: int, fee: int, out: int
) -> Fraction:
    """1 - out / (post-fee input at the active bin's price), as a fraction of 1."""
    price = state.price()
    net = amount_in - fee
    ideal = Fraction(net * price, ONE) if swap_for_y else Fraction(net * ONE, price)
    if ideal == 0:
        return Fraction(0)
    return max(Fraction(0), 1 - out / ideal)


def bin_id_for_price(price: Fraction, bin_step: int) -> int:
    """Highest bin whose price is <= ``price`` (raw Y per X); used only to seed pools."""
    target = price * ONE
    estimate = math.floor(math.log(price) / math.log1p(bin_step / BASIS_POINT_MAX))
    while price_from_id(estimate, bin_step) > target:
        estimate -= 1
    while price_from_id(estimate + 1, bin_step) <= target:
        estimate += 1
    return estimate


def active_fee_rate(state: DlmmState, now: int) -> int:
    """The total fee rate a swap starting at ``now`` pays in the active bin: the volatility
    references updated for the elapsed time, then the accumulator for that bin, as
    :func:`quote_exact_in` does before its first step."""
    vol = update_references(state.volatility, state.params, state.active_id, now)
    vol = update_volatility_accumulator(vol, state.params, state.active_id)
    return total_fee_rate(state.params, state.bin_step, vol.volatility_accumulator)
