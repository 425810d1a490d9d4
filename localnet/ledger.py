"""The cluster's ledger: records of landed transactions, bounded in age and number.

A record is dropped once it is older than ``history_slots`` slots, or earlier when more
than ``max_history`` records are held -- but never before it is ``MIN_HISTORY_SLOTS`` (152)
slots old, because until then its blockhash may still be valid and the record is what
stops a rebroadcast from executing twice. After eviction a signature is unknown (like a
node that pruned its ledger).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from solders.signature import Signature

from localnet.records import SignatureStatus, TxRecord

MAX_PROCESSING_AGE = 150
"""Blocks a blockhash stays usable: ``lastValidBlockHeight = issued height + 150``."""
FINALIZATION_DEPTH = 32
"""Slots after which a slot counts as rooted (finalized), as on Solana."""
MIN_HISTORY_SLOTS = MAX_PROCESSING_AGE + 2
"""Records younger than this are never evicted: they are what makes dedup safe."""


class Ledger:
    """Landed transactions by signature, oldest first for eviction."""

    def __init__(self, history_slots: int, max_history: int) -> None:
        if history_slots < MIN_HISTORY_SLOTS:
            raise ValueError(f"history_slots must be >= {MIN_HISTORY_SLOTS}")
        self.history_slots = history_slots
        self.max_history = max_history
        self.landed = 0  # transactions that landed since genesis (failed ones included)
        self._records: dict[str, TxRecord] = {}
        self._order: deque[tuple[int, str]] = deque()
        # Evicted records read back from disk when the chain persists (localnet.persist):
        # memory stays bounded and old signatures stay verifiable, as on a real RPC node.
        self.archive: Callable[[str], TxRecord | None] | None = None

    def __contains__(self, sig: str) -> bool:
        """In the recent window (what dedup needs: older blockhashes cannot land again)."""
        return sig in self._records

    def get(self, sig: Signature | str) -> TxRecord | None:
        key = sig if isinstance(sig, str) else str(sig)
        rec = self._records.get(key)
        if rec is None and self.archive is not None:
            return self.archive(key)
        return rec

    def add(self, record: TxRecord) -> None:
        self._records[record.signature] = record
        self._order.append((record.slot, record.signature))
        self.landed += 1

    def evict(self, slot: int) -> None:
        """Drop the records too old to keep at ``slot`` (see the module docstring)."""
        order, records = self._order, self._records
        oldest_kept = slot - self.history_slots
        oldest_safe = slot - MIN_HISTORY_SLOTS
        while order:
            landed_at, sig = order[0]
            if landed_at < oldest_kept or (len(records) > self.max_history
                                           and landed_at < oldest_safe):
                order.popleft()
                records.pop(sig, None)
            else:
                break

    def status(self, sig: Signature | str, slot: int) -> SignatureStatus | None:
        """Solana's status at ``slot``: processed, confirmed (a later slot exists), finalized."""
        rec = self.get(sig)
        if rec is None:
            return None
        age = slot - rec.slot
        if age >= FINALIZATION_DEPTH:
            return SignatureStatus(rec.slot, None, rec.err_json, "finalized")
        return SignatureStatus(
            rec.slot, age, rec.err_json, "confirmed" if age > 0 else "processed"
        )
