"""Meteora DLMM pair creation (pipeline/venues/meteora_dlmm_admin.py) against the IDL.

Vendored from ``MeteoraAg/dlmm-sdk`` ``idls/dlmm.json`` (``lb_clmm`` 0.12.0): the
discriminators and each instruction's accounts (name, writable, signer) and arguments.
Real accounts from the same repository's ``artifacts/``: two ``PresetParameter`` captures
(36 bytes, owned by the SDK's local program id ``LbVRzDT…``, at the PDAs of their bin step
and base factor) and the reserve of the SOL pair ``FJbEo74…``.
"""

from __future__ import annotations

import base64
import struct

import pytest
from solders.pubkey import Pubkey

from pipeline.venues import meteora_dlmm as m
from pipeline.venues import meteora_dlmm_admin as admin

PROGRAM = Pubkey.from_string("LBUZKhRxPF3XUpBCjp4YzTKgLccjZhTSDM9YuVaPwxo")
SDK_LOCAL_PROGRAM = Pubkey.from_string("LbVRzDTvBDEcrthxfZ4RL6yiq3uZw8bS6MwtdY6UhFQ")
TOKENKEG = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
SYSTEM = Pubkey.from_string("11111111111111111111111111111111")
RENT = Pubkey.from_string("SysvarRent111111111111111111111111111111111")
SOL = Pubkey.from_string("So11111111111111111111111111111111111111112")

IDL_DISC = {
    "initialize_lb_pair": bytes([45, 154, 237, 210, 221, 15, 166, 92]),
    "initialize_lb_pair2": bytes([73, 59, 36, 120, 237, 83, 108, 198]),
    "initialize_position": bytes([219, 192, 234, 71, 190, 191, 102, 80]),
    "initialize_bin_array": bytes([35, 86, 19, 185, 78, 212, 75, 211]),
    "add_liquidity": bytes([181, 157, 89, 67, 143, 182, 52, 72]),
    "PresetParameter": bytes([242, 62, 244, 34, 181, 112, 58, 170]),
    "PresetParameter2": bytes([171, 236, 148, 115, 162, 113, 222, 174]),
}
# (name, writable, signer) in IDL order
IDL_ACCOUNTS = {
    "initialize_lb_pair": [
        ("lb_pair", True, False), ("bin_array_bitmap_extension", False, False),
        ("token_mint_x", False, False), ("token_mint_y", False, False),
        ("reserve_x", True, False), ("reserve_y", True, False), ("oracle", True, False),
        ("preset_parameter", False, False), ("funder", True, True),
        ("token_program", False, False), ("system_program", False, False),
        ("rent", False, False), ("event_authority", False, False), ("program", False, False)],
    "initialize_lb_pair2": [
        ("lb_pair", True, False), ("bin_array_bitmap_extension", False, False),
        ("token_mint_x", False, False), ("token_mint_y", False, False),
        ("reserve_x", True, False), ("reserve_y", True, False), ("oracle", True, False),
        ("preset_parameter", False, False), ("funder", True, True),
        ("token_badge_x", False, False), ("token_badge_y", False, False),
        ("token_program_x", False, False), ("token_program_y", False, False),
        ("system_program", False, False), ("event_authority", False, False),
        ("program", False, False)],
    "initialize_bin_array": [("lb_pair", False, False), ("bin_array", True, False),
                             ("funder", True, True), ("system_program", False, False)],
    "initialize_position": [
        ("payer", True, True), ("position", True, True), ("lb_pair", False, False),
        ("owner", False, True), ("system_program", False, False), ("rent", False, False),
        ("event_authority", False, False), ("program", False, False)],
    "add_liquidity": [
        ("position", True, False), ("lb_pair", True, False),
        ("bin_array_bitmap_extension", False, False), ("user_token_x", True, False),
        ("user_token_y", True, False), ("reserve_x", True, False), ("reserve_y", True, False),
        ("token_x_mint", False, False), ("token_y_mint", False, False),
        ("bin_array_lower", True, False), ("bin_array_upper", True, False),
        ("sender", False, True), ("token_x_program", False, False),
        ("token_y_program", False, False), ("event_authority", False, False),
        ("program", False, False)],
}
# artifacts/AUkDuR2….json and JB65k1….json: PresetParameter accounts
PRESET_CAPTURES = {
    "AUkDuR2mFr68MkknY4xE8nv1ALZGJpgJy6pHUye4rCWA":
        "8j70IrVwOqoKAKAPHgBYAogTQJwAADBXBQBWVf//qqoAAPQB",
    "JB65k1MPAyhqy4Y4sGH2JJnk2wua2pMA5bddznJnmFdE":
        "8j70IrVwOqoKABAnHgBYAogTQJwAADBXBQBWVf//qqoAAPQB",
}
V1 = admin.PresetParameter(1, 10, 10_000, 30, 600, 5_000, 40_000, 350_000, 500,
                           min_bin_id=-43_690, max_bin_id=43_690)


def key(n: int) -> Pubkey:
    return Pubkey(bytes([n]) * 32)


def pda(*seeds: bytes, program: Pubkey = PROGRAM) -> Pubkey:
    return Pubkey.find_program_address(list(seeds), program)[0]


def flags(ix: object, name: str) -> None:
    accounts = ix.accounts  # type: ignore[attr-defined]
    assert [(a.is_writable, a.is_signer) for a in accounts] == \
        [(w, s) for _, w, s in IDL_ACCOUNTS[name]]


def test_discriminators_are_the_idls() -> None:
    assert admin.INITIALIZE_LB_PAIR_DISCRIMINATOR == IDL_DISC["initialize_lb_pair"]
    assert admin.INITIALIZE_LB_PAIR2_DISCRIMINATOR == IDL_DISC["initialize_lb_pair2"]
    assert admin.INITIALIZE_POSITION_DISCRIMINATOR == IDL_DISC["initialize_position"]
    assert admin.INITIALIZE_BIN_ARRAY_DISCRIMINATOR == IDL_DISC["initialize_bin_array"]
    assert admin.ADD_LIQUIDITY_DISCRIMINATOR == IDL_DISC["add_liquidity"]
    assert admin.PRESET_PARAMETER_DISCRIMINATOR == IDL_DISC["PresetParameter"]
    assert admin.PRESET_PARAMETER2_DISCRIMINATOR == IDL_DISC["PresetParameter2"]


@pytest.mark.parametrize("address", sorted(PRESET_CAPTURES))
def test_real_preset_captures_decode_reencode_and_sit_at_their_pda(address: str) -> None:
    data = base64.b64decode(PRESET_CAPTURES[address])
    preset = admin.decode_preset_parameter(data)
    assert len(data) == admin.PRESET_PARAMETER_SIZE == 36
    assert (preset.version, preset.bin_step, preset.filter_period, preset.decay_period,
            preset.reduction_factor, preset.variable_fee_control,
            preset.max_volatility_accumulator, preset.min_bin_id, preset.max_bin_id,
            preset.protocol_share) == (1, 10, 30, 600, 5_000, 40_000, 350_000, -43_690,
                                       43_690, 500)
    assert preset.base_factor in (4_000, 10_000)
    assert admin.encode_preset_parameter(preset) == data
    assert str(admin.preset_parameter_address(preset.bin_step, preset.base_factor,
                                              SDK_LOCAL_PROGRAM)) == address


def test_preset2_layout_is_the_idls_bytemuck_struct() -> None:
    v2 = admin.PresetParameter(2, 80, 6_250, 30, 600, 5_000, 7_500, 100_000, 1_000,
                               index=7, base_fee_power_factor=1, function_type=0,
                               collect_fee_mode=1)
    data = admin.encode_preset_parameter(v2)
    expected = (IDL_DISC["PresetParameter2"] + struct.pack("<HHHH", 80, 6_250, 30, 600)
                + struct.pack("<II", 7_500, 100_000) + struct.pack("<HHH", 5_000, 1_000, 7)
                + bytes([1, 0, 1]) + bytes(7) + bytes(19 * 8))
    assert data == expected and len(data) == admin.PRESET_PARAMETER2_SIZE == 192
    assert admin.decode_preset_parameter(data) == v2
    assert admin.preset_parameter2_address(7) == pda(b"preset_parameter2", b"\x07\x00")
    with pytest.raises(admin.PresetError):
        admin.decode_preset_parameter(bytes(36))


def test_reserve_pda_is_the_real_pairs_reserve() -> None:
    pair = Pubkey.from_string("FJbEo74c2W4QLBBVUfUvi8VBWXtMdJVPuFpq2f6UV1iB")
    mint_x = Pubkey.from_string("FQuMNJ6UcrkA3xMLsmmLL8sk47RkZYod57mX3a8w1brg")
    assert str(admin.reserve_address(pair, mint_x, PROGRAM)) == \
        "7wREtTX5xKWF4N4LPA1vDtjk5ZpYhKySaekiAwPmHAPD"


def test_initialize_lb_pair_v1() -> None:
    preset_key, x, y, funder = key(1), key(9), key(3), key(4)
    ix = admin.initialize_lb_pair_instruction(V1, preset_key, x, y, -1899, funder)
    pair = pda(bytes(y), bytes(x), struct.pack("<H", 10), struct.pack("<H", 10_000))
    assert ix.data == IDL_DISC["initialize_lb_pair"] + struct.pack("<iH", -1899, 10)
    flags(ix, "initialize_lb_pair")
    assert [a.pubkey for a in ix.accounts] == [
        pair, PROGRAM, x, y, pda(bytes(pair), bytes(x)), pda(bytes(pair), bytes(y)),
        pda(b"oracle", bytes(pair)), preset_key, funder, TOKENKEG, SYSTEM, RENT,
        pda(b"__event_authority"), PROGRAM]
    # mint order does not change the pair
    assert admin.lb_pair_address(V1, preset_key, y, x) == pair


def test_initialize_lb_pair2() -> None:
    v2 = admin.PresetParameter(2, 10, 10_000, 30, 600, 5_000, 40_000, 350_000, 500, index=3)
    preset_key, x, y, funder = key(1), key(3), key(9), key(4)
    ix = admin.initialize_lb_pair_instruction(v2, preset_key, x, y, 5, funder)
    pair = pda(bytes(preset_key), bytes(x), bytes(y))
    assert ix.data == IDL_DISC["initialize_lb_pair2"] + struct.pack("<i", 5) + bytes(96)
    flags(ix, "initialize_lb_pair2")
    assert [a.pubkey for a in ix.accounts][:9] == [
        pair, PROGRAM, x, y, pda(bytes(pair), bytes(x)), pda(bytes(pair), bytes(y)),
        pda(b"oracle", bytes(pair)), preset_key, funder]
    assert [a.pubkey for a in ix.accounts][9:] == [PROGRAM, PROGRAM, TOKENKEG, TOKENKEG,
                                                   SYSTEM, pda(b"__event_authority"), PROGRAM]


def test_initialize_bin_array_and_position() -> None:
    pair, funder, position = key(1), key(2), key(5)
    ix = admin.initialize_bin_array_instruction(pair, -28, funder)
    assert ix.data == IDL_DISC["initialize_bin_array"] + struct.pack("<q", -28)
    flags(ix, "initialize_bin_array")
    assert ix.accounts[1].pubkey == pda(b"bin_array", bytes(pair), struct.pack("<q", -28))
    pos = admin.initialize_position_instruction(pair, position, funder, -1949, 50)
    assert pos.data == IDL_DISC["initialize_position"] + struct.pack("<ii", -1949, 50)
    flags(pos, "initialize_position")
    assert [a.pubkey for a in pos.accounts] == [funder, position, pair, funder, SYSTEM, RENT,
                                                pda(b"__event_authority"), PROGRAM]
    with pytest.raises(ValueError):
        admin.initialize_position_instruction(pair, position, funder, 0, 71)


def test_add_liquidity_bytes_and_two_distinct_bin_arrays() -> None:
    pair, position, sender, x, y, ux, uy = (key(i) for i in range(1, 8))
    shares = admin.uniform_shares(list(range(-1949, -1899)), -1899)
    assert {(s.distribution_x, s.distribution_y) for s in shares} == {(0, 200)}
    ix = admin.add_liquidity_instruction(pair, position, sender, x, y, ux, uy, 0, 75 * 10**9,
                                         shares, -1949, 50)
    dist = b"".join(struct.pack("<iHH", b, 0, 200) for b in range(-1949, -1899))
    assert ix.data == IDL_DISC["add_liquidity"] + struct.pack("<QQI", 0, 75 * 10**9, 50) + dist
    flags(ix, "add_liquidity")
    keys = [a.pubkey for a in ix.accounts]
    # bins -1949..-1900 all lie in array -28; the program needs two distinct arrays, so the
    # upper one is the next (-27), as the SDK passes it (the same one twice fails to borrow)
    assert keys[9] == pda(b"bin_array", bytes(pair), struct.pack("<q", -28))
    assert keys[10] == pda(b"bin_array", bytes(pair), struct.pack("<q", -27))
    assert keys[2] == PROGRAM and keys[12:14] == [TOKENKEG, TOKENKEG]
    assert admin.position_bin_arrays(-1949, 50) == (-28, -27)
    assert admin.position_bin_arrays(-10, 50) == (-1, 0)  # spans two: both used as they are
    assert m.bin_array_index(-1949) == -28


def test_uniform_shares_split_sides_and_skip_the_active_bin() -> None:
    shares = admin.uniform_shares(list(range(-3, 4)), 0)
    assert [(s.bin_id, s.distribution_x, s.distribution_y) for s in shares] == [
        (-3, 0, 3333), (-2, 0, 3333), (-1, 0, 3333), (1, 3333, 0), (2, 3333, 0),
        (3, 3333, 0)]
    with pytest.raises(ValueError, match="10000"):
        admin.add_liquidity_instruction(key(1), key(2), key(3), key(4), key(5), key(6),
                                        key(7), 1, 1, [admin.BinShare(1, 10_001, 0)], 1, 1)
