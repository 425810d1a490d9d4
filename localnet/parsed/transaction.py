"""The ``jsonParsed`` encoding of a transaction and of its ``meta``, as Agave renders them.

``accountKeys`` become objects (``pubkey``, ``writable``, ``signer``, ``source``) that include
the lookup-table keys, so ``meta.loadedAddresses`` is left out; every instruction, top level
and inner, goes through :func:`localnet.parsed.instructions.parse_instruction`.
"""

from __future__ import annotations

from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import TransactionMetadata

from localnet.messages import writable_flags
from localnet.parsed.instructions import parse_instruction
from localnet.txerrors import Json


def account_keys_json(msg: Message | MessageV0, loaded_writable: list[Pubkey],
                      loaded_readonly: list[Pubkey]) -> list[Json]:
    """``message.accountKeys`` of ``jsonParsed``: static keys, then lookup-table keys."""
    flags = writable_flags(msg, len(loaded_writable), len(loaded_readonly))
    signers = msg.header.num_required_signatures
    static = len(msg.account_keys)
    keys = [*msg.account_keys, *loaded_writable, *loaded_readonly]
    return [{"pubkey": str(k), "writable": w, "signer": i < signers,
             "source": "transaction" if i < static else "lookupTable"}
            for i, (k, w) in enumerate(zip(keys, flags, strict=True))]


def parsed_inner_instructions(meta: TransactionMetadata, keys: list[Pubkey]) -> list[Json]:
    """``innerInstructions`` with each CPI parsed (``jsonParsed``; simulations use it too)."""
    out: list[Json] = []
    for index, group in enumerate(meta.inner_instructions()):
        if not group:
            continue
        instructions: list[Json] = []
        for inner in group:
            ix = inner.instruction()
            instructions.append(parse_instruction(
                keys[ix.program_id_index], [str(keys[i]) for i in ix.accounts],
                bytes(ix.data), inner.stack_height()))
        out.append({"index": index, "instructions": instructions})
    return out


def parsed_transaction_json(tx: VersionedTransaction, loaded_writable: list[Pubkey],
                            loaded_readonly: list[Pubkey]) -> dict[str, Json]:
    msg = tx.message
    assert isinstance(msg, Message | MessageV0)
    keys = [*msg.account_keys, *loaded_writable, *loaded_readonly]
    message: dict[str, Json] = {
        "accountKeys": account_keys_json(msg, loaded_writable, loaded_readonly),
        "recentBlockhash": str(msg.recent_blockhash),
        "instructions": [
            parse_instruction(keys[ix.program_id_index], [str(keys[i]) for i in ix.accounts],
                              bytes(ix.data), None)
            for ix in msg.instructions
        ],
    }
    if isinstance(msg, MessageV0):
        message["addressTableLookups"] = [
            {"accountKey": str(lk.account_key), "writableIndexes": list(lk.writable_indexes),
             "readonlyIndexes": list(lk.readonly_indexes)}
            for lk in msg.address_table_lookups
        ]
    return {"signatures": [str(s) for s in tx.signatures], "message": message}
