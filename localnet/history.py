"""Per-address transaction history for ``getSignaturesForAddress``.

A validator keeps an ``address -> signatures`` index in its ledger (Agave's
``AddressSignatures`` column); this is ours, so the call costs O(limit), not a scan of
every transaction the chain remembers. Every landed transaction is indexed under each
account key it references (static keys and lookup-table keys, failed transactions too),
in landing order; entries leave the index when :class:`~localnet.chain.Chain` evicts
the transaction's record, so the index never answers for history the chain forgot.

The engine uses it to find its own swaps from the chain (each carries an
``orderflow:<orderId>`` memo, see :mod:`localnet.memo`), even when its journal lost them.

Must not import the engine (``pipeline``, ``orderflow``, ``ingress``, ``sinks``).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from solders.signature import Signature
from solders.transaction import VersionedTransaction
from solders.transaction_status import TransactionErrorType

from localnet.memo import MEMO_PROGRAM_ID, MEMO_V1_PROGRAM_ID, memo_field

if TYPE_CHECKING:
    from localnet.chain import Chain
    from localnet.records import TxRecord

MAX_LIMIT = 1000
"""Agave's ``MAX_GET_CONFIRMED_SIGNATURES_FOR_ADDRESS2_LIMIT``."""
_MEMO_PROGRAMS = (MEMO_PROGRAM_ID, MEMO_V1_PROGRAM_ID)


@dataclass(slots=True)
class _Entry:
    seq: int
    slot: int
    memo: str | None
    keys: tuple[bytes, ...]


@dataclass(slots=True)
class _Postings:
    """One address's transactions in landing order; ``start`` skips evicted ones."""

    seqs: list[int] = field(default_factory=list)
    sigs: list[str] = field(default_factory=list)
    start: int = 0

    def drop_first(self) -> None:
        self.start += 1
        if self.start > 1024 and self.start * 2 > len(self.seqs):  # compact now and then
            del self.seqs[: self.start]
            del self.sigs[: self.start]
            self.start = 0


class AddressIndex:
    """Listens to a chain and answers "newest transactions referencing this address"."""

    def __init__(self, chain: Chain) -> None:
        self._chain = chain
        self._seq = 0
        self._by_sig: dict[str, _Entry] = {}
        self._by_key: dict[bytes, _Postings] = {}
        self._order: deque[str] = deque()
        chain.add_listener(self._on_transaction)
        chain.add_slot_listener(self._on_slot)

    def _on_transaction(self, signature: Signature, tx: VersionedTransaction,
                        err: TransactionErrorType | None, slot: int) -> None:
        sig = str(signature)
        if sig in self._by_sig:
            return
        record = self._chain.transaction(sig)
        keys = list(tx.message.account_keys)
        if record is not None:
            keys += [*record.loaded_writable, *record.loaded_readonly]
        memo = memo_field(tx) if any(k in _MEMO_PROGRAMS for k in keys) else None
        self._seq += 1
        unique = tuple(dict.fromkeys(bytes(k) for k in keys))
        self._by_sig[sig] = _Entry(self._seq, slot, memo, unique)
        self._order.append(sig)
        for key in unique:
            postings = self._by_key.get(key)
            if postings is None:
                postings = self._by_key[key] = _Postings()
            postings.seqs.append(self._seq)
            postings.sigs.append(sig)

    def _on_slot(self, slot: int, block_height: int) -> None:
        """Forget transactions the chain evicted (oldest first, as the chain evicts)."""
        order, ledger = self._order, self._chain.ledger
        while order and order[0] not in ledger:
            entry = self._by_sig.pop(order.popleft())
            for key in entry.keys:
                postings = self._by_key[key]
                postings.drop_first()
                if postings.start >= len(postings.seqs):
                    del self._by_key[key]

    def index_record(self, record: TxRecord) -> None:
        """Index a record restored from disk (it is in the ledger already, no listener ran)."""
        self._on_transaction(Signature.from_string(record.signature), record.tx, record.err,
                             record.slot)

    def memo(self, signature: str) -> str | None:
        entry = self._by_sig.get(signature)
        return entry.memo if entry is not None else None

    def signatures(
        self,
        address: bytes,
        *,
        limit: int = MAX_LIMIT,
        before: str | None = None,
        until: str | None = None,
        max_slot: int | None = None,
    ) -> list[dict[str, Any]]:
        """Solana's ``getSignaturesForAddress`` result, newest first.

        ``before``: start after this signature (exclusive; unknown -> empty, as Agave);
        ``until``: stop at it (exclusive; unknown -> no bound); ``max_slot``: leave out
        transactions of later slots (the commitment's bank).
        """
        postings = self._by_key.get(address)
        if postings is None:
            return []
        seqs, sigs = postings.seqs, postings.sigs
        end = len(seqs)
        if before is not None:
            entry = self._by_sig.get(before)
            if entry is None:
                return []
            end = bisect_left(seqs, entry.seq, postings.start, end)
        stop_seq = 0
        if until is not None:
            until_entry = self._by_sig.get(until)
            if until_entry is not None:
                stop_seq = until_entry.seq
        out: list[dict[str, Any]] = []
        chain = self._chain
        i = end - 1
        while i >= postings.start and len(out) < limit and seqs[i] > stop_seq:
            sig = sigs[i]
            i -= 1
            entry = self._by_sig[sig]
            if max_slot is not None and entry.slot > max_slot:
                continue
            record = chain.transaction(sig)
            status = chain.signature_status(sig)
            if record is None or status is None:
                break  # evicted: everything older is gone too
            out.append({
                "signature": sig,
                "slot": entry.slot,
                "err": record.err_json,
                "memo": entry.memo,
                "blockTime": record.block_time,
                "confirmationStatus": status.confirmation_status,
            })
        return out
