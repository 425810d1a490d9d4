"""Meteora DLMM (``lb_clmm``) accounts: ``LbPair``, ``BinArray``, ``BinArrayBitmapExtension``.

The layouts follow ``idls/dlmm.json`` of ``MeteoraAg/dlmm-sdk`` (program version 0.12.0),
field by field and padding by padding: the accounts are ``bytemuck`` ``repr(C)`` structs
behind an 8-byte Anchor discriminator (``sha256("account:<Name>")[:8]``), with no
implicit padding (every field is naturally aligned in the IDL's order), so each is read
with one little-endian ``struct`` format. A decoder refuses bytes of the wrong length or
discriminator rather than reading a different account type as a pool.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from solders.pubkey import Pubkey

PROGRAM_ID = Pubkey.from_string("LBUZKhRxPF3XUpBCjp4YzTKgLccjZhTSDM9YuVaPwxo")
"""The DLMM program, the same id on mainnet and devnet."""

BINS_PER_ARRAY = 70
BIN_ARRAY_BITMAP_SIZE = 512  # the LbPair's internal bitmap covers arrays -512..511
EXTENSION_BITMAP_ROWS = 12  # BinArrayBitmapExtension: 12 rows of 512 bits per sign

# PairStatus, PairType, ActivationType, FunctionType, CollectFeeMode, TokenProgramFlags
STATUS_ENABLED = 0
PAIR_TYPE_PERMISSION = 1
PAIR_TYPE_CUSTOMIZABLE_PERMISSIONLESS = 2
ACTIVATION_BY_SLOT = 0
FUNCTION_UNDETERMINED = 0
FUNCTION_LIMIT_ORDER = 2
FEE_MODE_INPUT_ONLY = 0
TOKEN_PROGRAM_2022_FLAG = 1


class DecodeError(ValueError):
    """Bytes that are not the account they were read as."""


def account_discriminator(name: str) -> bytes:
    """Anchor's account discriminator: the first 8 bytes of ``sha256("account:<Name>")``."""
    return hashlib.sha256(f"account:{name}".encode()).digest()[:8]


LB_PAIR_DISCRIMINATOR = account_discriminator("LbPair")
BIN_ARRAY_DISCRIMINATOR = account_discriminator("BinArray")
BITMAP_EXTENSION_DISCRIMINATOR = account_discriminator("BinArrayBitmapExtension")

# StaticParameters (32 bytes): base_factor u16, filter_period u16, decay_period u16,
# reduction_factor u16, variable_fee_control u32, max_volatility_accumulator u32,
# min_bin_id i32, max_bin_id i32, protocol_share u16, base_fee_power_factor u8,
# function_type u8, collect_fee_mode u8, _padding [u8; 3]
_STATIC = struct.Struct("<HHHHIIiiHBBB3x")
# VariableParameters (32 bytes): volatility_accumulator u32, volatility_reference u32,
# index_reference i32, _padding [u8; 4], last_update_timestamp i64, _padding_1 [u8; 8]
_VARIABLE = struct.Struct("<IIi4xq8x")
# RewardInfo (144 bytes): mint, vault, funder, reward_duration u64, reward_duration_end u64,
# reward_rate u128 (two u64 halves), last_update_time u64,
# cumulative_seconds_with_empty_liquidity_reward u64
_REWARD = struct.Struct("<32s32s32sQQQQQQ")
# LbPair after the two parameter blocks: bump_seed [u8;1], bin_step_seed [u8;2],
# pair_type u8, active_id i32, bin_step u16, status u8, require_base_factor_seed u8,
# base_factor_seed [u8;2], activation_type u8, creator_pool_on_off_control u8,
# token_x_mint, token_y_mint, reserve_x, reserve_y, protocol_fee {amount_x u64, amount_y u64},
# _padding_1 [u8;32], reward_infos [RewardInfo;2] (read apart), oracle,
# bin_array_bitmap [u64;16], last_updated_at i64, _padding_2 [u8;32],
# pre_activation_swap_address, base_key, activation_point u64, pre_activation_duration u64,
# _padding_3 [u8;8], _padding_4 u64, creator, token_mint_x_program_flag u8,
# token_mint_y_program_flag u8, version u8, _reserved [u8;21]
_PAIR_HEAD = struct.Struct("<1s2sBiHBB2sBB32s32s32s32sQQ32x")
_PAIR_TAIL = struct.Struct("<32s16Qq32x32s32sQQ8x8x32sBBB21x")
LB_PAIR_SIZE = 8 + 2 * 32 + _PAIR_HEAD.size + 2 * _REWARD.size + _PAIR_TAIL.size
# Bin (144 bytes): amount_x u64, amount_y u64, price u128, liquidity_supply u128,
# fulfilled_order_amount_x u64, fulfilled_order_amount_y u64, limit_order_fee_ask_side u64,
# limit_order_fee_bid_side u64, fee_amount_x_per_token_stored u128,
# fee_amount_y_per_token_stored u128, open_order_amount u64,
# total_processing_order_amount u64, processed_order_remaining_amount u64, order_age u32,
# limit_order_ask_side u8, _padding_1 [u8; 3]
_BIN = struct.Struct("<QQ16s16sQQQQ16s16sQQQIB3x")
# BinArray: index i64, version u8, _padding_1 [u8; 7], lb_pair, bins [Bin; 70]
_BIN_ARRAY_HEAD = struct.Struct("<qB7x32s")
BIN_ARRAY_SIZE = 8 + _BIN_ARRAY_HEAD.size + BINS_PER_ARRAY * _BIN.size
BITMAP_EXTENSION_SIZE = 8 + 32 + 2 * EXTENSION_BITMAP_ROWS * 8 * 8

# Offsets of the fields the pool scan filters on (getProgramAccounts memcmp).
TOKEN_X_MINT_OFFSET = 8 + 2 * 32 + 16
TOKEN_Y_MINT_OFFSET = TOKEN_X_MINT_OFFSET + 32


def _u128(raw: bytes) -> int:
    return int.from_bytes(raw, "little")


def _check(data: bytes, size: int, discriminator: bytes, name: str) -> None:
    if len(data) != size:
        raise DecodeError(f"{name}: {len(data)} bytes, the layout has {size}")
    if data[:8] != discriminator:
        raise DecodeError(f"{name}: discriminator {data[:8].hex()} is not {discriminator.hex()}")


@dataclass(frozen=True, slots=True)
class StaticParameters:
    base_factor: int
    filter_period: int
    decay_period: int
    reduction_factor: int
    variable_fee_control: int
    max_volatility_accumulator: int
    min_bin_id: int
    max_bin_id: int
    protocol_share: int
    base_fee_power_factor: int
    function_type: int
    collect_fee_mode: int


@dataclass(frozen=True, slots=True)
class VariableParameters:
    volatility_accumulator: int
    volatility_reference: int
    index_reference: int
    last_update_timestamp: int


@dataclass(frozen=True, slots=True)
class RewardInfo:
    mint: Pubkey
    vault: Pubkey
    funder: Pubkey
    reward_duration: int
    reward_duration_end: int
    reward_rate: int
    last_update_time: int
    cumulative_seconds_with_empty_liquidity_reward: int


@dataclass(frozen=True, slots=True)
class LbPair:
    """A decoded ``LbPair``; ``bin_array_bitmap`` is the 16 u64 words as one 1024-bit int
    (bit ``i + 512`` set = bin array ``i`` initialised)."""

    parameters: StaticParameters
    v_parameters: VariableParameters
    bump_seed: int
    bin_step_seed: int
    pair_type: int
    active_id: int
    bin_step: int
    status: int
    require_base_factor_seed: int
    base_factor_seed: int
    activation_type: int
    creator_pool_on_off_control: int
    token_x_mint: Pubkey
    token_y_mint: Pubkey
    reserve_x: Pubkey
    reserve_y: Pubkey
    protocol_fee_x: int
    protocol_fee_y: int
    reward_infos: tuple[RewardInfo, RewardInfo]
    oracle: Pubkey
    bin_array_bitmap: int
    last_updated_at: int
    pre_activation_swap_address: Pubkey
    base_key: Pubkey
    activation_point: int
    pre_activation_duration: int
    creator: Pubkey
    token_mint_x_program_flag: int
    token_mint_y_program_flag: int
    version: int


def _reward(raw: bytes) -> RewardInfo:
    mint, vault, funder, duration, end, rate_lo, rate_hi, last, empty = _REWARD.unpack(raw)
    return RewardInfo(Pubkey(mint), Pubkey(vault), Pubkey(funder), duration, end,
                      rate_lo | rate_hi << 64, last, empty)


def decode_lb_pair(data: bytes) -> LbPair:
    """Decode an ``LbPair`` account's data (discriminator included)."""
    _check(data, LB_PAIR_SIZE, LB_PAIR_DISCRIMINATOR, "LbPair")
    static = StaticParameters(*_STATIC.unpack_from(data, 8))
    variable = VariableParameters(*_VARIABLE.unpack_from(data, 40))
    head = _PAIR_HEAD.unpack_from(data, 72)
    rewards_at = 72 + _PAIR_HEAD.size
    rewards = (_reward(data[rewards_at:rewards_at + _REWARD.size]),
               _reward(data[rewards_at + _REWARD.size:rewards_at + 2 * _REWARD.size]))
    tail = _PAIR_TAIL.unpack_from(data, rewards_at + 2 * _REWARD.size)
    words = tail[1:17]
    return LbPair(
        parameters=static, v_parameters=variable,
        bump_seed=head[0][0], bin_step_seed=int.from_bytes(head[1], "little"),
        pair_type=head[2], active_id=head[3], bin_step=head[4], status=head[5],
        require_base_factor_seed=head[6], base_factor_seed=int.from_bytes(head[7], "little"),
        activation_type=head[8], creator_pool_on_off_control=head[9],
        token_x_mint=Pubkey(head[10]), token_y_mint=Pubkey(head[11]),
        reserve_x=Pubkey(head[12]), reserve_y=Pubkey(head[13]),
        protocol_fee_x=head[14], protocol_fee_y=head[15],
        reward_infos=rewards, oracle=Pubkey(tail[0]),
        bin_array_bitmap=sum(w << (64 * i) for i, w in enumerate(words)),
        last_updated_at=tail[17], pre_activation_swap_address=Pubkey(tail[18]),
        base_key=Pubkey(tail[19]), activation_point=tail[20], pre_activation_duration=tail[21],
        creator=Pubkey(tail[22]), token_mint_x_program_flag=tail[23],
        token_mint_y_program_flag=tail[24], version=tail[25],
    )


@dataclass(frozen=True, slots=True)
class Bin:
    amount_x: int
    amount_y: int
    price: int
    liquidity_supply: int
    fulfilled_order_amount_x: int
    fulfilled_order_amount_y: int
    limit_order_fee_ask_side: int
    limit_order_fee_bid_side: int
    fee_amount_x_per_token_stored: int
    fee_amount_y_per_token_stored: int
    open_order_amount: int
    total_processing_order_amount: int
    processed_order_remaining_amount: int
    order_age: int
    limit_order_ask_side: int

    def limit_order_amounts(self, swap_for_y: bool) -> tuple[int, int]:
        """``get_limit_order_amounts_by_direction``: (open, processed remaining) of the orders
        this direction fills (X->Y fills bids, Y->X fills asks), else (0, 0)."""
        ask = self.limit_order_ask_side != 0
        if swap_for_y != ask:
            return self.open_order_amount, self.processed_order_remaining_amount
        return 0, 0


def _bin(data: bytes, offset: int) -> Bin:
    f = _BIN.unpack_from(data, offset)
    return Bin(f[0], f[1], _u128(f[2]), _u128(f[3]), f[4], f[5], f[6], f[7], _u128(f[8]),
               _u128(f[9]), f[10], f[11], f[12], f[13], f[14])


@dataclass(frozen=True, slots=True)
class BinArray:
    """Bins ``index*70 .. index*70+69`` of one pair."""

    index: int
    version: int
    lb_pair: Pubkey
    bins: tuple[Bin, ...]

    @property
    def lower_bin_id(self) -> int:
        return self.index * BINS_PER_ARRAY

    def bin(self, bin_id: int) -> Bin:
        slot = bin_id - self.lower_bin_id
        if not 0 <= slot < BINS_PER_ARRAY:
            raise KeyError(f"bin {bin_id} is not in bin array {self.index}")
        return self.bins[slot]


def decode_bin_array(data: bytes) -> BinArray:
    """Decode a ``BinArray`` account's data (discriminator included)."""
    _check(data, BIN_ARRAY_SIZE, BIN_ARRAY_DISCRIMINATOR, "BinArray")
    index, version, pair = _BIN_ARRAY_HEAD.unpack_from(data, 8)
    first = 8 + _BIN_ARRAY_HEAD.size
    bins = tuple(_bin(data, first + i * _BIN.size) for i in range(BINS_PER_ARRAY))
    return BinArray(index, version, Pubkey(pair), bins)


@dataclass(frozen=True, slots=True)
class BitmapExtension:
    """``BinArrayBitmapExtension``: rows of 512 bits for arrays beyond the pair's own bitmap.

    ``positive[r]`` bit ``b`` = array ``(r+1)*512 + b``; ``negative[r]`` bit ``b`` = array
    ``-((r+1)*512 + b) - 1``, as the program's ``to_bin_array_index``."""

    lb_pair: Pubkey
    positive: tuple[int, ...]
    negative: tuple[int, ...]


def decode_bitmap_extension(data: bytes) -> BitmapExtension:
    _check(data, BITMAP_EXTENSION_SIZE, BITMAP_EXTENSION_DISCRIMINATOR, "BinArrayBitmapExtension")
    words = struct.unpack_from(f"<{2 * EXTENSION_BITMAP_ROWS * 8}Q", data, 40)

    def rows(start: int) -> tuple[int, ...]:
        return tuple(
            sum(w << (64 * i) for i, w in enumerate(words[start + 8 * r:start + 8 * r + 8]))
            for r in range(EXTENSION_BITMAP_ROWS)
        )

    return BitmapExtension(Pubkey(data[8:40]), rows(0), rows(8 * EXTENSION_BITMAP_ROWS))
