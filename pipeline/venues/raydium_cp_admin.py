"""Creating a Raydium CP-Swap pool with the program's own ``initialize``; the ``AmmConfig``
account bytes a local cluster needs in place of the admin-created one.

``initialize(init_amount_0, init_amount_1, open_time)`` (``instructions/initialize.rs``)
creates the pool at its canonical PDA, its two vaults, LP mint and observation state,
moves the initial amounts from the creator and mints the LP tokens: one instruction seeds
a tradable pool. It needs an existing ``AmmConfig`` (only the program's admin creates
them; every cluster has some) and charges that config's ``create_pool_fee`` in lamports
into a wrapped-SOL account fixed in the build (``create_pool_fee_reveiver::ID``). The
account list and seeds are the same before and after the creator-fee upgrade, so one
builder serves the early-2025 build and the current one.

Pure: layouts and PDAs come from :mod:`pipeline.venues.raydium_cp`; sending is the
caller's.
"""

from __future__ import annotations

import struct

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey
from spl.token.instructions import get_associated_token_address

from pipeline.venues.base import Cluster
from pipeline.venues.raydium_cp import (
    _CONFIG,
    AMM_CONFIG_DISCRIMINATOR,
    AmmConfig,
    anchor_discriminator,
    authority,
    pool_addresses,
)

TOKEN_PROGRAM = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
ASSOCIATED_TOKEN_PROGRAM = Pubkey.from_string("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL")
SYSTEM_PROGRAM = Pubkey.from_string("11111111111111111111111111111111")
RENT_SYSVAR = Pubkey.from_string("SysvarRent111111111111111111111111111111111")

AMM_CONFIG_SEED = b"amm_config"
INITIALIZE_DISCRIMINATOR = anchor_discriminator("global", "initialize")

CREATE_POOL_FEE_RECEIVER: dict[Cluster, Pubkey] = {
    # lib.rs ``create_pool_fee_reveiver::ID``: the mainnet build (also what a localnet
    # runs, the binary being the mainnet one) and the ``devnet`` feature build.
    Cluster.MAINNET: Pubkey.from_string("DNXgeM9EiiaAbaWvwjHj9fQQLAX5ZsfHyvmYUNRAdNC8"),
    Cluster.LOCALNET: Pubkey.from_string("DNXgeM9EiiaAbaWvwjHj9fQQLAX5ZsfHyvmYUNRAdNC8"),
    Cluster.DEVNET: Pubkey.from_string("3oE58BKVt8KuYkGxx8zBojugnymWmBiyafWgMrnb6eYy"),
}
ADMIN: dict[Cluster, Pubkey] = {  # lib.rs ``admin::ID``: owner of the configs it creates
    Cluster.MAINNET: Pubkey.from_string("GThUX1Atko4tqhN2NaiTazWSeFWMuiUvfFnyJyUghFMJ"),
    Cluster.LOCALNET: Pubkey.from_string("GThUX1Atko4tqhN2NaiTazWSeFWMuiUvfFnyJyUghFMJ"),
    Cluster.DEVNET: Pubkey.from_string("DRayqG9RXYi8WHgWEmRQGrUWRWbhjYWYkCRJDd6JBBak"),
}


def amm_config_address(program_id: Pubkey, index: int) -> tuple[Pubkey, int]:
    """``[b"amm_config", index.to_be_bytes()]`` (big-endian u16, as ``create_amm_config``)."""
    return Pubkey.find_program_address([AMM_CONFIG_SEED, index.to_bytes(2, "big")],
                                       program_id)


def encode_amm_config(config: AmmConfig) -> bytes:
    """The account data ``create_amm_config`` would have written (inverse of
    :func:`~pipeline.venues.raydium_cp.decode_amm_config`)."""
    return _CONFIG.pack(AMM_CONFIG_DISCRIMINATOR, config.bump, int(config.disable_create_pool),
                        config.index, config.trade_fee_rate, config.protocol_fee_rate,
                        config.fund_fee_rate, config.create_pool_fee,
                        bytes(config.protocol_owner), bytes(config.fund_owner),
                        config.creator_fee_rate)


def sorted_mints(mint_a: Pubkey, mint_b: Pubkey) -> tuple[Pubkey, Pubkey]:
    """(token 0, token 1): the program requires ``token_0_mint < token_1_mint`` (bytes)."""
    if mint_a == mint_b:
        raise ValueError("a pool needs two different mints")
    return (mint_a, mint_b) if bytes(mint_a) < bytes(mint_b) else (mint_b, mint_a)


def initialize_instruction(program_id: Pubkey, creator: Pubkey, amm_config: Pubkey,
                           token_0_mint: Pubkey, token_1_mint: Pubkey,
                           creator_token_0: Pubkey, creator_token_1: Pubkey,
                           init_amount_0: int, init_amount_1: int, open_time: int,
                           create_pool_fee_receiver: Pubkey, *,
                           token_0_program: Pubkey = TOKEN_PROGRAM,
                           token_1_program: Pubkey = TOKEN_PROGRAM) -> Instruction:
    """``initialize`` with the 20 accounts of ``instructions/initialize.rs::Initialize`` in
    order, the pool at its canonical PDA (no pool keypair to sign)."""
    if bytes(token_0_mint) >= bytes(token_1_mint):
        raise ValueError("token_0_mint must sort before token_1_mint (see sorted_mints)")
    for name, value in (("init_amount_0", init_amount_0), ("init_amount_1", init_amount_1),
                        ("open_time", open_time)):
        if not 0 <= value < 2**64:
            raise ValueError(f"{name} {value} does not fit in u64")
    pda = pool_addresses(program_id, amm_config, token_0_mint, token_1_mint)

    def rw(key: Pubkey) -> AccountMeta:
        return AccountMeta(key, is_signer=False, is_writable=True)

    def ro(key: Pubkey) -> AccountMeta:
        return AccountMeta(key, is_signer=False, is_writable=False)

    accounts = [
        AccountMeta(creator, is_signer=True, is_writable=True),
        ro(amm_config), ro(authority(program_id)), rw(pda.pool),
        ro(token_0_mint), ro(token_1_mint), rw(pda.lp_mint),
        rw(creator_token_0), rw(creator_token_1),
        rw(get_associated_token_address(creator, pda.lp_mint)),
        rw(pda.vault_0), rw(pda.vault_1), rw(create_pool_fee_receiver), rw(pda.observation),
        ro(TOKEN_PROGRAM), ro(token_0_program), ro(token_1_program),
        ro(ASSOCIATED_TOKEN_PROGRAM), ro(SYSTEM_PROGRAM), ro(RENT_SYSVAR),
    ]
    data = INITIALIZE_DISCRIMINATOR + struct.pack("<QQQ", init_amount_0, init_amount_1,
                                                  open_time)
    return Instruction(program_id, data, accounts)
