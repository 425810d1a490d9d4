"""SPL Memo: the instruction the market adds to a swap, and Solana's ``memo`` text.

The engine asks ``POST /swap`` for ``"memo": "orderflow:<orderId>"`` so that a landed swap
can be found from the chain itself (``getSignaturesForAddress`` on the wallet shows each
transaction's memo), even if the engine's own journal lost the row. Memo v3 needs no
signer accounts; it only checks that the data is UTF-8. LiteSVM (solders 0.29) loads both
Memo programs by default.

:func:`memo_field` formats memos as Agave's ``extract_and_fmt_memos`` does
(``transaction-status/src/extract_memos.rs``): each top-level instruction of Memo v1 or v3
becomes ``"[<data length in bytes>] <text>"``, several are joined by ``"; "``, and a
transaction without one has ``null``. Inner (CPI) memos are not included, as in Agave.

Must not import the engine (``pipeline``, ``orderflow``, ``ingress``, ``sinks``).
"""

from __future__ import annotations

import unicodedata

from solders.instruction import Instruction
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

MEMO_PROGRAM_ID = Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr")  # v3
MEMO_V1_PROGRAM_ID = Pubkey.from_string("Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo")
MAX_MEMO_BYTES = 128
"""The market's limit for a swap's memo (the program's own limit is the packet size)."""


class MemoError(ValueError):
    """A memo the market will not put on chain; the message says why."""


def check_memo(value: object) -> str:
    """``value`` if it is a memo the market accepts: a non-empty string of at most
    ``MAX_MEMO_BYTES`` bytes of UTF-8 without control characters."""
    if not isinstance(value, str):
        raise MemoError("memo must be a string")
    if not value:
        raise MemoError("memo must not be empty")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise MemoError("memo must be valid UTF-8 text (no lone surrogates)") from None
    if size > MAX_MEMO_BYTES:
        raise MemoError(f"memo is {size} bytes of UTF-8; at most {MAX_MEMO_BYTES} are allowed")
    for i, ch in enumerate(value):
        if unicodedata.category(ch) == "Cc":
            raise MemoError(f"memo must not contain control characters (U+{ord(ch):04X} at "
                            f"index {i})")
    return value


def memo_instruction(text: str) -> Instruction:
    """A Memo v3 instruction carrying exactly ``text`` (no signer accounts)."""
    return Instruction(MEMO_PROGRAM_ID, text.encode("utf-8"), [])


def memo_field(tx: VersionedTransaction) -> str | None:
    """Solana's ``memo`` of a transaction (``getSignaturesForAddress``), or ``None``."""
    msg = tx.message
    keys = msg.account_keys
    memos = []
    for ix in msg.instructions:
        index = ix.program_id_index
        if index < len(keys) and keys[index] in (MEMO_PROGRAM_ID, MEMO_V1_PROGRAM_ID):
            data = bytes(ix.data)
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = "(unparsable)"
            memos.append(f"[{len(data)}] {text}")
    return "; ".join(memos) if memos else None
