"""Find an order's landed swap on chain, by the Memo every engine transaction carries.

The journal records each signed transaction before it is sent, and that alone keeps an
order to one swap while the journal is intact. This module is the second, independent
line: every swap the engine builds carries an SPL Memo ``orderflow:<orderId>``, and
before an order without a live journal record builds a transaction, the wallet's recent
history is asked whether a swap for that order already landed. So a journal that lost
rows (a restore, a non-durable database) still cannot cause a second swap of a landed one.

What it cannot see: a transaction sent but not yet landed when its journal row was lost.
Only a durable journal closes that window (see README "Reliability").

Cost: the wallet's history is tailed incrementally with ``getSignaturesForAddress``
(``until`` = the newest signature already seen). Concurrent callers share one call: a
lookup waits for the first sync that *started* after it was asked, so it sees every
transaction that landed before it asked.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from solders.transaction import VersionedTransaction

log = logging.getLogger(__name__)

MEMO_PREFIX = "orderflow:"
MEMO_PROGRAMS = frozenset({
    "MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr",  # SPL Memo v3
    "Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo",  # SPL Memo v1
})
PAGE = 1000  # getSignaturesForAddress's maximum limit
_MEMO_HEAD = re.compile(r"\[(\d+)\] ")


def order_memo(order_id: str) -> str:
    return f"{MEMO_PREFIX}{order_id}"


def parse_memos(field: str | None) -> list[str]:
    """Solana's ``memo`` field of ``getSignaturesForAddress``: ``"[len] text"`` per memo
    (``len`` in UTF-8 bytes), several joined by ``"; "``. Parsed by length, so a memo that
    itself contains ``"; "`` is read whole."""
    if not field:
        return []
    raw = field.encode()
    out: list[str] = []
    pos = 0
    while pos < len(raw):
        m = _MEMO_HEAD.match(raw[pos:].decode(errors="replace"))
        if m is None:
            break
        start = pos + len(m.group(0).encode())
        end = start + int(m.group(1))
        out.append(raw[start:end].decode(errors="replace"))
        pos = end + 2  # "; "
    return out


def has_memo(tx: VersionedTransaction, text: str) -> bool:
    """Whether ``tx`` carries a Memo instruction with exactly ``text``."""
    message = tx.message
    keys = message.account_keys
    data = text.encode()
    for ix in message.instructions:
        if str(keys[ix.program_id_index]) in MEMO_PROGRAMS and bytes(ix.data) == data:
            return True
    return False


@dataclass(frozen=True, slots=True)
class SignatureEntry:
    signature: str
    slot: int
    err: str | None
    memo: str | None
    block_time: int | None = None  # unix seconds, when the RPC knows it


@dataclass(frozen=True, slots=True)
class LandedSwap:
    signature: str
    slot: int


class SignatureSource(Protocol):
    async def signatures_for_address(self, address: str, *, before: str | None = None,
                                     until: str | None = None,
                                     limit: int = PAGE) -> list[SignatureEntry]:
        """Newest first, as Solana's ``getSignaturesForAddress``."""
        ...


class WalletHistory:
    """The wallet's successful transactions that carry an order memo, by order id.

    ``lookback`` bounds how far back the first sync reads (in signatures); ``keep`` bounds
    memory (the oldest orders are forgotten first).
    """

    def __init__(self, chain: SignatureSource, wallet: str, *, lookback: int = 10_000,
                 keep: int = 200_000) -> None:
        self._chain = chain
        self._wallet = wallet
        self._lookback = lookback
        self._keep = keep
        self._by_order: OrderedDict[str, list[LandedSwap]] = OrderedDict()
        self._newest: str | None = None
        self._started = 0  # syncs started
        self._done = 0  # syncs finished (successfully or not), in order
        self._running: asyncio.Task[None] | None = None

    async def landed_swap(self, order_id: str) -> LandedSwap | None:
        """The order's landed swap, if the chain has one (the first, if ever more)."""
        await self.sync()
        found = self._by_order.get(order_id)
        if not found:
            return None
        if len(found) > 1:
            log.error("order %s has %d landed swaps on chain: %s", order_id, len(found),
                      ", ".join(f.signature for f in found))
        return found[0]

    async def sync(self) -> None:
        """Return once a sync that started after this call has finished."""
        needed = self._started + 1
        while self._done < needed:
            if self._running is None:
                self._started += 1
                self._running = asyncio.create_task(self._sync_once(), name="wallet-history")
            task = self._running
            try:
                await asyncio.shield(task)
            finally:
                if task.done() and self._running is task:
                    self._running = None
                    self._done += 1

    async def _sync_once(self) -> None:
        until, first = self._newest, self._newest is None
        before: str | None = None
        fetched: list[SignatureEntry] = []
        while True:
            page = await self._chain.signatures_for_address(
                self._wallet, before=before, until=until, limit=PAGE)
            fetched.extend(page)
            if len(page) < PAGE or (first and len(fetched) >= self._lookback):
                break
            before = page[-1].signature
        if fetched:
            self._newest = fetched[0].signature
        self._index(fetched[::-1])

    def _index(self, entries: Sequence[SignatureEntry]) -> None:
        for entry in entries:  # oldest first
            if entry.err is not None:
                continue
            for memo in parse_memos(entry.memo):
                if memo.startswith(MEMO_PREFIX):
                    order_id = memo[len(MEMO_PREFIX):]
                    self._by_order.setdefault(order_id, []).append(
                        LandedSwap(entry.signature, entry.slot))
                    self._by_order.move_to_end(order_id)
        while len(self._by_order) > self._keep:
            self._by_order.popitem(last=False)
