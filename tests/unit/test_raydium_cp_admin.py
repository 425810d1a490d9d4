"""Raydium CP-Swap pool creation (pipeline/venues/raydium_cp_admin.py) against the program.

Restated independently of the module: the ``initialize`` discriminator as a literal (the
Anchor ``global:initialize`` tag every IDL with that name carries), the accounts of
``instructions/initialize.rs::Initialize`` by name, order and flags, the PDAs from the
source's seeds, and real mainnet addresses the program's users see: the index-0
``AmmConfig`` (0.25 % fee) ``D4FPEru…`` and the create-pool-fee account ``DNXgeM9…``.
"""

from __future__ import annotations

import struct

import pytest
from solders.pubkey import Pubkey

from pipeline.venues import raydium_cp as rcp
from pipeline.venues import raydium_cp_admin as admin
from pipeline.venues.base import Cluster

MAINNET = Pubkey.from_string("CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C")
MAINNET_AMM_CONFIG_0 = Pubkey.from_string("D4FPEruKEHrG5TenZ2mpDGEfu1iUvTiqBxvpU8HLBvC2")
MAINNET_AUTHORITY = Pubkey.from_string("GpMZbSM2GgvTKHJirzeGfMFoaZ8UR2X7F4v8vHTvxFbL")
INITIALIZE_DISC = bytes([175, 175, 109, 31, 13, 152, 155, 237])
TOKENKEG = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
ATA_PROGRAM = Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")
SYSTEM = Pubkey.from_string("11111111111111111111111111111111")
RENT = Pubkey.from_string("SysvarRent111111111111111111111111111111111")

# initialize.rs::Initialize, in order: (name, signer, writable)
INITIALIZE_ACCOUNTS = [
    ("creator", True, True), ("amm_config", False, False), ("authority", False, False),
    ("pool_state", False, True), ("token_0_mint", False, False),
    ("token_1_mint", False, False), ("lp_mint", False, True),
    ("creator_token_0", False, True), ("creator_token_1", False, True),
    ("creator_lp_token", False, True), ("token_0_vault", False, True),
    ("token_1_vault", False, True), ("create_pool_fee", False, True),
    ("observation_state", False, True), ("token_program", False, False),
    ("token_0_program", False, False), ("token_1_program", False, False),
    ("associated_token_program", False, False), ("system_program", False, False),
    ("rent", False, False),
]


def key(n: int) -> Pubkey:
    return Pubkey(bytes([n]) * 32)


def pda(*seeds: bytes) -> Pubkey:
    return Pubkey.find_program_address(list(seeds), MAINNET)[0]


def test_amm_config_pda_is_the_real_mainnet_config_zero() -> None:
    # seeds [b"amm_config", index.to_be_bytes()]: big-endian, as create_config.rs
    address, bump = admin.amm_config_address(MAINNET, 0)
    assert address == MAINNET_AMM_CONFIG_0
    assert Pubkey.create_program_address([b"amm_config", b"\0\0", bytes([bump])],
                                         MAINNET) == address
    assert admin.amm_config_address(MAINNET, 1)[0] == pda(b"amm_config", b"\x00\x01")


def test_create_pool_fee_receivers_are_the_builds_constants() -> None:
    assert str(admin.CREATE_POOL_FEE_RECEIVER[Cluster.MAINNET]) == \
        "DNXgeM9EiiaAbaWvwjHj9fQQLAX5ZsfHyvmYUNRAdNC8"
    assert str(admin.CREATE_POOL_FEE_RECEIVER[Cluster.DEVNET]) == \
        "3oE58BKVt8KuYkGxx8zBojugnymWmBiyafWgMrnb6eYy"
    # a localnet runs the mainnet binary, so it expects the mainnet receiver
    assert admin.CREATE_POOL_FEE_RECEIVER[Cluster.LOCALNET] == \
        admin.CREATE_POOL_FEE_RECEIVER[Cluster.MAINNET]


def test_initialize_bytes_accounts_and_pdas() -> None:
    creator, config, m0, m1, t0, t1, fee = (key(i) for i in (1, 2, 3, 4, 5, 6, 7))
    assert bytes(m0) < bytes(m1)
    ix = admin.initialize_instruction(MAINNET, creator, config, m0, m1, t0, t1,
                                      10**12, 15 * 10**10, 1_700_000_000, fee)
    assert ix.program_id == MAINNET
    assert ix.data == INITIALIZE_DISC + struct.pack("<QQQ", 10**12, 15 * 10**10,
                                                    1_700_000_000)
    assert len(ix.data) == 8 + 3 * 8
    flags = [(m.is_signer, m.is_writable) for m in ix.accounts]
    assert flags == [(s, w) for _, s, w in INITIALIZE_ACCOUNTS]
    pool = pda(b"pool", bytes(config), bytes(m0), bytes(m1))
    lp_mint = pda(b"pool_lp_mint", bytes(pool))
    lp_ata = Pubkey.find_program_address([bytes(creator), bytes(TOKENKEG), bytes(lp_mint)],
                                         ATA_PROGRAM)[0]
    expected = [creator, config, MAINNET_AUTHORITY, pool, m0, m1, lp_mint, t0, t1, lp_ata,
                pda(b"pool_vault", bytes(pool), bytes(m0)),
                pda(b"pool_vault", bytes(pool), bytes(m1)), fee,
                pda(b"observation", bytes(pool)), TOKENKEG, TOKENKEG, TOKENKEG, ATA_PROGRAM,
                SYSTEM, RENT]
    assert [m.pubkey for m in ix.accounts] == expected
    # the pool the swap adapter finds for the same mints is the one created
    assert rcp.pool_addresses(MAINNET, config, m0, m1).pool == pool


def test_initialize_refuses_unsorted_mints_and_oversized_amounts() -> None:
    low, high = admin.sorted_mints(key(9), key(3))
    assert (low, high) == (key(3), key(9))
    with pytest.raises(ValueError, match="sort"):
        admin.initialize_instruction(MAINNET, key(1), key(2), key(9), key(3), key(5), key(6),
                                     1, 1, 0, key(7))
    with pytest.raises(ValueError, match="u64"):
        admin.initialize_instruction(MAINNET, key(1), key(2), key(3), key(9), key(5), key(6),
                                     2**64, 1, 0, key(7))
    with pytest.raises(ValueError, match="two different"):
        admin.sorted_mints(key(3), key(3))


def test_encoded_amm_config_is_config_rs_layout_and_decodes() -> None:
    config = rcp.AmmConfig(bump=254, disable_create_pool=False, index=0, trade_fee_rate=2_500,
                           protocol_fee_rate=120_000, fund_fee_rate=40_000,
                           create_pool_fee=150_000_000, protocol_owner=key(11),
                           fund_owner=key(12), creator_fee_rate=0)
    data = admin.encode_amm_config(config)
    # AmmConfig::LEN = 8 + 1 + 1 + 2 + 4*8 + 2*32 + 8 + 15*8, laid out field by field
    expected = (rcp.anchor_discriminator("account", "AmmConfig") + bytes([254, 0])
                + struct.pack("<H", 0) + struct.pack("<Q", 2_500)
                + struct.pack("<Q", 120_000) + struct.pack("<Q", 40_000)
                + struct.pack("<Q", 150_000_000) + bytes(key(11)) + bytes(key(12))
                + struct.pack("<Q", 0) + bytes(15 * 8))
    assert data == expected and len(data) == 236
    assert rcp.decode_amm_config(data) == config
