"""Creating a Meteora DLMM pair and seeding it, with the program's own instructions; the
``PresetParameter`` account bytes a local cluster needs in place of the admin-created one.

A pair is created from an existing preset parameter account (only the program's
operators create them; every cluster has some): ``initialize_lb_pair(active_id,
bin_step)`` for a ``PresetParameter`` (pair PDA ``[min mint, max mint, bin_step,
base_factor]``) or ``initialize_lb_pair2({active_id, padding})`` for a
``PresetParameter2`` (pair PDA ``[preset, min mint, max mint]``). Liquidity goes into a
position (``initialize_position``, at most 70 bins) by ``add_liquidity`` with an explicit
distribution over the position's bins, whose bin arrays must exist first
(``initialize_bin_array``, anyone may pay for one).

Instructions and layouts: ``idls/dlmm.json`` (0.12.0) of ``MeteoraAg/dlmm-sdk``; PDAs:
its ``commons/src/pda.rs``. Pure: the pair layout, bin array/oracle/event-authority PDAs
and token program ids come from :mod:`pipeline.venues.meteora_dlmm`.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

from pipeline.venues.meteora_dlmm import (
    BINS_PER_ARRAY,
    PROGRAM_ID,
    TOKEN_PROGRAM_ID,
    account_discriminator,
    bin_array_index,
    bin_array_pda,
    event_authority_pda,
    instruction_discriminator,
    oracle_pda,
)

SYSTEM_PROGRAM = Pubkey.from_string("11111111111111111111111111111111")
RENT_SYSVAR = Pubkey.from_string("SysvarRent111111111111111111111111111111111")
MAX_POSITION_WIDTH = 70  # DEFAULT_BIN_PER_POSITION: initialize_position's largest width
BASIS_POINT_MAX = 10_000

PRESET_PARAMETER_DISCRIMINATOR = account_discriminator("PresetParameter")
PRESET_PARAMETER2_DISCRIMINATOR = account_discriminator("PresetParameter2")
INITIALIZE_LB_PAIR_DISCRIMINATOR = instruction_discriminator("initialize_lb_pair")
INITIALIZE_LB_PAIR2_DISCRIMINATOR = instruction_discriminator("initialize_lb_pair2")
INITIALIZE_BIN_ARRAY_DISCRIMINATOR = instruction_discriminator("initialize_bin_array")
INITIALIZE_POSITION_DISCRIMINATOR = instruction_discriminator("initialize_position")
ADD_LIQUIDITY_DISCRIMINATOR = instruction_discriminator("add_liquidity")

# PresetParameter (Borsh, 36 bytes with its discriminator): bin_step u16, base_factor u16,
# filter_period u16, decay_period u16, reduction_factor u16, variable_fee_control u32,
# max_volatility_accumulator u32, min_bin_id i32, max_bin_id i32, protocol_share u16
_PRESET = struct.Struct("<8sHHHHHIIiiH")
# PresetParameter2 (bytemuck repr(C), 192 bytes): bin_step u16, base_factor u16,
# filter_period u16, decay_period u16, variable_fee_control u32,
# max_volatility_accumulator u32, reduction_factor u16, protocol_share u16, index u16,
# base_fee_power_factor u8, concrete_function_type u8, collect_fee_mode u8,
# padding_0 [u8; 7], padding_1 [u64; 19]
_PRESET2 = struct.Struct("<8sHHHHIIHHHBBB7x152x")
PRESET_PARAMETER_SIZE = _PRESET.size
PRESET_PARAMETER2_SIZE = _PRESET2.size


class PresetError(ValueError):
    """The bytes are not a preset parameter account."""


@dataclass(frozen=True, slots=True)
class PresetParameter:
    """Either preset version; ``version`` 1 creates pairs with ``initialize_lb_pair``,
    2 with ``initialize_lb_pair2`` (fields absent from a version are 0)."""

    version: int
    bin_step: int
    base_factor: int
    filter_period: int
    decay_period: int
    reduction_factor: int
    variable_fee_control: int
    max_volatility_accumulator: int
    protocol_share: int
    min_bin_id: int = 0  # v1 only
    max_bin_id: int = 0  # v1 only
    index: int = 0  # v2 only
    base_fee_power_factor: int = 0  # v2 only
    function_type: int = 0  # v2 only
    collect_fee_mode: int = 0  # v2 only


def encode_preset_parameter(p: PresetParameter) -> bytes:
    """The account data the operator's ``initialize_preset_parameter`` would write."""
    if p.version == 1:
        return _PRESET.pack(PRESET_PARAMETER_DISCRIMINATOR, p.bin_step, p.base_factor,
                            p.filter_period, p.decay_period, p.reduction_factor,
                            p.variable_fee_control, p.max_volatility_accumulator,
                            p.min_bin_id, p.max_bin_id, p.protocol_share)
    return _PRESET2.pack(PRESET_PARAMETER2_DISCRIMINATOR, p.bin_step, p.base_factor,
                         p.filter_period, p.decay_period, p.variable_fee_control,
                         p.max_volatility_accumulator, p.reduction_factor, p.protocol_share,
                         p.index, p.base_fee_power_factor, p.function_type,
                         p.collect_fee_mode)


def decode_preset_parameter(data: bytes) -> PresetParameter:
    """Either version, told apart by its discriminator."""
    head = data[:8]
    if head == PRESET_PARAMETER_DISCRIMINATOR and len(data) >= _PRESET.size:
        (_, step, base, filt, decay, red, vfc, maxv, lo, hi, share) = _PRESET.unpack_from(data)
        return PresetParameter(1, step, base, filt, decay, red, vfc, maxv, share, lo, hi)
    if head == PRESET_PARAMETER2_DISCRIMINATOR and len(data) >= _PRESET2.size:
        (_, step, base, filt, decay, vfc, maxv, red, share, index, power, function,
         mode) = _PRESET2.unpack_from(data)
        return PresetParameter(2, step, base, filt, decay, red, vfc, maxv, share, index=index,
                               base_fee_power_factor=power, function_type=function,
                               collect_fee_mode=mode)
    raise PresetError(f"{len(data)} bytes starting {head.hex()} are not a preset parameter")


def preset_parameter_address(bin_step: int, base_factor: int,
                             program_id: Pubkey = PROGRAM_ID) -> Pubkey:
    """``["preset_parameter", bin_step u16 le, base_factor u16 le]`` (version 1)."""
    seeds = [b"preset_parameter", bin_step.to_bytes(2, "little"),
             base_factor.to_bytes(2, "little")]
    return Pubkey.find_program_address(seeds, program_id)[0]


def preset_parameter2_address(index: int, program_id: Pubkey = PROGRAM_ID) -> Pubkey:
    """``["preset_parameter2", index u16 le]`` (version 2)."""
    return Pubkey.find_program_address([b"preset_parameter2", index.to_bytes(2, "little")],
                                       program_id)[0]


def _ordered(mint_a: Pubkey, mint_b: Pubkey) -> tuple[bytes, bytes]:
    a, b = bytes(mint_a), bytes(mint_b)
    return (a, b) if a < b else (b, a)


def lb_pair_address(preset: PresetParameter, preset_key: Pubkey, mint_x: Pubkey,
                    mint_y: Pubkey, program_id: Pubkey = PROGRAM_ID) -> Pubkey:
    """The pair the preset creates for two mints (either order gives the same pair)."""
    low, high = _ordered(mint_x, mint_y)
    if preset.version == 1:
        seeds = [low, high, preset.bin_step.to_bytes(2, "little"),
                 preset.base_factor.to_bytes(2, "little")]
    else:
        seeds = [bytes(preset_key), low, high]
    return Pubkey.find_program_address(seeds, program_id)[0]


def reserve_address(lb_pair: Pubkey, mint: Pubkey, program_id: Pubkey = PROGRAM_ID) -> Pubkey:
    """``[lb_pair, mint]``: the pair's vault of that mint."""
    return Pubkey.find_program_address([bytes(lb_pair), bytes(mint)], program_id)[0]


def _ro(key: Pubkey) -> AccountMeta:
    return AccountMeta(key, is_signer=False, is_writable=False)


def _rw(key: Pubkey) -> AccountMeta:
    return AccountMeta(key, is_signer=False, is_writable=True)


def _signer(key: Pubkey, writable: bool) -> AccountMeta:
    return AccountMeta(key, is_signer=True, is_writable=writable)


def initialize_lb_pair_instruction(preset: PresetParameter, preset_key: Pubkey,
                                   mint_x: Pubkey, mint_y: Pubkey, active_id: int,
                                   funder: Pubkey, program_id: Pubkey = PROGRAM_ID,
                                   token_program: Pubkey = TOKEN_PROGRAM_ID) -> Instruction:
    """``initialize_lb_pair`` (version 1 preset) or ``initialize_lb_pair2`` (version 2),
    accounts in the IDL's order; absent optional accounts are the program id."""
    pair = lb_pair_address(preset, preset_key, mint_x, mint_y, program_id)
    head = [_rw(pair), _ro(program_id), _ro(mint_x), _ro(mint_y),
            _rw(reserve_address(pair, mint_x, program_id)),
            _rw(reserve_address(pair, mint_y, program_id)),
            _rw(oracle_pda(pair, program_id)), _ro(preset_key), _signer(funder, True)]
    tail = [_ro(event_authority_pda(program_id)), _ro(program_id)]
    if preset.version == 1:
        data = INITIALIZE_LB_PAIR_DISCRIMINATOR + struct.pack("<iH", active_id, preset.bin_step)
        middle = [_ro(token_program), _ro(SYSTEM_PROGRAM), _ro(RENT_SYSVAR)]
    else:
        data = INITIALIZE_LB_PAIR2_DISCRIMINATOR + struct.pack("<i", active_id) + bytes(96)
        middle = [_ro(program_id), _ro(program_id), _ro(token_program), _ro(token_program),
                  _ro(SYSTEM_PROGRAM)]
    return Instruction(program_id, data, head + middle + tail)


def initialize_bin_array_instruction(lb_pair: Pubkey, index: int, funder: Pubkey,
                                     program_id: Pubkey = PROGRAM_ID) -> Instruction:
    data = INITIALIZE_BIN_ARRAY_DISCRIMINATOR + struct.pack("<q", index)
    return Instruction(program_id, data, [
        _ro(lb_pair), _rw(bin_array_pda(lb_pair, index, program_id)), _signer(funder, True),
        _ro(SYSTEM_PROGRAM)])


def initialize_position_instruction(lb_pair: Pubkey, position: Pubkey, owner: Pubkey,
                                    lower_bin_id: int, width: int,
                                    program_id: Pubkey = PROGRAM_ID) -> Instruction:
    """A position of ``width`` bins from ``lower_bin_id``; ``position`` is a new keypair's
    address (it signs), ``owner`` pays and owns it."""
    if not 1 <= width <= MAX_POSITION_WIDTH:
        raise ValueError(f"width {width} is outside 1..{MAX_POSITION_WIDTH}")
    data = INITIALIZE_POSITION_DISCRIMINATOR + struct.pack("<ii", lower_bin_id, width)
    return Instruction(program_id, data, [
        _signer(owner, True), _signer(position, True), _ro(lb_pair), _signer(owner, False),
        _ro(SYSTEM_PROGRAM), _ro(RENT_SYSVAR), _ro(event_authority_pda(program_id)),
        _ro(program_id)])


@dataclass(frozen=True, slots=True)
class BinShare:
    """``BinLiquidityDistribution``: bps of ``amount_x`` / ``amount_y`` for one bin."""

    bin_id: int
    distribution_x: int
    distribution_y: int


def position_bin_arrays(lower_bin_id: int, width: int) -> tuple[int, int]:
    """(lower, upper) bin arrays ``add_liquidity`` takes for a position: the array of its
    lowest bin and the next one (a width of at most 70 spans at most two). Two distinct
    accounts even when the bins fit in one: the program borrows both mutably, so the same
    array twice fails (``AccountBorrowFailed``); the SDK passes ``max(lower + 1, upper)``."""
    lower = bin_array_index(lower_bin_id)
    return lower, max(lower + 1, bin_array_index(lower_bin_id + width - 1))


def add_liquidity_instruction(lb_pair: Pubkey, position: Pubkey, sender: Pubkey,
                              mint_x: Pubkey, mint_y: Pubkey, user_token_x: Pubkey,
                              user_token_y: Pubkey, amount_x: int, amount_y: int,
                              shares: Sequence[BinShare], lower_bin_id: int, width: int,
                              program_id: Pubkey = PROGRAM_ID) -> Instruction:
    """``add_liquidity(LiquidityParameter {amount_x, amount_y, bin_liquidity_dist})`` into a
    position spanning bins ``lower_bin_id .. lower_bin_id + width - 1``."""
    for side in ("x", "y"):
        total = sum(getattr(s, f"distribution_{side}") for s in shares)
        if total > BASIS_POINT_MAX:
            raise ValueError(f"distribution_{side} adds up to {total} bps, over 10000")
    if not 1 <= width <= BINS_PER_ARRAY:
        raise ValueError(f"width {width} is outside 1..{BINS_PER_ARRAY}")
    lower, upper = position_bin_arrays(lower_bin_id, width)
    data = ADD_LIQUIDITY_DISCRIMINATOR + struct.pack("<QQI", amount_x, amount_y, len(shares))
    data += b"".join(struct.pack("<iHH", s.bin_id, s.distribution_x, s.distribution_y)
                     for s in shares)
    return Instruction(program_id, data, [
        _rw(position), _rw(lb_pair), _ro(program_id), _rw(user_token_x), _rw(user_token_y),
        _rw(reserve_address(lb_pair, mint_x, program_id)),
        _rw(reserve_address(lb_pair, mint_y, program_id)), _ro(mint_x), _ro(mint_y),
        _rw(bin_array_pda(lb_pair, lower, program_id)),
        _rw(bin_array_pda(lb_pair, upper, program_id)), _signer(sender, False),
        _ro(TOKEN_PROGRAM_ID), _ro(TOKEN_PROGRAM_ID), _ro(event_authority_pda(program_id)),
        _ro(program_id)])


def uniform_shares(bin_ids: Sequence[int], active_id: int) -> list[BinShare]:
    """Equal bps of X to each bin above the active one and of Y to each bin below it; the
    active bin gets nothing (no composition fee, no ratio to match). Each side's bps add
    up to at most 10000 (what the floor division leaves stays with the sender)."""
    above = [b for b in bin_ids if b > active_id]
    below = [b for b in bin_ids if b < active_id]
    x_bps = BASIS_POINT_MAX // len(above) if above else 0
    y_bps = BASIS_POINT_MAX // len(below) if below else 0
    return [BinShare(b, x_bps if b > active_id else 0, y_bps if b < active_id else 0)
            for b in bin_ids if b != active_id]
