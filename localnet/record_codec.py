"""A landed transaction's record as bytes and back, for the localnet's data directory.

JSON (orjson) with the binary parts in base64: the transaction's wire bytes and LiteSVM's
``TransactionMetadata`` (its own bincode, so logs, inner instructions and return data come
back exactly). The error is kept in Solana's JSON form and rebuilt through solders' own
parser, the inverse of :func:`localnet.txerrors.error_json`. A record measured ~3-4 KB.
"""

from __future__ import annotations

import base64
from array import array
from typing import Any

import orjson
from solders.pubkey import Pubkey
from solders.rpc.responses import RpcSimulateTransactionResult
from solders.transaction_metadata import TransactionMetadata
from solders.transaction_status import TransactionErrorType

from localnet.records import TokenBalance, TxRecord
from localnet.txerrors import Json


def _balances(items: list[TokenBalance]) -> list[list[Any]]:
    return [[b.account_index, b.mint, b.owner, b.program_id, str(b.amount), b.decimals]
            for b in items]


def _unbalances(rows: list[list[Any]]) -> list[TokenBalance]:
    return [TokenBalance(i, mint, owner, prog, int(amount), dec)
            for i, mint, owner, prog, amount, dec in rows]


def error_from_json(err_json: Json) -> TransactionErrorType | None:
    """The solders error object of Solana's JSON form (``None`` for success)."""
    if err_json is None:
        return None
    doc = {"err": err_json, "logs": None, "accounts": None, "unitsConsumed": None,
           "returnData": None}
    return RpcSimulateTransactionResult.from_json(orjson.dumps(doc).decode()).err


def encode(rec: TxRecord) -> bytes:
    return orjson.dumps({
        "sig": rec.signature, "slot": rec.slot, "bt": rec.block_time,
        "raw": base64.b64encode(rec.raw).decode(),
        "lw": [str(k) for k in rec.loaded_writable], "lr": [str(k) for k in rec.loaded_readonly],
        "err": rec.err_json, "fee": rec.fee,
        # balances as strings: u64 values overflow JSON integers in some readers
        "pre": [str(b) for b in rec.pre_balances], "post": [str(b) for b in rec.post_balances],
        "ptb": _balances(rec.pre_token_balances), "qtb": _balances(rec.post_token_balances),
        "meta": base64.b64encode(bytes(rec.meta)).decode(),
    })


def decode(blob: bytes) -> TxRecord:
    d = orjson.loads(blob)
    return TxRecord(
        signature=d["sig"], slot=d["slot"], block_time=d["bt"],
        raw=base64.b64decode(d["raw"]),
        loaded_writable=[Pubkey.from_string(k) for k in d["lw"]],
        loaded_readonly=[Pubkey.from_string(k) for k in d["lr"]],
        err=error_from_json(d["err"]), err_json=d["err"], fee=d["fee"],
        pre_balances=array("Q", [int(b) for b in d["pre"]]),
        post_balances=array("Q", [int(b) for b in d["post"]]),
        pre_token_balances=_unbalances(d["ptb"]), post_token_balances=_unbalances(d["qtb"]),
        meta=TransactionMetadata.from_bytes(base64.b64decode(d["meta"])),
    )
