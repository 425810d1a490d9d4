"""Raydium CP-Swap adapter (pipeline/venues/raydium_cp.py) against the program's interface.

Everything the program defines is restated here independently of the adapter: the
discriminators and the authority PDA as literals (from the program's IDL and its
well-known mainnet authority), account bytes laid out field by field from
``states/pool.rs`` / ``states/config.rs`` with one ``struct.pack`` per field, and quotes
computed by hand (the arithmetic is in the comments).
"""

from __future__ import annotations

import math
import struct
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from solders.pubkey import Pubkey

from dexmath import cpmm
from localnet.market import RAYDIUM_CPMM as MARKET_RAYDIUM_LABEL
from pipeline.errors import (
    InsufficientFunds,
    SlippageExceeded,
    TransactionFailed,
    chain_error,
    failed_instruction,
    program_error,
)
from pipeline.model import Venue
from pipeline.venues import DEX_LABELS
from pipeline.venues import raydium_cp as rcp
from pipeline.venues.base import Cluster

MAINNET = Pubkey.from_string("CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C")
DEVNET = Pubkey.from_string("DRaycpLY18LhpbydsBWbVJtxpNv9oXPgjRSfpF2bWpYb")
# The mainnet program's vault/LP authority, as every Raydium CPMM swap on chain lists it.
MAINNET_AUTHORITY = Pubkey.from_string("GpMZbSM2GgvTKHJirzeGfMFoaZ8UR2X7F4v8vHTvxFbL")
# From the program's IDL (raydium_cp_swap.json): instruction and account discriminators.
SWAP_BASE_INPUT_TAG = bytes([143, 190, 90, 218, 196, 30, 51, 222])
POOL_STATE_TAG = bytes([247, 237, 227, 245, 215, 195, 222, 70])
AMM_CONFIG_TAG = bytes([218, 244, 33, 104, 203, 203, 43, 111])


def key(n: int) -> Pubkey:
    return Pubkey(bytes([n]) * 32)


def u8(v: int) -> bytes:
    return struct.pack("<B", v)


def u16(v: int) -> bytes:
    return struct.pack("<H", v)


def u64(v: int) -> bytes:
    return struct.pack("<Q", v)


POOL_KEYS = {  # distinct bytes per key, so a shifted offset reads the wrong one
    "amm_config": key(1), "pool_creator": key(2), "token_0_vault": key(3),
    "token_1_vault": key(4), "lp_mint": key(5), "token_0_mint": key(6), "token_1_mint": key(7),
    "token_0_program": key(8), "token_1_program": key(9), "observation_key": key(10),
}


def pool_bytes(*, status: int = 0, protocol: tuple[int, int] = (0, 0),
               fund: tuple[int, int] = (0, 0), creator: tuple[int, int] = (0, 0),
               creator_fee_on: int = 0, enable_creator_fee: int = 0,
               open_time: int = 0, tag: bytes = POOL_STATE_TAG) -> bytes:
    """``PoolState`` as the program lays it out (``#[repr(C, packed)]``, little-endian)."""
    parts = [tag, *(bytes(k) for k in POOL_KEYS.values()),
             u8(254), u8(status), u8(9), u8(6), u8(9),  # auth_bump, status, lp/mint decimals
             u64(1_000_000_007),  # lp_supply
             u64(protocol[0]), u64(protocol[1]), u64(fund[0]), u64(fund[1]),
             u64(open_time), u64(812),  # open_time, recent_epoch
             u8(creator_fee_on), u8(enable_creator_fee), bytes(6),  # + padding1
             u64(creator[0]), u64(creator[1]),
             bytes(8 * 28)]  # padding: [u64; 28]
    return b"".join(parts)


def config_bytes(*, trade: int = 2_500, protocol: int = 120_000, fund: int = 40_000,
                 creator: int = 0, tag: bytes = AMM_CONFIG_TAG, disable: int = 0) -> bytes:
    """``AmmConfig`` as Borsh writes it."""
    return b"".join([tag, u8(253), u8(disable), u16(3), u64(trade), u64(protocol), u64(fund),
                     u64(150_000_000), bytes(key(11)), bytes(key(12)), u64(creator),
                     bytes(8 * 15)])


# ---- program ids, discriminators, PDAs ----


def test_program_ids_per_cluster() -> None:
    assert rcp.RAYDIUM_CP_PROGRAM[Cluster.MAINNET] == MAINNET
    assert rcp.RAYDIUM_CP_PROGRAM[Cluster.DEVNET] == DEVNET
    assert rcp.RAYDIUM_CP_PROGRAM[Cluster.LOCALNET] == MAINNET


def test_discriminators_are_the_idls() -> None:
    assert rcp.SWAP_BASE_INPUT_DISCRIMINATOR == SWAP_BASE_INPUT_TAG
    assert rcp.POOL_STATE_DISCRIMINATOR == POOL_STATE_TAG
    assert rcp.AMM_CONFIG_DISCRIMINATOR == AMM_CONFIG_TAG


def test_authority_pda() -> None:
    assert rcp.authority(MAINNET) == MAINNET_AUTHORITY
    derived = Pubkey.find_program_address([b"vault_and_lp_mint_auth_seed"], DEVNET)[0]
    assert rcp.authority(DEVNET) == derived != MAINNET_AUTHORITY


def test_pool_addresses_follow_initialize_seeds() -> None:
    config, m0, m1 = key(1), key(6), key(7)
    got = rcp.pool_addresses(MAINNET, config, m0, m1)
    pool = Pubkey.find_program_address([b"pool", bytes(config), bytes(m0), bytes(m1)], MAINNET)[0]
    assert got.pool == pool
    assert got.vault_0 == Pubkey.find_program_address(
        [b"pool_vault", bytes(pool), bytes(m0)], MAINNET)[0]
    assert got.vault_1 == Pubkey.find_program_address(
        [b"pool_vault", bytes(pool), bytes(m1)], MAINNET)[0]
    assert got.lp_mint == Pubkey.find_program_address([b"pool_lp_mint", bytes(pool)], MAINNET)[0]
    assert got.observation == Pubkey.find_program_address(
        [b"observation", bytes(pool)], MAINNET)[0]
    assert len({got.pool, got.vault_0, got.vault_1, got.lp_mint, got.observation}) == 5


# ---- the swap instruction ----


@pytest.mark.parametrize("zero_for_one", [True, False])
def test_swap_base_input_instruction(zero_for_one: bool) -> None:
    pool = rcp.decode_pool_state(pool_bytes())
    payer, user_in, user_out, pool_id = key(20), key(21), key(22), key(23)
    ix = rcp.swap_base_input_instruction(MAINNET, pool_id, pool, payer, user_in, user_out,
                                         1_500_000_000, 2**64 - 1, zero_for_one)
    assert ix.program_id == MAINNET
    assert ix.data == SWAP_BASE_INPUT_TAG + (1_500_000_000).to_bytes(8, "little") + b"\xff" * 8
    k = POOL_KEYS
    side_in, side_out = ("0", "1") if zero_for_one else ("1", "0")
    expected = [  # (account, signer, writable) in Swap's order
        (payer, True, False),
        (MAINNET_AUTHORITY, False, False),
        (k["amm_config"], False, False),
        (pool_id, False, True),
        (user_in, False, True),
        (user_out, False, True),
        (k[f"token_{side_in}_vault"], False, True),
        (k[f"token_{side_out}_vault"], False, True),
        (k[f"token_{side_in}_program"], False, False),
        (k[f"token_{side_out}_program"], False, False),
        (k[f"token_{side_in}_mint"], False, False),
        (k[f"token_{side_out}_mint"], False, False),
        (k["observation_key"], False, True),
    ]
    assert [(a.pubkey, a.is_signer, a.is_writable) for a in ix.accounts] == expected


def test_instruction_refuses_amounts_beyond_u64() -> None:
    pool = rcp.decode_pool_state(pool_bytes())
    with pytest.raises(ValueError, match="u64"):
        rcp.swap_base_input_instruction(MAINNET, key(23), pool, key(20), key(21), key(22),
                                        2**64, 0, True)
    with pytest.raises(ValueError, match="u64"):
        rcp.swap_base_input_instruction(MAINNET, key(23), pool, key(20), key(21), key(22),
                                        1, -1, True)


# ---- decoders ----


def test_decode_pool_state_reads_every_field() -> None:
    data = pool_bytes(status=4, protocol=(11, 12), fund=(13, 14), creator=(15, 16),
                      creator_fee_on=2, enable_creator_fee=1, open_time=1_700_000_000)
    assert len(data) == 637 == rcp.POOL_STATE_LEN
    p = rcp.decode_pool_state(data)
    assert {name: getattr(p, name) for name in POOL_KEYS} == POOL_KEYS
    assert (p.auth_bump, p.status, p.lp_mint_decimals, p.mint_0_decimals,
            p.mint_1_decimals) == (254, 4, 9, 6, 9)
    assert (p.lp_supply, p.open_time, p.recent_epoch) == (1_000_000_007, 1_700_000_000, 812)
    assert (p.protocol_fees_token_0, p.protocol_fees_token_1) == (11, 12)
    assert (p.fund_fees_token_0, p.fund_fees_token_1) == (13, 14)
    assert (p.creator_fees_token_0, p.creator_fees_token_1) == (15, 16)
    assert p.creator_fee_on is rcp.CreatorFeeOn.ONLY_TOKEN_1 and p.enable_creator_fee is True
    assert p.swap_enabled is False  # status bit 2


def test_pre_creator_fee_pool_decodes_as_creator_fee_off() -> None:
    # Before the creator-fee upgrade the tail after recent_epoch was [u64; 31] of zeros.
    p = rcp.decode_pool_state(pool_bytes())
    assert (p.creator_fee_on, p.enable_creator_fee) == (rcp.CreatorFeeOn.BOTH_TOKEN, False)
    assert (p.creator_fees_token_0, p.creator_fees_token_1, p.swap_enabled) == (0, 0, True)


def test_decode_amm_config_reads_every_field() -> None:
    data = config_bytes(trade=2_500, protocol=120_000, fund=40_000, creator=1_000, disable=1)
    assert len(data) == 236 == rcp.AMM_CONFIG_LEN
    c = rcp.decode_amm_config(data)
    assert c == rcp.AmmConfig(bump=253, disable_create_pool=True, index=3, trade_fee_rate=2_500,
                              protocol_fee_rate=120_000, fund_fee_rate=40_000,
                              create_pool_fee=150_000_000, protocol_owner=key(11),
                              fund_owner=key(12), creator_fee_rate=1_000)


@pytest.mark.parametrize("bad", [
    pool_bytes()[:-1],  # short
    pool_bytes(tag=AMM_CONFIG_TAG),  # another account
    pool_bytes(creator_fee_on=3),  # no such CreatorFeeOn
    pool_bytes(enable_creator_fee=2),  # not a bool
])
def test_decode_pool_state_refuses_other_bytes(bad: bytes) -> None:
    with pytest.raises(rcp.LayoutError):
        rcp.decode_pool_state(bad)


@pytest.mark.parametrize("bad", [config_bytes()[:200], config_bytes(tag=POOL_STATE_TAG),
                                 config_bytes(disable=7)])
def test_decode_amm_config_refuses_other_bytes(bad: bytes) -> None:
    with pytest.raises(rcp.LayoutError):
        rcp.decode_amm_config(bad)


# ---- discovery ----


def _b58decode(text: str) -> bytes:
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    n = 0
    for ch in text:
        n = n * 58 + alphabet.index(ch)
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * (len(text) - len(text.lstrip("1"))) + body


def _matches(filters: list[dict[str, object]], data: bytes) -> bool:
    """What the RPC does with a filter set."""
    for f in filters:
        if "dataSize" in f and len(data) != f["dataSize"]:
            return False
        if "memcmp" in f:
            m = f["memcmp"]
            assert isinstance(m, dict)
            raw = _b58decode(m["bytes"])
            if data[m["offset"]:m["offset"] + len(raw)] != raw:
                return False
    return True


def test_pool_filters_find_the_pool_in_either_mint_order() -> None:
    data = pool_bytes()
    mint_0, mint_1 = POOL_KEYS["token_0_mint"], POOL_KEYS["token_1_mint"]
    for a, b in ((mint_0, mint_1), (mint_1, mint_0)):
        sets = rcp.pool_filters(a, b)
        assert len(sets) == 2
        assert [_matches(s, data) for s in sets].count(True) == 1
    assert not any(_matches(s, data) for s in rcp.pool_filters(mint_0, key(99)))
    assert not any(_matches(s, data + b"\0") for s in rcp.pool_filters(mint_0, mint_1))
    assert not any(_matches(s, config_bytes() + bytes(401))
                   for s in rcp.pool_filters(mint_0, mint_1))


def test_get_program_accounts_params() -> None:
    params = rcp.get_program_accounts_params(MAINNET, key(6), key(7))
    assert [p[0] for p in params] == [str(MAINNET)] * 2
    assert all(p[1]["encoding"] == "base64" for p in params)
    assert [p[1]["filters"] for p in params] == rcp.pool_filters(key(6), key(7))


@given(st.binary(min_size=32, max_size=32))
def test_base58_matches_solders(raw: bytes) -> None:
    assert rcp._base58(raw) == str(Pubkey(raw))
    assert _b58decode(rcp._base58(raw)) == raw


# ---- quote ----

R0, R1 = 10**9, 2 * 10**9  # effective reserves of token 0 and token 1 in the cases below


def quote(amount: int, zero_for_one: bool = True, *, pool: bytes | None = None,
          config: bytes | None = None, vaults: tuple[int, int] = (R0, R1),
          now: int | None = None) -> cpmm.SwapResult:
    return rcp.quote_swap_base_input(rcp.decode_pool_state(pool or pool_bytes()),
                                     rcp.decode_amm_config(config or config_bytes()),
                                     *vaults, amount, zero_for_one, now)


def test_quote_by_hand_with_protocol_and_fund_shares() -> None:
    # x = 1e6 at 0.25%: trade_fee = ceil(2500.0) = 2500, net 997_500;
    # out = floor(997_500 * 2e9 / (1e9 + 997_500)) = floor(1_993_011.97) = 1_993_011;
    # protocol = floor(2500 * 12%) = 300, fund = floor(2500 * 4%) = 100, both accrue,
    # so the input reserve grows by 1e6 - 400 and the output one shrinks by what was paid.
    r = quote(1_000_000)
    assert (r.amount_out, r.trade_fee, r.protocol_fee, r.fund_fee, r.creator_fee) == (
        1_993_011, 2_500, 300, 100, 0)
    assert (r.new_reserve_in, r.new_reserve_out) == (R0 + 999_600, R1 - 1_993_011)


def test_trade_fee_rounds_up() -> None:
    # x = 1001: 1001 * 2500 / 1e6 = 2.5025 -> 3; net 998 -> floor(998 * 2e9 / (1e9 + 998)) = 1995
    r = quote(1_001)
    assert (r.trade_fee, r.amount_out) == (3, 1_995)
    # protocol = floor(3 * 0.12) = 0: fee shares floor, the trade fee ceils
    assert (r.protocol_fee, r.fund_fee) == (0, 0)


def test_accrued_fees_are_not_reserves() -> None:
    # The vaults hold 175 (token 0) and 1234 (token 1) of accrued fees on top of R0, R1:
    # the quote is the one on R0, R1, not on the vault balances.
    pool = pool_bytes(protocol=(100, 1_000), fund=(50, 200), creator=(25, 34))
    vaults = (R0 + 175, R1 + 1_234)
    assert rcp.effective_reserves(rcp.decode_pool_state(pool), *vaults) == (R0, R1)
    accrued = quote(1_000_000, pool=pool, vaults=vaults)
    assert accrued == quote(1_000_000)
    assert accrued.amount_out != quote(1_000_000, vaults=vaults).amount_out


def test_vault_below_accrued_fees_is_refused() -> None:
    with pytest.raises(rcp.PoolNotTradable, match="InsufficientVault"):
        quote(1_000, pool=pool_bytes(protocol=(10, 0)), vaults=(9, R1))


def test_creator_fee_on_input() -> None:
    # trade 0.25% + creator 0.1% on input: total = ceil(1e6 * 3500 / 1e6) = 3500, split
    # creator = floor(3500 * 1000 / 3500) = 1000, trade = 2500; net 996_500;
    # out = floor(996_500 * 2e9 / (1e9 + 996_500)) = floor(1_991_015.9) = 1_991_015.
    pool = pool_bytes(creator_fee_on=0, enable_creator_fee=1)
    r = quote(1_000_000, pool=pool, config=config_bytes(creator=1_000))
    assert (r.amount_out, r.trade_fee, r.creator_fee, r.protocol_fee) == (1_991_015, 2_500,
                                                                          1_000, 300)
    assert r.new_reserve_in == R0 + 1_000_000 - 300 - 100 - 1_000
    # rounding: x = 1001, total = ceil(3.5035) = 4, creator = floor(4 / 3.5) = 1, trade = 3
    small = quote(1_001, pool=pool, config=config_bytes(creator=1_000))
    assert (small.trade_fee, small.creator_fee) == (3, 1)


def test_creator_fee_on_output() -> None:
    # ONLY_TOKEN_0 and a 0 -> 1 swap... is on input; 1 -> 0 takes it from the output.
    # Here ONLY_TOKEN_1 with 0 -> 1: swapped = 1_993_011 (as without creator fee),
    # creator = ceil(1_993_011 * 1000 / 1e6) = ceil(1993.011) = 1994, paid 1_991_017.
    pool = pool_bytes(creator_fee_on=2, enable_creator_fee=1)
    r = quote(1_000_000, pool=pool, config=config_bytes(creator=1_000))
    assert (r.swapped, r.creator_fee, r.amount_out, r.trade_fee) == (1_993_011, 1_994,
                                                                     1_991_017, 2_500)
    assert r.new_reserve_out == R1 - 1_993_011  # the creator's share stays accrued
    # The same pool the other way takes it from the input.
    assert quote(1_000_000, False, pool=pool, config=config_bytes(creator=1_000)).swapped == (
        (1_000_000 - 3_500) * R0 // (R1 + 1_000_000 - 3_500))


def test_creator_fee_off_when_pool_disables_it() -> None:
    r = quote(1_000_000, pool=pool_bytes(enable_creator_fee=0),
              config=config_bytes(creator=50_000))
    assert (r.creator_fee, r.amount_out) == (0, 1_993_011)


def test_zero_total_fee_with_creator_on_input_is_refused_like_the_program() -> None:
    # split_creator_fee divides by trade + creator rates: 0 -> ZeroTradingTokens.
    with pytest.raises(rcp.PoolNotTradable):
        quote(1_000, config=config_bytes(trade=0, creator=0))


@pytest.mark.parametrize(("pool", "now"), [
    (pool_bytes(status=4), None),  # swap disabled
    (pool_bytes(open_time=1_000), 999),  # not open yet
])
def test_not_approved_pools_are_refused(pool: bytes, now: int | None) -> None:
    with pytest.raises(rcp.PoolNotTradable, match="NotApproved"):
        quote(1_000, pool=pool, now=now)


def test_open_pool_and_zero_output() -> None:
    assert quote(1_000, pool=pool_bytes(open_time=1_000), now=1_000).amount_out > 0
    with pytest.raises(rcp.PoolNotTradable, match="pay nothing"):
        quote(1)  # fee 1, nothing left to swap


def test_minimum_out() -> None:
    assert rcp.minimum_out(1_993_011, 50) == 1_983_045  # floor(1_993_011 * 0.995)
    assert rcp.minimum_out(1_000, 0) == 1_000
    with pytest.raises(ValueError):
        rcp.minimum_out(1_000, 10_001)


def test_local_market_math_is_the_same_implementation() -> None:
    # Without protocol/fund/creator fees the adapter and the local market's quote agree.
    state = cpmm.CpmmState(R0, R1, 2_500)
    local = cpmm.quote_exact_in(state, True, 1_000_000)
    onchain = quote(1_000_000, config=config_bytes(protocol=0, fund=0))
    assert (local.amount_out, local.fee) == (onchain.amount_out, onchain.trade_fee)
    assert local.new_state.reserves(True) == (onchain.new_reserve_in, onchain.new_reserve_out)


reserves = st.integers(1, 10**15)
rates = st.integers(0, 100_000)


@given(r_in=reserves, r_out=reserves, x=st.integers(1, 10**15), trade=rates,
       protocol=st.integers(0, 1_000_000), creator=rates, on_input=st.booleans())
def test_quote_is_the_exact_formula(r_in: int, r_out: int, x: int, trade: int, protocol: int,
                                    creator: int, on_input: bool) -> None:
    rates_ = cpmm.FeeRates(trade, protocol, 0, creator, on_input)
    if on_input and trade + creator == 0:
        return  # refused, tested above
    r = cpmm.swap_base_input(x, r_in, r_out, rates_)
    total = math.ceil(Fraction(x * (trade + (creator if on_input else 0)), 10**6))
    swapped = math.floor(Fraction((x - total) * r_out, r_in + x - total))
    creator_out = 0 if on_input else math.ceil(Fraction(swapped * creator, 10**6))
    assert r.swapped == swapped and r.amount_out == swapped - creator_out
    assert 0 <= r.amount_out <= r.swapped < r_out  # never the whole reserve
    assert r.trade_fee + (r.creator_fee if on_input else 0) == total
    assert r.protocol_fee == math.floor(Fraction(r.trade_fee * protocol, 10**6))
    # k over effective reserves never decreases
    assert r.new_reserve_in * r.new_reserve_out >= r_in * r_out


@given(r_in=reserves, r_out=reserves, x=st.integers(1, 10**15), dx=st.integers(1, 10**12),
       trade=rates, creator=rates, on_input=st.booleans())
def test_output_is_monotone_in_input(r_in: int, r_out: int, x: int, dx: int, trade: int,
                                     creator: int, on_input: bool) -> None:
    rates_ = cpmm.FeeRates(trade, 0, 0, creator, on_input)
    if on_input and trade + creator == 0:
        return
    small = cpmm.swap_base_input(x, r_in, r_out, rates_).amount_out
    assert small <= cpmm.swap_base_input(x + dx, r_in, r_out, rates_).amount_out


# ---- errors and labels ----


@pytest.mark.parametrize("program", [MAINNET, DEVNET])
def test_exceeded_slippage_maps_to_slippage_exceeded(program: Pubkey) -> None:
    assert program_error(6005, str(program)) is SlippageExceeded
    for text in ('{"InstructionError":[2,{"Custom":6005}]}',  # JSON (getTransaction meta)
                 "TransactionErrorInstructionError((2, Tagged(InstructionErrorCustom(6005))))",
                 "Program failed: custom program error: 0x1775"):  # str(solders), logs
        err = chain_error(text, program_id=str(program))
        assert isinstance(err, SlippageExceeded) and err.code == "slippage_exceeded"
    assert failed_instruction(
        "TransactionErrorInstructionError((2, Tagged(InstructionErrorCustom(6005))))") == 2


def test_codes_collide_across_programs() -> None:
    raydium = str(MAINNET)
    # Raydium's 6001 is InvalidOwner, not Jupiter's slippage.
    assert program_error(6001, raydium) is None
    assert type(chain_error("custom program error: 0x1771", program_id=raydium)) is (
        TransactionFailed)
    # Without a program id, 6001 keeps its one known meaning (Jupiter), as before.
    assert isinstance(chain_error("custom program error: 0x1771"), SlippageExceeded)
    # SPL Token's InsufficientFunds surfaces through Raydium's CPI.
    assert program_error(1, raydium) is InsufficientFunds
    assert failed_instruction("Error processing Instruction 3: InstructionError(3, Custom(1))") == 3
    assert failed_instruction('{"InstructionError":[2,{"Custom":6005}]}') == 2
    assert failed_instruction("BlockhashNotFound") is None


def test_label_is_the_real_aggregators_in_engine_and_market() -> None:
    assert DEX_LABELS[Venue.RAYDIUM] == "Raydium CP" == MARKET_RAYDIUM_LABEL
    assert DEX_LABELS[Venue.METEORA] == "Meteora DLMM"
