"""Builds the atomic swap transaction the market hands out from ``/swap``.

There is no AMM program on the localnet: a swap is two SPL ``TransferChecked`` in one v0
transaction — the user pays the pool's input vault, the pool's maker (the vaults' owner)
pays the user from the output vault — so it lands whole or not at all, and only if both
the user and the maker signed it. The market signs as the maker; the user's signature
slot (fee payer, index 0) is left empty for the user to fill.
"""

from __future__ import annotations

from dataclasses import dataclass

from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import MessageV0, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    close_account,
    create_idempotent_associated_token_account,
    get_associated_token_address,
    sync_native,
    transfer_checked,
)
from spl.token.models import CloseAccountParams, SyncNativeParams, TransferCheckedParams

from localnet.market.tokens import MarketToken


def ata(owner: Pubkey, mint: Pubkey) -> Pubkey:
    return get_associated_token_address(owner, mint)


@dataclass(frozen=True, slots=True)
class SwapLegs:
    """Everything a swap transaction moves, in raw units."""

    user: Pubkey
    maker: Pubkey
    input_token: MarketToken
    output_token: MarketToken
    amount_in: int
    amount_out: int
    vault_in: Pubkey
    vault_out: Pubkey


def swap_instructions(legs: SwapLegs, *, wrap_and_unwrap_sol: bool = True) -> list[Instruction]:
    """Jupiter's setup / swap / cleanup sequence, with the two transfers as the swap."""
    user, ins = legs.user, []
    unwrap = wrap_and_unwrap_sol and (legs.input_token.is_native or legs.output_token.is_native)
    user_in = ata(user, legs.input_token.mint)
    user_out = ata(user, legs.output_token.mint)
    ins.append(create_idempotent_associated_token_account(user, user, legs.output_token.mint))
    if wrap_and_unwrap_sol and legs.input_token.is_native:
        ins.append(create_idempotent_associated_token_account(user, user, legs.input_token.mint))
        ins.append(
            transfer(TransferParams(from_pubkey=user, to_pubkey=user_in, lamports=legs.amount_in))
        )
        ins.append(sync_native(SyncNativeParams(program_id=TOKEN_PROGRAM_ID, account=user_in)))
    ins.append(
        transfer_checked(
            TransferCheckedParams(
                program_id=TOKEN_PROGRAM_ID,
                source=user_in,
                mint=legs.input_token.mint,
                dest=legs.vault_in,
                owner=user,
                amount=legs.amount_in,
                decimals=legs.input_token.decimals,
            )
        )
    )
    ins.append(
        transfer_checked(
            TransferCheckedParams(
                program_id=TOKEN_PROGRAM_ID,
                source=legs.vault_out,
                mint=legs.output_token.mint,
                dest=user_out,
                owner=legs.maker,
                amount=legs.amount_out,
                decimals=legs.output_token.decimals,
            )
        )
    )
    if unwrap:
        wsol = user_in if legs.input_token.is_native else user_out
        ins.append(
            close_account(
                CloseAccountParams(program_id=TOKEN_PROGRAM_ID, account=wsol, dest=user, owner=user)
            )
        )
    return ins


def compile_message(
    payer: Pubkey, instructions: list[Instruction], recent_blockhash: Hash
) -> MessageV0:
    return MessageV0.try_compile(payer, instructions, [], recent_blockhash)


def partially_signed(message: MessageV0, signers: list[Keypair]) -> VersionedTransaction:
    """A transaction with ``signers``' signatures and empty slots for everyone else."""
    data = to_bytes_versioned(message)
    by_key = {kp.pubkey(): kp for kp in signers}
    count = message.header.num_required_signatures
    sigs = [
        by_key[k].sign_message(data) if k in by_key else Signature.default()
        for k in message.account_keys[:count]
    ]
    return VersionedTransaction.populate(message, sigs)


def signature_of(tx: VersionedTransaction, signer: Pubkey) -> Signature | None:
    """The signature a given signer put on a transaction, if it is one of its signers."""
    count = tx.message.header.num_required_signatures
    for key, sig in zip(tx.message.account_keys[:count], tx.signatures, strict=False):
        if key == signer:
            return sig
    return None


def sign_as(tx: VersionedTransaction, signer: Keypair) -> VersionedTransaction:
    """Fill ``signer``'s empty slot (what a wallet does with the ``/swap`` transaction)."""
    data = to_bytes_versioned(tx.message)
    count = tx.message.header.num_required_signatures
    sigs = list(tx.signatures)
    for i, key in enumerate(tx.message.account_keys[:count]):
        if key == signer.pubkey():
            sigs[i] = signer.sign_message(data)
    return VersionedTransaction.populate(tx.message, sigs)
