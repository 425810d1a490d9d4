"""Raydium CP-Swap (``raydium-io/raydium-cp-swap``): its accounts, quote and swap instruction.

Pure functions over account bytes, so the engine quotes a real pool with the program's own
integer math (:mod:`dexmath.cpmm`, one implementation shared with the local market) and
builds the program's own ``swap_base_input`` instruction, on any cluster. Fetching the
accounts and sending the transaction belong to the caller; this module does no I/O.

Layouts follow ``programs/cp-swap/src/states/{pool,config}.rs``: ``PoolState`` is a
zero-copy ``#[repr(C, packed)]`` account (no alignment padding), ``AmmConfig`` a Borsh
account; both start with Anchor's 8-byte discriminator ``sha256("account:<Name>")[:8]``.
Pools created before the creator-fee upgrade have zeros where the creator fields are (they
were padding), which decode as "creator fee off"; both layouts are 637 and 236 bytes.

Not modelled: Token-2022 transfer fees (the program subtracts the input mint's transfer
fee before the curve and the output mint's after it); quote such pools only for mints
without the TransferFeeConfig extension.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

from dexmath import cpmm
from pipeline.errors import RAYDIUM_CP_DEVNET, RAYDIUM_CP_MAINNET
from pipeline.model import Venue
from pipeline.venues.base import Cluster
from pipeline.venues.pool_snapshot import CpSnapshot, SnapshotToken

RAYDIUM_CP_PROGRAM: dict[Cluster, Pubkey] = {
    Cluster.MAINNET: Pubkey.from_string(RAYDIUM_CP_MAINNET),
    Cluster.DEVNET: Pubkey.from_string(RAYDIUM_CP_DEVNET),
    # A localnet loads the real binary at its mainnet address (--bpf-program), as
    # solana-test-validator users do.
    Cluster.LOCALNET: Pubkey.from_string(RAYDIUM_CP_MAINNET),
}

AUTH_SEED = b"vault_and_lp_mint_auth_seed"
POOL_SEED = b"pool"
POOL_VAULT_SEED = b"pool_vault"
POOL_LP_MINT_SEED = b"pool_lp_mint"
OBSERVATION_SEED = b"observation"

POOL_STATE_LEN = 637  # PoolState::LEN = 8 + 10*32 + 5 + 7*8 + 2 + 6 + 2*8 + 28*8
AMM_CONFIG_LEN = 236  # AmmConfig::LEN = 8 + 1 + 1 + 2 + 4*8 + 2*32 + 8 + 15*8
TOKEN_0_MINT_OFFSET = 8 + 5 * 32  # after amm_config, pool_creator, vaults, lp_mint
TOKEN_1_MINT_OFFSET = TOKEN_0_MINT_OFFSET + 32
SWAP_DISABLED_BIT = 1 << 2  # PoolStatusBitIndex::Swap


def anchor_discriminator(namespace: str, name: str) -> bytes:
    """Anchor's 8-byte tag: ``sha256("<namespace>:<name>")[:8]`` (``account``/``global``)."""
    return hashlib.sha256(f"{namespace}:{name}".encode()).digest()[:8]


POOL_STATE_DISCRIMINATOR = anchor_discriminator("account", "PoolState")
AMM_CONFIG_DISCRIMINATOR = anchor_discriminator("account", "AmmConfig")
SWAP_BASE_INPUT_DISCRIMINATOR = anchor_discriminator("global", "swap_base_input")


class LayoutError(ValueError):
    """The bytes are not the account they were read as (size, discriminator, enum value)."""


class PoolNotTradable(ValueError):
    """The program would refuse this swap (``NotApproved``, ``InsufficientVault``, ...)."""


class CreatorFeeOn(IntEnum):
    """``CreatorFeeOn``: which token a creator fee is taken in."""

    BOTH_TOKEN = 0  # the input token, whichever it is
    ONLY_TOKEN_0 = 1
    ONLY_TOKEN_1 = 2


@dataclass(frozen=True, slots=True)
class AmmConfig:
    """``states/config.rs::AmmConfig``; rates per 1e6 (protocol/fund: shares of the trade fee)."""

    bump: int
    disable_create_pool: bool
    index: int
    trade_fee_rate: int
    protocol_fee_rate: int
    fund_fee_rate: int
    create_pool_fee: int
    protocol_owner: Pubkey
    fund_owner: Pubkey
    creator_fee_rate: int


@dataclass(frozen=True, slots=True)
class PoolState:
    """``states/pool.rs::PoolState``, every field in order; amounts in base units."""

    amm_config: Pubkey
    pool_creator: Pubkey
    token_0_vault: Pubkey
    token_1_vault: Pubkey
    lp_mint: Pubkey
    token_0_mint: Pubkey
    token_1_mint: Pubkey
    token_0_program: Pubkey
    token_1_program: Pubkey
    observation_key: Pubkey
    auth_bump: int
    status: int
    lp_mint_decimals: int
    mint_0_decimals: int
    mint_1_decimals: int
    lp_supply: int
    protocol_fees_token_0: int
    protocol_fees_token_1: int
    fund_fees_token_0: int
    fund_fees_token_1: int
    open_time: int
    recent_epoch: int
    creator_fee_on: CreatorFeeOn
    enable_creator_fee: bool
    creator_fees_token_0: int
    creator_fees_token_1: int

    @property
    def swap_enabled(self) -> bool:
        """Bit 2 of ``status`` clear (``get_status_by_bit(Swap)``)."""
        return not self.status & SWAP_DISABLED_BIT

    def zero_for_one(self, input_mint: Pubkey) -> bool:
        """Direction of a swap selling ``input_mint``: token 0 → token 1, or the reverse."""
        if input_mint == self.token_0_mint:
            return True
        if input_mint == self.token_1_mint:
            return False
        raise ValueError(f"{input_mint} is not a mint of this pool")


# <: little-endian, no alignment (the program's packed / Borsh layouts).
_POOL = struct.Struct("<8s" + "32s" * 10 + "5B" + "7Q" + "BB6x" + "2Q" + "224x")
_CONFIG = struct.Struct("<8sBBH4Q32s32sQ120x")
assert _POOL.size == POOL_STATE_LEN and _CONFIG.size == AMM_CONFIG_LEN


def _check(data: bytes, size: int, discriminator: bytes, name: str) -> None:
    if len(data) < size:
        raise LayoutError(f"{name}: {len(data)} bytes, expected {size}")
    if data[:8] != discriminator:
        raise LayoutError(f"{name}: discriminator {data[:8].hex()} is not {discriminator.hex()}")


def _bool(value: int, name: str) -> bool:
    if value not in (0, 1):
        raise LayoutError(f"{name}: {value} is not a bool")
    return value == 1


def decode_amm_config(data: bytes) -> AmmConfig:
    """Decode an ``AmmConfig`` account's data (checks size and discriminator)."""
    _check(data, AMM_CONFIG_LEN, AMM_CONFIG_DISCRIMINATOR, "AmmConfig")
    (_, bump, disable, index, trade, protocol, fund, create_fee, protocol_owner, fund_owner,
     creator) = _CONFIG.unpack_from(data)
    return AmmConfig(bump, _bool(disable, "disable_create_pool"), index, trade, protocol, fund,
                     create_fee, Pubkey(protocol_owner), Pubkey(fund_owner), creator)


def decode_pool_state(data: bytes) -> PoolState:
    """Decode a ``PoolState`` account's data (checks size, discriminator and enum values)."""
    _check(data, POOL_STATE_LEN, POOL_STATE_DISCRIMINATOR, "PoolState")
    f = _POOL.unpack_from(data)
    k = [Pubkey(raw) for raw in f[1:11]]
    try:
        fee_on = CreatorFeeOn(f[23])
    except ValueError:
        raise LayoutError(f"PoolState: creator_fee_on {f[23]}") from None
    return PoolState(
        amm_config=k[0], pool_creator=k[1], token_0_vault=k[2], token_1_vault=k[3],
        lp_mint=k[4], token_0_mint=k[5], token_1_mint=k[6], token_0_program=k[7],
        token_1_program=k[8], observation_key=k[9],
        auth_bump=f[11], status=f[12], lp_mint_decimals=f[13], mint_0_decimals=f[14],
        mint_1_decimals=f[15], lp_supply=f[16], protocol_fees_token_0=f[17],
        protocol_fees_token_1=f[18], fund_fees_token_0=f[19], fund_fees_token_1=f[20],
        open_time=f[21], recent_epoch=f[22], creator_fee_on=fee_on,
        enable_creator_fee=_bool(f[24], "enable_creator_fee"),
        creator_fees_token_0=f[25], creator_fees_token_1=f[26],
    )


# ---- quote ----


def effective_reserves(pool: PoolState, vault_0: int, vault_1: int) -> tuple[int, int]:
    """``vault_amount_without_fee``: the vaults minus the protocol, fund and creator fees
    they hold but the curve must not see (they belong to their owners, not the LPs)."""
    fees_0 = pool.protocol_fees_token_0 + pool.fund_fees_token_0 + pool.creator_fees_token_0
    fees_1 = pool.protocol_fees_token_1 + pool.fund_fees_token_1 + pool.creator_fees_token_1
    if fees_0 > vault_0 or fees_1 > vault_1:
        raise PoolNotTradable("vault holds less than its accrued fees (InsufficientVault)")
    return vault_0 - fees_0, vault_1 - fees_1


def fee_rates(pool: PoolState, config: AmmConfig, zero_for_one: bool) -> cpmm.FeeRates:
    """The rates one swap sees: the creator fee only where the pool enables it, on the input
    unless the pool takes it in the other token (``is_creator_fee_on_input``)."""
    on_input = (pool.creator_fee_on is CreatorFeeOn.BOTH_TOKEN
                or (pool.creator_fee_on is CreatorFeeOn.ONLY_TOKEN_0) == zero_for_one)
    return cpmm.FeeRates(
        trade_fee_rate=config.trade_fee_rate,
        protocol_fee_rate=config.protocol_fee_rate,
        fund_fee_rate=config.fund_fee_rate,
        creator_fee_rate=config.creator_fee_rate if pool.enable_creator_fee else 0,
        creator_fee_on_input=on_input,
    )


def quote_swap_base_input(pool: PoolState, config: AmmConfig, vault_0: int, vault_1: int,
                          amount_in: int, zero_for_one: bool,
                          now: int | None = None) -> cpmm.SwapResult:
    """What ``swap_base_input(amount_in, _)`` pays now, given the two vault balances.

    Refuses what the program refuses before paying: swaps disabled or not yet open
    (``now``, unix seconds, when known), accrued fees above the vault, a zero output.
    """
    if not pool.swap_enabled or (now is not None and now < pool.open_time):
        raise PoolNotTradable("swaps are disabled or the pool is not open yet (NotApproved)")
    reserve_0, reserve_1 = effective_reserves(pool, vault_0, vault_1)
    reserve_in, reserve_out = (reserve_0, reserve_1) if zero_for_one else (reserve_1, reserve_0)
    try:
        result = cpmm.swap_base_input(amount_in, reserve_in, reserve_out,
                                      fee_rates(pool, config, zero_for_one))
    except cpmm.CpmmError as exc:
        raise PoolNotTradable(str(exc)) from None
    if result.amount_out <= 0:
        raise PoolNotTradable("the swap would pay nothing (require_gt!(amount_received, 0))")
    return result


def snapshot(address: Pubkey, pool: PoolState, config: AmmConfig, vault_0: int,
             vault_1: int) -> CpSnapshot:
    """The pool as the markets view shows it: the reserves the quote uses (vaults minus
    accrued fees), the trade fee, the mints' decimals the pool stores, its vaults."""
    reserve_0, reserve_1 = effective_reserves(pool, vault_0, vault_1)
    return CpSnapshot(Venue.RAYDIUM, str(address),
                      SnapshotToken(str(pool.token_0_mint), pool.mint_0_decimals),
                      SnapshotToken(str(pool.token_1_mint), pool.mint_1_decimals),
                      reserve_0, reserve_1, config.trade_fee_rate,
                      (str(pool.token_0_vault), str(pool.token_1_vault)))


def minimum_out(amount_out: int, slippage_bps: int) -> int:
    """``amount_out`` less ``slippage_bps``, floored: the program enforces it (6005)."""
    if not 0 <= slippage_bps <= 10_000:
        raise ValueError(f"slippage_bps {slippage_bps} out of 0..10000")
    return amount_out * (10_000 - slippage_bps) // 10_000


# ---- addresses and the swap instruction ----


def authority(program_id: Pubkey) -> Pubkey:
    """The vault and LP mint authority PDA, ``[b"vault_and_lp_mint_auth_seed"]``."""
    return Pubkey.find_program_address([AUTH_SEED], program_id)[0]


@dataclass(frozen=True, slots=True)
class PoolAddresses:
    """The PDAs of the pool the program creates for (config, mint 0, mint 1)."""

    pool: Pubkey
    vault_0: Pubkey
    vault_1: Pubkey
    lp_mint: Pubkey
    observation: Pubkey


def pool_addresses(program_id: Pubkey, amm_config: Pubkey, token_0_mint: Pubkey,
                   token_1_mint: Pubkey) -> PoolAddresses:
    """The canonical pool of two mints (``initialize``'s seeds; token 0 sorts first)."""
    pool = Pubkey.find_program_address(
        [POOL_SEED, bytes(amm_config), bytes(token_0_mint), bytes(token_1_mint)], program_id)[0]

    def pda(*seeds: bytes) -> Pubkey:
        return Pubkey.find_program_address(list(seeds), program_id)[0]

    return PoolAddresses(
        pool=pool,
        vault_0=pda(POOL_VAULT_SEED, bytes(pool), bytes(token_0_mint)),
        vault_1=pda(POOL_VAULT_SEED, bytes(pool), bytes(token_1_mint)),
        lp_mint=pda(POOL_LP_MINT_SEED, bytes(pool)),
        observation=pda(OBSERVATION_SEED, bytes(pool)),
    )


def swap_base_input_instruction(program_id: Pubkey, pool_id: Pubkey, pool: PoolState,
                                payer: Pubkey, input_token_account: Pubkey,
                                output_token_account: Pubkey, amount_in: int,
                                minimum_amount_out: int, zero_for_one: bool) -> Instruction:
    """``swap_base_input(amount_in, minimum_amount_out)`` with the 13 accounts of
    ``instructions/swap_base_input.rs::Swap`` in order; the program enforces the minimum."""
    for name, value in (("amount_in", amount_in), ("minimum_amount_out", minimum_amount_out)):
        if not 0 <= value <= cpmm.U64_MAX:
            raise ValueError(f"{name} {value} does not fit in u64")
    side = ((pool.token_0_vault, pool.token_0_program, pool.token_0_mint),
            (pool.token_1_vault, pool.token_1_program, pool.token_1_mint))
    (in_vault, in_program, in_mint), (out_vault, out_program, out_mint) = (
        side if zero_for_one else side[::-1])
    accounts = [
        AccountMeta(payer, is_signer=True, is_writable=False),
        AccountMeta(authority(program_id), is_signer=False, is_writable=False),
        AccountMeta(pool.amm_config, is_signer=False, is_writable=False),
        AccountMeta(pool_id, is_signer=False, is_writable=True),
        AccountMeta(input_token_account, is_signer=False, is_writable=True),
        AccountMeta(output_token_account, is_signer=False, is_writable=True),
        AccountMeta(in_vault, is_signer=False, is_writable=True),
        AccountMeta(out_vault, is_signer=False, is_writable=True),
        AccountMeta(in_program, is_signer=False, is_writable=False),
        AccountMeta(out_program, is_signer=False, is_writable=False),
        AccountMeta(in_mint, is_signer=False, is_writable=False),
        AccountMeta(out_mint, is_signer=False, is_writable=False),
        AccountMeta(pool.observation_key, is_signer=False, is_writable=True),
    ]
    data = SWAP_BASE_INPUT_DISCRIMINATOR + struct.pack("<QQ", amount_in, minimum_amount_out)
    return Instruction(program_id, data, accounts)


# ---- discovery ----


def pool_filters(mint_a: Pubkey, mint_b: Pubkey) -> list[list[dict[str, Any]]]:
    """``getProgramAccounts`` filter sets for the pools of two mints, one per mint order
    (a pool stores its mints sorted, but the caller need not know the order)."""

    def filters(mint_0: Pubkey, mint_1: Pubkey) -> list[dict[str, Any]]:
        return [
            {"dataSize": POOL_STATE_LEN},
            {"memcmp": {"offset": 0, "bytes": _base58(POOL_STATE_DISCRIMINATOR)}},
            {"memcmp": {"offset": TOKEN_0_MINT_OFFSET, "bytes": str(mint_0)}},
            {"memcmp": {"offset": TOKEN_1_MINT_OFFSET, "bytes": str(mint_1)}},
        ]

    return [filters(mint_a, mint_b), filters(mint_b, mint_a)]


def get_program_accounts_params(program_id: Pubkey, mint_a: Pubkey,
                                mint_b: Pubkey) -> list[list[Any]]:
    """The JSON-RPC ``params`` of each ``getProgramAccounts`` call that finds the pools."""
    return [[str(program_id), {"encoding": "base64", "commitment": "confirmed",
                               "filters": f}] for f in pool_filters(mint_a, mint_b)]


_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _base58(raw: bytes) -> str:
    """Bitcoin base58 (what ``memcmp.bytes`` takes by default)."""
    n = int.from_bytes(raw, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _B58[r] + out
    return "1" * (len(raw) - len(raw.lstrip(b"\0"))) + out
