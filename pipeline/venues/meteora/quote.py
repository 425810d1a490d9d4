"""Exact-in quotes of an on-chain DLMM pair, with the program's own integer math.

The bin walk, fee rates and volatility update are :mod:`dexmath.dlmm` (one implementation,
shared with the local market). This module turns decoded accounts into its state, decides
which bin arrays the swap walks through (every initialised array from the active one up to
the one the swap ends in: the program loads each of them, funded or not), and refuses,
rather than misquotes, what that math does not model: limit-order liquidity the walk would
reach, fees collected on the output token, Token-2022 mints (transfer fees/hooks), bins whose
stored price differs from the computed one, and pairs the program would not let trade.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from itertools import takewhile

from solders.pubkey import Pubkey

from dexmath import dlmm
from pipeline.venues.meteora.layout import (
    ACTIVATION_BY_SLOT,
    FEE_MODE_INPUT_ONLY,
    FUNCTION_LIMIT_ORDER,
    FUNCTION_UNDETERMINED,
    PAIR_TYPE_CUSTOMIZABLE_PERMISSIONLESS,
    PAIR_TYPE_PERMISSION,
    STATUS_ENABLED,
    TOKEN_PROGRAM_2022_FLAG,
    BinArray,
    BitmapExtension,
    LbPair,
)
from pipeline.venues.meteora.pdas import bin_array_index, initialized_bin_arrays

_DEFAULT_PUBKEY = Pubkey.default()
SPARE_BIN_ARRAYS = 2
"""Loaded bin arrays a swap carries past the ones its quote walks. The program takes the
arrays it enters from the remaining accounts and fails with ``AccountNotEnoughKeys``
(3005) when the next one is missing; after another trade has pushed the active bin ahead
in the swap's direction, that would hide the slippage error (6003) behind an account
error. Seen on the real program by ``scripts/real_programs_check.py``."""


class UnsupportedPool(ValueError):
    """A pool (or this swap on it) whose payout this quote cannot compute exactly."""


class PoolNotTradable(ValueError):
    """The program would refuse any swap: the pair is disabled or not yet activated."""


class MissingBinArrays(ValueError):
    """The walk needs a bin array that was not loaded: fetch ``index`` and quote again."""

    def __init__(self, index: int) -> None:
        super().__init__(f"the swap walks into bin array {index}, which was not loaded")
        self.index = index


@dataclass(frozen=True, slots=True)
class DlmmPool:
    """A pair as read from the chain: its account, the bin arrays loaded (by index) and the
    bitmap extension when the pair has one."""

    address: Pubkey
    pair: LbPair
    bin_arrays: Mapping[int, BinArray]
    bitmap_extension: BitmapExtension | None = None


@dataclass(frozen=True, slots=True)
class SwapQuote:
    """An exact-in quote. ``walked_arrays``: the array indexes the quoted walk visits, in
    order; ``bin_arrays``: what the swap carries, those plus up to
    :data:`SPARE_BIN_ARRAYS` loaded ones after them."""

    amount_in: int
    amount_out: int
    fee: int
    swap_for_y: bool
    bin_arrays: tuple[int, ...]
    end_active_id: int
    price_impact: Fraction
    walked_arrays: tuple[int, ...] = ()


def supports_limit_orders(pair: LbPair) -> bool:
    """``is_support_limit_order``: LimitOrder pairs, and Undetermined ones with no rewards."""
    kind = pair.parameters.function_type
    if kind == FUNCTION_LIMIT_ORDER:
        return True
    if kind == FUNCTION_UNDETERMINED:
        return all(r.mint == _DEFAULT_PUBKEY for r in pair.reward_infos)
    return False


def check_tradable(pair: LbPair, now: int, slot: int) -> None:
    """``validate_swap_activation``: enabled, and past the activation point if it has one."""
    if pair.status != STATUS_ENABLED:
        raise PoolNotTradable("pair is disabled")
    if pair.pair_type in (PAIR_TYPE_PERMISSION, PAIR_TYPE_CUSTOMIZABLE_PERMISSIONLESS):
        point = slot if pair.activation_type == ACTIVATION_BY_SLOT else now
        if point < pair.activation_point:
            raise PoolNotTradable(f"pair activates at {pair.activation_point}, now {point}")


def dlmm_state(pool: DlmmPool, array_indexes: list[int]) -> dlmm.DlmmState:
    """The :mod:`dexmath.dlmm` state of ``pool`` with the market-making bins of those arrays."""
    pair = pool.pair
    bins = {
        pool.bin_arrays[i].lower_bin_id + slot: dlmm.Bin(b.amount_x, b.amount_y)
        for i in array_indexes
        for slot, b in enumerate(pool.bin_arrays[i].bins)
    }
    p, v = pair.parameters, pair.v_parameters
    params = dlmm.FeeParams(
        base_factor=p.base_factor, filter_period=p.filter_period, decay_period=p.decay_period,
        reduction_factor=p.reduction_factor, variable_fee_control=p.variable_fee_control,
        max_volatility_accumulator=p.max_volatility_accumulator,
        protocol_share=p.protocol_share, base_fee_power_factor=p.base_fee_power_factor,
    )
    volatility = dlmm.VolatilityState(
        volatility_accumulator=v.volatility_accumulator,
        volatility_reference=v.volatility_reference,
        index_reference=v.index_reference, last_update_timestamp=v.last_update_timestamp,
    )
    return dlmm.DlmmState(pair.bin_step, pair.active_id, bins, params, volatility)


def _refuse_unmodelled(pool: DlmmPool, swap_for_y: bool) -> None:
    pair = pool.pair
    if TOKEN_PROGRAM_2022_FLAG in (pair.token_mint_x_program_flag, pair.token_mint_y_program_flag):
        raise UnsupportedPool("Token-2022 mint: transfer fees and hooks are not quoted")
    if pair.parameters.collect_fee_mode != FEE_MODE_INPUT_ONLY and swap_for_y:
        raise UnsupportedPool("fee collected in token Y off the output (collect_fee_mode 1)")
    for array in pool.bin_arrays.values():
        if array.lb_pair != pool.address:
            raise UnsupportedPool(f"bin array {array.index} belongs to {array.lb_pair}")


def _check_walk(pool: DlmmPool, swap_for_y: bool, steps: tuple[dlmm.BinStep, ...]) -> None:
    """Refuse a walk whose bins the shared math reads differently from the program: a bin
    drained of market-making liquidity whose limit orders the program would fill next, or a
    stored bin price that is not the computed one."""
    active, last = pool.pair.active_id, steps[-1].bin_id
    passed = range(last + 1, active + 1) if swap_for_y else range(active, last)
    if supports_limit_orders(pool.pair):
        for bin_id in passed:
            array = pool.bin_arrays.get(bin_array_index(bin_id))
            if array is not None and any(array.bin(bin_id).limit_order_amounts(swap_for_y)):
                raise UnsupportedPool(f"the swap reaches limit orders in bin {bin_id}")
    for step in steps:
        stored = pool.bin_arrays[bin_array_index(step.bin_id)].bin(step.bin_id).price
        if stored and stored != dlmm.price_from_id(step.bin_id, pool.pair.bin_step):
            raise UnsupportedPool(f"bin {step.bin_id} stores price {stored}, not the computed one")


def quote_exact_in(pool: DlmmPool, amount_in: int, swap_for_y: bool, *, now: int,
                   slot: int) -> SwapQuote:
    """What swapping ``amount_in`` pays at cluster time ``now`` (unix s) and ``slot``.

    ``swap_for_y`` sells token X for Y. Raises :class:`MissingBinArrays` when the walk
    leaves the loaded arrays, :class:`dexmath.dlmm.InsufficientLiquidity` when the pool
    itself cannot fill it, :class:`UnsupportedPool`/:class:`PoolNotTradable` as above.
    """
    check_tradable(pool.pair, now, slot)
    _refuse_unmodelled(pool, swap_for_y)
    walk = list(initialized_bin_arrays(pool.pair, pool.bitmap_extension, swap_for_y))
    loaded = list(takewhile(lambda i: i in pool.bin_arrays, walk))
    try:
        result = dlmm.quote_exact_in(dlmm_state(pool, loaded), swap_for_y, amount_in, now)
    except dlmm.InsufficientLiquidity:
        if len(loaded) < len(walk):
            raise MissingBinArrays(walk[len(loaded)]) from None
        raise
    _check_walk(pool, swap_for_y, result.steps)
    walked = walk.index(bin_array_index(result.steps[-1].bin_id)) + 1
    carried = max(walked, min(len(loaded), walked + SPARE_BIN_ARRAYS))
    return SwapQuote(
        amount_in=amount_in, amount_out=result.amount_out, fee=result.fee,
        swap_for_y=swap_for_y, bin_arrays=tuple(walk[:carried]),
        end_active_id=result.new_state.active_id, price_impact=result.price_impact,
        walked_arrays=tuple(walk[:walked]),
    )
