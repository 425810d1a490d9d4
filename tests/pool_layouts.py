"""Pool accounts laid out as the programs lay them out, for tests that read pools without
the program binaries: a Raydium CP-Swap pool from the source layout
(``tests/unit/test_raydium_cp.py``) with its config and vaults, and the real mainnet
Meteora DLMM SOL/USDC pair with its bin arrays (shipped by the PyPI package
``meteora-dlmm``). Each is ``{address: (data, owner)}``."""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_PROGRAM_ID

from pipeline.tokens import SOL, USDC, Token
from pipeline.venues import meteora_dlmm as dlmm
from pipeline.venues import raydium_cp as ray
from pipeline.venues.base import Cluster
from tests.unit.test_raydium_cp import config_bytes, pool_bytes

Accounts = dict[Pubkey, tuple[bytes, Pubkey]]
CP_PROGRAM = ray.RAYDIUM_CP_PROGRAM[Cluster.MAINNET]
DECIMALS_OFFSET = 8 + 10 * 32 + 3  # PoolState: after the keys, auth_bump, status, lp


@cache
def dlmm_reference() -> dict[str, Any]:
    text = resources.files("meteora_dlmm").joinpath("_reference.json").read_text()
    return dict(json.loads(text))


def token_account(mint: Pubkey, owner: Pubkey, amount: int) -> bytes:
    """An SPL Token account (165 bytes, initialised)."""
    return (bytes(mint) + bytes(owner) + struct.pack("<Q", amount) + bytes(4 + 32)
            + bytes([1]) + bytes(4 + 8) + struct.pack("<Q", 0) + bytes(4 + 32))


def _spliced(data: bytes, at: dict[int, bytes]) -> bytes:
    out = bytearray(data)
    for offset, raw in at.items():
        out[offset:offset + len(raw)] = raw
    return bytes(out)


@dataclass(frozen=True, slots=True)
class CpPool:
    pool: Pubkey
    config: Pubkey
    vault_0: Pubkey  # SOL
    vault_1: Pubkey  # USDC
    accounts: Accounts
    fees: tuple[int, int]  # accrued in the vaults: protocol + fund, per token
    trade_fee_rate: int


def cp_pool(vault_owner: Pubkey, amounts: tuple[int, int] = (5_000 * 10**9 + 1_000,
                                                             750_000 * 10**6 + 500),
            tokens: tuple[Token, Token] = (SOL, USDC)) -> CpPool:
    """A CP-Swap pool of ``tokens`` (SOL/USDC) whose vaults hold ``amounts`` (fees
    included) and belong to ``vault_owner`` (the program's authority PDA on a real pool)."""
    sol, usdc = (Pubkey.from_string(t.mint) for t in tokens)
    pool, config, vault_0, vault_1 = (Pubkey.new_unique() for _ in range(4))
    data = _spliced(pool_bytes(protocol=(1_000, 0), fund=(0, 500)), {
        8: bytes(config), 8 + 2 * 32: bytes(vault_0), 8 + 3 * 32: bytes(vault_1),
        ray.TOKEN_0_MINT_OFFSET: bytes(sol), ray.TOKEN_1_MINT_OFFSET: bytes(usdc),
        8 + 7 * 32: bytes(TOKEN_PROGRAM_ID), 8 + 8 * 32: bytes(TOKEN_PROGRAM_ID),
        DECIMALS_OFFSET: bytes([tokens[0].decimals, tokens[1].decimals])})
    accounts: Accounts = {
        pool: (data, CP_PROGRAM), config: (config_bytes(), CP_PROGRAM),
        vault_0: (token_account(sol, vault_owner, amounts[0]), TOKEN_PROGRAM_ID),
        vault_1: (token_account(usdc, vault_owner, amounts[1]), TOKEN_PROGRAM_ID)}
    return CpPool(pool, config, vault_0, vault_1, accounts, (1_000, 500),
                  ray.decode_amm_config(config_bytes()).trade_fee_rate)


def dlmm_pair() -> tuple[Pubkey, Accounts]:
    """The real SOL/USDC pair and its 47 bin arrays, as accounts of the DLMM program."""
    ref = dlmm_reference()
    accounts: Accounts = {Pubkey.from_string(ref["pool"]):
                          (base64.b64decode(ref["lbPairB64"]), dlmm.PROGRAM_ID)}
    for array in ref["binArraysB64"]:
        accounts[Pubkey.from_string(array["pubkey"])] = (base64.b64decode(array["data"]),
                                                         dlmm.PROGRAM_ID)
    return Pubkey.from_string(ref["pool"]), accounts
