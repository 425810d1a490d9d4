"""A DLMM pair as the markets view shows it: the funded bins around the active one, read
from its bin arrays, and the fee a swap starting now pays.

Pure like the rest of the adapter: the caller fetches the pair, the arrays named by
:func:`chart_bin_arrays` (an array never initialised is simply absent) and the two mints
(their decimals; SPL Token and Token-2022 mints keep them at byte 44).
"""

from __future__ import annotations

from collections.abc import Mapping

from solders.pubkey import Pubkey

from dexmath import dlmm
from pipeline.model import Venue
from pipeline.venues.meteora.layout import BinArray, LbPair
from pipeline.venues.meteora.pdas import bin_array_index
from pipeline.venues.meteora.quote import DlmmPool, dlmm_state
from pipeline.venues.pool_snapshot import DlmmSnapshot, SnapshotBin, SnapshotToken

CHART_BINS_EACH_SIDE = 60  # the bins a trade of any sensible size walks
MINT_LEN, DECIMALS_OFFSET, INITIALIZED_OFFSET = 82, 44, 45


def chart_bin_arrays(pair: LbPair, each_side: int = CHART_BINS_EACH_SIDE) -> list[int]:
    """The indexes of the (two or three) arrays holding the bins within ``each_side`` of
    the active one."""
    return list(range(bin_array_index(pair.active_id - each_side),
                      bin_array_index(pair.active_id + each_side) + 1))


def mint_decimals(data: bytes | None) -> int | None:
    """A mint account's decimals; None when the account is missing or no mint."""
    if data is None or len(data) < MINT_LEN or data[INITIALIZED_OFFSET] != 1:
        return None
    return data[DECIMALS_OFFSET]


def snapshot(address: Pubkey, pair: LbPair, arrays: Mapping[int, BinArray], now: int,
             decimals: tuple[int | None, int | None] = (None, None),
             each_side: int = CHART_BINS_EACH_SIDE) -> DlmmSnapshot:
    """The funded bins of ``arrays`` within ``each_side`` of the active bin (arrays of
    another pair are ignored), the base fee and the fee now (cluster time ``now``)."""
    low, high = pair.active_id - each_side, pair.active_id + each_side
    bins = []
    for index in sorted(arrays):
        array = arrays[index]
        if array.lb_pair != address:
            continue
        for slot, b in enumerate(array.bins):
            bin_id = array.lower_bin_id + slot
            if low <= bin_id <= high and (b.amount_x or b.amount_y):
                bins.append(SnapshotBin(bin_id, b.amount_x, b.amount_y))
    state = dlmm_state(DlmmPool(address, pair, {}), [])
    base = min(dlmm.base_fee_rate(state.params, pair.bin_step), dlmm.MAX_FEE_RATE)
    return DlmmSnapshot(Venue.METEORA, str(address),
                        SnapshotToken(str(pair.token_x_mint), decimals[0]),
                        SnapshotToken(str(pair.token_y_mint), decimals[1]),
                        pair.bin_step, pair.active_id, tuple(bins), base,
                        dlmm.active_fee_rate(state, now),
                        (str(pair.reserve_x), str(pair.reserve_y)))
