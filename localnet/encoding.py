"""Solana's wire encoding of what the localnet holds: base58, token amounts, transactions in
the ``json``/``base64``/``base58`` encodings (``jsonParsed`` in :mod:`localnet.parsed`), and
the ``getTransaction`` result.

Pure functions of solders objects and :mod:`localnet.records`; nothing here reads the chain.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from solders.message import MessageV0
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import TransactionMetadata

from localnet.txerrors import Json

if TYPE_CHECKING:
    from localnet.records import TxRecord

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}


def b58encode(data: bytes) -> str:
    """Base58 (Bitcoin alphabet), as Solana uses for instruction data and ``base58`` encodings."""
    n = int.from_bytes(data, "big")
    out: list[str] = []
    while n:
        n, r = divmod(n, 58)
        out.append(_B58[r])
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + "".join(reversed(out))


def b58decode(text: str) -> bytes:
    """Inverse of :func:`b58encode`; ``ValueError`` on a character outside the alphabet."""
    n = 0
    try:
        for ch in text:
            n = n * 58 + _B58_INDEX[ch]
    except KeyError:
        raise ValueError(f"invalid base58 character {ch!r}") from None
    pad = len(text) - len(text.lstrip("1"))
    return b"\0" * pad + n.to_bytes((n.bit_length() + 7) // 8, "big")


def ui_amount_string(amount: int, decimals: int) -> str:
    """Exact decimal string, trailing zeros trimmed, as Solana's ``uiAmountString``."""
    if decimals == 0:
        return str(amount)
    whole, frac = divmod(amount, 10**decimals)
    frac_s = str(frac).rjust(decimals, "0").rstrip("0")
    return f"{whole}.{frac_s}" if frac_s else str(whole)


def ui_token_amount(amount: int, decimals: int) -> dict[str, Json]:
    """Solana's ``UiTokenAmount``."""
    return {
        "amount": str(amount),
        "decimals": decimals,
        "uiAmount": amount / 10**decimals,
        "uiAmountString": ui_amount_string(amount, decimals),
    }


class UnsupportedTransactionVersion(ValueError):
    """``getTransaction`` of a v0 transaction without ``maxSupportedTransactionVersion``."""

    def __init__(self, version: int) -> None:
        self.version = version
        super().__init__(
            f"Transaction version ({version}) is not supported by the requesting client. "
            "Please try the request again with the following configuration parameter: "
            '"maxSupportedTransactionVersion": 0'
        )


def _compiled_ix_json(program_id_index: int, accounts: bytes, data: bytes,
                      stack_height: int | None) -> dict[str, Json]:
    return {
        "programIdIndex": program_id_index,
        "accounts": list(accounts),
        "data": b58encode(data),
        "stackHeight": stack_height,
    }


def inner_instructions_json(meta: TransactionMetadata) -> list[dict[str, Json]]:
    """``meta.innerInstructions``: one entry per top-level instruction that made CPIs."""
    out: list[dict[str, Json]] = []
    for index, group in enumerate(meta.inner_instructions()):
        if not group:
            continue
        instructions = []
        for inner in group:
            ix = inner.instruction()
            instructions.append(
                _compiled_ix_json(ix.program_id_index, ix.accounts, ix.data, inner.stack_height())
            )
        out.append({"index": index, "instructions": instructions})
    return out


def transaction_json(tx: VersionedTransaction) -> dict[str, Json]:
    """Solana's ``json`` encoding of a transaction (``UiTransaction`` with a raw message)."""
    msg = tx.message
    h = msg.header
    message: dict[str, Json] = {
        "accountKeys": [str(k) for k in msg.account_keys],
        "header": {
            "numRequiredSignatures": h.num_required_signatures,
            "numReadonlySignedAccounts": h.num_readonly_signed_accounts,
            "numReadonlyUnsignedAccounts": h.num_readonly_unsigned_accounts,
        },
        "recentBlockhash": str(msg.recent_blockhash),
        "instructions": [
            _compiled_ix_json(ix.program_id_index, ix.accounts, ix.data, None)
            for ix in msg.instructions
        ],
    }
    if isinstance(msg, MessageV0):
        message["addressTableLookups"] = [
            {
                "accountKey": str(lk.account_key),
                "writableIndexes": list(lk.writable_indexes),
                "readonlyIndexes": list(lk.readonly_indexes),
            }
            for lk in msg.address_table_lookups
        ]
    return {"signatures": [str(s) for s in tx.signatures], "message": message}


def transaction_result_json(
    rec: TxRecord, encoding: str = "json", max_supported_transaction_version: int | None = 0
) -> dict[str, Json]:
    """Solana's ``getTransaction`` result (``json``, ``jsonParsed``, ``base64`` or ``base58``).

    Raises :class:`UnsupportedTransactionVersion` for a v0 transaction when
    ``max_supported_transaction_version`` is ``None``, as Solana does, and
    ``ValueError`` for an unsupported encoding.
    """
    tx = rec.tx
    is_v0 = isinstance(tx.message, MessageV0)
    if is_v0 and max_supported_transaction_version is None:
        raise UnsupportedTransactionVersion(0)
    encoded: Json
    parsed = encoding == "jsonParsed"
    if parsed:
        from localnet.parsed import parsed_inner_instructions, parsed_transaction_json

        encoded = parsed_transaction_json(tx, rec.loaded_writable, rec.loaded_readonly)
    elif encoding == "json":
        encoded = transaction_json(tx)
    elif encoding == "base64":
        encoded = [base64.b64encode(bytes(tx)).decode(), "base64"]
    elif encoding == "base58":
        encoded = [b58encode(bytes(tx)), "base58"]
    else:
        raise ValueError(f"unsupported encoding {encoding!r}")
    meta = rec.meta
    inner = (parsed_inner_instructions(meta, rec.account_keys) if parsed
             else inner_instructions_json(meta))
    meta_json: dict[str, Json] = {
        "err": rec.err_json,
        "status": {"Ok": None} if rec.err_json is None else {"Err": rec.err_json},
        "fee": rec.fee,
        "preBalances": rec.pre_balances.tolist(),
        "postBalances": rec.post_balances.tolist(),
        "innerInstructions": inner,
        "logMessages": meta.logs(),
        "preTokenBalances": [tb.to_json() for tb in rec.pre_token_balances],
        "postTokenBalances": [tb.to_json() for tb in rec.post_token_balances],
        "rewards": [],
        "loadedAddresses": {
            "writable": [str(k) for k in rec.loaded_writable],
            "readonly": [str(k) for k in rec.loaded_readonly],
        },
        "computeUnitsConsumed": meta.compute_units_consumed(),
    }
    if parsed:  # the parsed accountKeys already list the lookup-table keys
        del meta_json["loadedAddresses"]
    rd = meta.return_data()
    if rd.data:
        meta_json["returnData"] = {
            "programId": str(rd.program_id),
            "data": [base64.b64encode(bytes(rd.data)).decode(), "base64"],
        }
    out: dict[str, Json] = {
        "slot": rec.slot,
        "transaction": encoded,
        "meta": meta_json,
        "blockTime": rec.block_time,
    }
    if max_supported_transaction_version is not None:
        out["version"] = 0 if is_v0 else "legacy"
    return out
