"""The DLMM ``swap2`` instruction and the ``getProgramAccounts`` filters that find pairs.

``swap2(amount_in: u64, min_amount_out: u64, remaining_accounts_info: RemainingAccountsInfo)``
(``idls/dlmm.json`` 0.12.0): the program itself enforces ``min_amount_out``
(``ExceededAmountSlippageTolerance``, 6003), which is what makes the engine's slippage
bound hold on chain. Accounts in the IDL's order; an absent optional account (bitmap
extension, host fee) is the program id, read-only, as Anchor expects. Remaining accounts:
first the transfer-hook accounts the ``slices`` announce (none for plain SPL tokens), then
every bin array the swap walks, writable.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey

from pipeline.venues.meteora.layout import (
    LB_PAIR_DISCRIMINATOR,
    LB_PAIR_SIZE,
    PROGRAM_ID,
    TOKEN_PROGRAM_2022_FLAG,
    TOKEN_X_MINT_OFFSET,
    TOKEN_Y_MINT_OFFSET,
    LbPair,
)
from pipeline.venues.meteora.pdas import bin_array_pda, event_authority_pda

TOKEN_PROGRAM_ID = Pubkey.from_string("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
TOKEN_2022_PROGRAM_ID = Pubkey.from_string("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb")
MEMO_PROGRAM_ID = Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr")


def instruction_discriminator(name: str) -> bytes:
    """Anchor's instruction discriminator: the first 8 bytes of ``sha256("global:<name>")``."""
    return hashlib.sha256(f"global:{name}".encode()).digest()[:8]


SWAP2_DISCRIMINATOR = instruction_discriminator("swap2")


class AccountsType(IntEnum):
    """The IDL's ``AccountsType`` enum (Borsh: one u8 variant index)."""

    TRANSFER_HOOK_X = 0
    TRANSFER_HOOK_Y = 1
    TRANSFER_HOOK_REWARD = 2
    TRANSFER_HOOK_MULTI_REWARD = 3  # carries a u8 reward index
    TRANSFER_HOOK_REFERRAL = 4


@dataclass(frozen=True, slots=True)
class RemainingAccountsSlice:
    accounts_type: AccountsType
    length: int
    reward_index: int = 0  # only for TRANSFER_HOOK_MULTI_REWARD

    def encode(self) -> bytes:
        kind = bytes([self.accounts_type])
        if self.accounts_type is AccountsType.TRANSFER_HOOK_MULTI_REWARD:
            kind += bytes([self.reward_index])
        return kind + bytes([self.length])


def encode_swap2_data(amount_in: int, min_amount_out: int,
                      slices: Sequence[RemainingAccountsSlice] = ()) -> bytes:
    """Discriminator, the two u64 amounts, then ``RemainingAccountsInfo { slices: Vec<_> }``
    (Borsh: u32 length, then each slice)."""
    head = SWAP2_DISCRIMINATOR + struct.pack("<QQI", amount_in, min_amount_out, len(slices))
    return head + b"".join(s.encode() for s in slices)


def token_program(flag: int) -> Pubkey:
    """The token program of a mint from the pair's ``token_mint_*_program_flag``."""
    return TOKEN_2022_PROGRAM_ID if flag == TOKEN_PROGRAM_2022_FLAG else TOKEN_PROGRAM_ID


@dataclass(frozen=True, slots=True)
class Swap2Accounts:
    """What the caller chooses; the rest comes from the decoded pair."""

    lb_pair: Pubkey
    user: Pubkey
    user_token_in: Pubkey
    user_token_out: Pubkey
    bin_arrays: tuple[int, ...]
    bitmap_extension: Pubkey | None = None
    host_fee_in: Pubkey | None = None


def swap2_instruction(pair: LbPair, accounts: Swap2Accounts, amount_in: int,
                      min_amount_out: int, program_id: Pubkey = PROGRAM_ID) -> Instruction:
    """``swap2`` for plain SPL/Token-2022 mints without transfer hooks (no slices)."""
    if not accounts.bin_arrays:
        raise ValueError("a swap needs at least the bin array it starts in")

    def optional(key: Pubkey | None) -> AccountMeta:
        if key is None:
            return AccountMeta(program_id, is_signer=False, is_writable=False)
        return AccountMeta(key, is_signer=False, is_writable=True)

    def ro(key: Pubkey) -> AccountMeta:
        return AccountMeta(key, is_signer=False, is_writable=False)

    def rw(key: Pubkey) -> AccountMeta:
        return AccountMeta(key, is_signer=False, is_writable=True)

    metas = [
        rw(accounts.lb_pair), optional(accounts.bitmap_extension),
        rw(pair.reserve_x), rw(pair.reserve_y),
        rw(accounts.user_token_in), rw(accounts.user_token_out),
        ro(pair.token_x_mint), ro(pair.token_y_mint), rw(pair.oracle),
        optional(accounts.host_fee_in),
        AccountMeta(accounts.user, is_signer=True, is_writable=False),
        ro(token_program(pair.token_mint_x_program_flag)),
        ro(token_program(pair.token_mint_y_program_flag)),
        ro(MEMO_PROGRAM_ID), ro(event_authority_pda(program_id)), ro(program_id),
    ]
    metas += [rw(bin_array_pda(accounts.lb_pair, i, program_id)) for i in accounts.bin_arrays]
    return Instruction(program_id, encode_swap2_data(amount_in, min_amount_out), metas)


def pool_discovery_filters(mint_a: Pubkey, mint_b: Pubkey) -> list[list[dict[str, Any]]]:
    """``getProgramAccounts`` filter sets for every pair of two mints: one per mint order
    (a pair's X/Y order is the creator's choice), each matching the ``LbPair`` size and
    discriminator and the two mints at their offsets."""
    disc = base64.b64encode(LB_PAIR_DISCRIMINATOR).decode()

    def filters(x: Pubkey, y: Pubkey) -> list[dict[str, Any]]:
        return [
            {"dataSize": LB_PAIR_SIZE},
            {"memcmp": {"offset": 0, "bytes": disc, "encoding": "base64"}},
            {"memcmp": {"offset": TOKEN_X_MINT_OFFSET, "bytes": str(x)}},
            {"memcmp": {"offset": TOKEN_Y_MINT_OFFSET, "bytes": str(y)}},
        ]

    return [filters(mint_a, mint_b), filters(mint_b, mint_a)]
