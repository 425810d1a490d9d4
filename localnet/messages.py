"""Reading and rewriting transaction messages: writable keys, loaded addresses, blockhash."""

from __future__ import annotations

from solders.address_lookup_table_account import AddressLookupTable
from solders.hash import Hash
from solders.litesvm import LiteSVM
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction


def writable_flags(
    msg: Message | MessageV0, n_loaded_writable: int, n_loaded_ro: int
) -> list[bool]:
    """Which account keys the message may write (header rule; loaded-writable keys too)."""
    h = msg.header
    n = len(msg.account_keys)
    signed = h.num_required_signatures
    signed_w = signed - h.num_readonly_signed_accounts
    unsigned_w_end = n - h.num_readonly_unsigned_accounts
    flags = [i < signed_w if i < signed else i < unsigned_w_end for i in range(n)]
    return flags + [True] * n_loaded_writable + [False] * n_loaded_ro


def with_blockhash(tx: VersionedTransaction, blockhash: Hash) -> VersionedTransaction:
    """The same transaction with another recent blockhash (signatures kept, now invalid)."""
    msg = tx.message
    new_msg: Message | MessageV0
    if isinstance(msg, MessageV0):
        new_msg = MessageV0(
            msg.header, msg.account_keys, blockhash, msg.instructions, msg.address_table_lookups
        )
    else:
        h = msg.header
        new_msg = Message.new_with_compiled_instructions(
            h.num_required_signatures,
            h.num_readonly_signed_accounts,
            h.num_readonly_unsigned_accounts,
            msg.account_keys,
            blockhash,
            msg.instructions,
        )
    return VersionedTransaction.populate(new_msg, tx.signatures)


def loaded_addresses(svm: LiteSVM, msg: Message | MessageV0) -> tuple[list[Pubkey], list[Pubkey]]:
    """Resolve a v0 message's lookup tables (best effort: LiteSVM does the real check)."""
    if not isinstance(msg, MessageV0) or not msg.address_table_lookups:
        return [], []
    writable: list[Pubkey] = []
    readonly: list[Pubkey] = []
    for lookup in msg.address_table_lookups:
        acc = svm.get_account(lookup.account_key)
        if acc is None:
            return [], []
        try:
            addresses = AddressLookupTable.deserialize(acc.data).addresses
            writable.extend(addresses[i] for i in lookup.writable_indexes)
            readonly.extend(addresses[i] for i in lookup.readonly_indexes)
        except (ValueError, IndexError):
            return [], []
    return writable, readonly
