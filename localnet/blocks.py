"""The cluster's blocks: one per slot, for ``getBlock``, ``getBlocks``, ``getBlockTime`` and
``getRecentPrioritizationFees``.

LiteSVM has no blocks; the :class:`~localnet.chain.Chain` makes one slot a block (every slot
has a leader here, none is skipped). This index listens to the chain and remembers, per
slot, its blockhash, parent, height, time and the signatures that landed in it, in landing
order; the transactions themselves stay in the ledger. It forgets a block when the chain's
ledger window (``history_slots``) leaves it, so a block is never listed without the
transactions it held.

One index per chain, made by the first :func:`blocks_of` (the RPC and PubSub apps call it
when built, and the chain's store when it attaches): blocks before that are not known, as a
node knows nothing before its snapshot. A persisted chain saves each block with its slot
(:mod:`localnet.persist`) and hands the saved ones back at start (:meth:`BlockIndex.restore`).

Must not import the engine (``pipeline``, ``orderflow``, ``ingress``, ``sinks``).
"""

from __future__ import annotations

import weakref
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from solders.transaction_status import TransactionErrorType

from localnet.messages import writable_flags
from localnet.txerrors import Json

if TYPE_CHECKING:
    from localnet.chain import Chain

COMPUTE_BUDGET_PROGRAM_ID = Pubkey.from_string("ComputeBudget111111111111111111111111111111")
_SET_COMPUTE_UNIT_PRICE = 3
MAX_PRIORITIZATION_SLOTS = 150
"""Agave's prioritization fee cache holds the last 150 blocks."""


@dataclass(slots=True)
class Block:
    slot: int
    parent_slot: int
    blockhash: str
    previous_blockhash: str
    block_height: int
    block_time: int
    signatures: list[str] = field(default_factory=list)
    # (compute unit price in micro-lamports, write-locked keys) per transaction
    fees: list[tuple[int, frozenset[Pubkey]]] = field(default_factory=list)

    def to_json(self) -> Json:
        return {"slot": self.slot, "parent": self.parent_slot, "hash": self.blockhash,
                "prev": self.previous_blockhash, "height": self.block_height,
                "time": self.block_time, "sigs": self.signatures,
                "fees": [[price, sorted(str(k) for k in keys)] for price, keys in self.fees]}

    @classmethod
    def from_json(cls, doc: Json) -> Block:
        fees = [(int(p), frozenset(Pubkey.from_string(k) for k in keys))
                for p, keys in doc["fees"]]
        return cls(doc["slot"], doc["parent"], doc["hash"], doc["prev"], doc["height"],
                   doc["time"], list(doc["sigs"]), fees)

    def prioritization_fee(self, accounts: list[Pubkey]) -> int:
        """Agave's per-block fee: the lowest price of any transaction in it, raised to the
        highest, over ``accounts``, of the lowest price of the transactions write-locking it."""
        if not self.fees:
            return 0
        fee = min(price for price, _ in self.fees)
        for key in accounts:
            prices = [price for price, keys in self.fees if key in keys]
            if prices:
                fee = max(fee, min(prices))
        return fee


def compute_unit_price(tx: VersionedTransaction) -> int:
    """The ``SetComputeUnitPrice`` of a transaction (micro-lamports per CU), 0 without one."""
    msg = tx.message
    keys = msg.account_keys
    for ix in msg.instructions:
        if keys[ix.program_id_index] == COMPUTE_BUDGET_PROGRAM_ID:
            data = bytes(ix.data)
            if len(data) == 9 and data[0] == _SET_COMPUTE_UNIT_PRICE:
                return int.from_bytes(data[1:9], "little")
    return 0


_INDEXES: weakref.WeakKeyDictionary[Chain, BlockIndex] = weakref.WeakKeyDictionary()


def blocks_of(chain: Chain) -> BlockIndex:
    """The chain's block index, started on first use."""
    index = _INDEXES.get(chain)
    if index is None:
        index = _INDEXES[chain] = BlockIndex(chain)
    return index


class BlockIndex:
    """Blocks by slot, oldest first, within the chain's ledger window.

    It holds its chain weakly (the chain's listener lists hold the index), so a chain no one
    uses is collected with its index.
    """

    def __init__(self, chain: Chain) -> None:
        self._chain_ref = weakref.ref(chain)
        self._blocks: deque[Block] = deque()
        current = str(chain.latest_blockhash()[0])
        self._blocks.append(Block(chain.slot, max(0, chain.slot - 1), current, current,
                                  chain.block_height, chain.svm.get_clock().unix_timestamp))
        chain.add_listener(self._on_transaction)
        chain.add_slot_listener(self._on_slot)

    @property
    def _chain(self) -> Chain:
        chain = self._chain_ref()
        assert chain is not None, "the chain is gone"
        return chain

    def _on_transaction(self, signature: Signature, tx: VersionedTransaction,
                        err: TransactionErrorType | None, slot: int) -> None:
        block = self._blocks[-1]
        block.signatures.append(str(signature))
        msg = tx.message
        record = self._chain.transaction(signature)
        if record is None or not isinstance(msg, Message | MessageV0):
            return
        keys = record.account_keys
        flags = writable_flags(msg, len(record.loaded_writable), len(record.loaded_readonly))
        block.fees.append((compute_unit_price(tx),
                           frozenset(k for k, w in zip(keys, flags, strict=True) if w)))

    def _on_slot(self, slot: int, block_height: int) -> None:
        parent = self._blocks[-1]
        chain = self._chain
        self._blocks.append(Block(slot, parent.slot, str(chain.latest_blockhash()[0]),
                                  parent.blockhash, block_height,
                                  chain.svm.get_clock().unix_timestamp))
        oldest = slot - chain.ledger.history_slots
        while self._blocks and self._blocks[0].slot < oldest:
            self._blocks.popleft()

    def restore(self, saved: Iterable[Block]) -> None:
        """Put the blocks a previous run saved before the ones seen since the restart; the
        first block since names the last saved one as its parent."""
        first = self._blocks[0]
        older = [b for b in saved if b.slot < first.slot]
        if older:
            first.parent_slot, first.previous_blockhash = older[-1].slot, older[-1].blockhash
            self._blocks.extendleft(reversed(older))

    def since(self, slot: int) -> list[Block]:
        """The blocks held from ``slot`` on (the last one may still be filling)."""
        out: list[Block] = []
        for block in reversed(self._blocks):  # from the newest: usually one or two
            if block.slot < slot:
                break
            out.append(block)
        return out[::-1]

    @property
    def first_available(self) -> int:
        return self._blocks[0].slot

    def get(self, slot: int) -> Block | None:
        blocks = self._blocks
        index = slot - blocks[0].slot
        if 0 <= index < len(blocks) and blocks[index].slot == slot:
            return blocks[index]
        return next((b for b in blocks if b.slot == slot), None)

    def slots(self, start: int, end: int) -> list[int]:
        """Slots of the blocks held in ``[start, end]``, ascending."""
        return [b.slot for b in self._blocks if start <= b.slot <= end]

    def recent(self, upto: int, count: int = MAX_PRIORITIZATION_SLOTS) -> list[Block]:
        """The last ``count`` blocks up to slot ``upto``, ascending."""
        held = [b for b in self._blocks if b.slot <= upto]
        return held[-count:]
