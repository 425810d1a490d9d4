"""The RPC server's fault switches, with the send rules: a ``sendTransaction`` that is
accepted and then never lands (``drop``) or lands K slots later (``landLate``)."""

from __future__ import annotations

import contextlib
import heapq
import logging

from solders.hash import Hash
from solders.transaction import VersionedTransaction

from localnet.chain import Chain
from localnet.faults.config import MAX_STICKY, RPC, FaultConfig, Json
from localnet.faults.controller import FaultController, RuleState
from localnet.txerrors import ChainError

log = logging.getLogger(__name__)


class RpcFaults(FaultController):
    """The RPC server's switches, plus what happens to accepted transactions (drop, land late)."""

    def __init__(self, chain: Chain, config: FaultConfig | None = None) -> None:
        self.chain = chain
        self._drop_state: RuleState | None = None
        self._late_state: RuleState | None = None
        self._sticky: dict[str, Hash] = {}  # dropped for good: signature -> its blockhash
        self._late: list[tuple[int, int, str]] = []  # heap of (due slot, seq, signature)
        self._late_txs: dict[str, tuple[VersionedTransaction, bool]] = {}
        self._late_seq = 0
        super().__init__(RPC, config)
        chain.add_slot_listener(self._on_slot)

    def close(self) -> None:
        self.closing.set()
        with contextlib.suppress(ValueError):
            self.chain.remove_slot_listener(self._on_slot)

    def _apply_send(self, config: FaultConfig, changed: set[str]) -> None:
        if "drop" in changed:
            self._drop_state = None if config.drop is None else RuleState.of(config.drop.trigger)
            if config.drop is None:
                self._sticky.clear()
        if "landLate" in changed:
            self._late_state = (None if config.land_late is None
                                else RuleState.of(config.land_late.trigger))

    def _state_json(self) -> dict[str, Json]:
        return {
            **super()._state_json(),
            "drop": None if self._drop_state is None else self._drop_state.to_json(),
            "landLate": None if self._late_state is None else self._late_state.to_json(),
            "pendingLate": len(self._late_txs),
            "stickyDropped": len(self._sticky),
        }

    def on_send(self, tx: VersionedTransaction) -> bool:
        """``sendTransaction`` accepted ``tx``: ``True`` to execute it now, ``False`` if a
        fault took it (dropped, or queued to land late)."""
        if (not self._sticky and not self._late_txs and self._drop_state is None
                and self._late_state is None):
            return True
        sig = str(tx.signatures[0])
        if self.chain.transaction(sig) is not None:
            return True  # landed already: the chain ignores it, no fault to spend on it
        if sig in self._sticky:
            self.count("drop", f"sendTransaction {sig} (sticky: dropped before)")
            return False
        pending = self._late_txs.get(sig)
        if pending is not None and pending[1]:
            self.count("resendIgnored", f"sendTransaction {sig} (sticky: waiting to land late)")
            return False
        drop, late = self.config.drop, self.config.land_late
        if drop is not None and self._drop_state is not None and self._drop_state.consult(
                self.rng):
            if drop.sticky:
                if len(self._sticky) >= MAX_STICKY:
                    del self._sticky[next(iter(self._sticky))]
                self._sticky[sig] = tx.message.recent_blockhash
            self.count("drop", f"sendTransaction {sig}{' (sticky)' if drop.sticky else ''}")
            return False
        if late is not None and self._late_state is not None and self._late_state.consult(
                self.rng):
            due = self.chain.slot + late.slots
            if sig not in self._late_txs:
                self._late_seq += 1
                heapq.heappush(self._late, (due, self._late_seq, sig))
                self._late_txs[sig] = (tx, late.sticky)
            self.count("landLate", f"sendTransaction {sig}: executes at slot {due}")
            return False
        return True

    def _on_slot(self, slot: int, block_height: int) -> None:
        late = self._late
        while late and late[0][0] <= slot:
            _, _, sig = heapq.heappop(late)
            entry = self._late_txs.pop(sig, None)
            if entry is None:
                continue
            if self.chain.transaction(sig) is not None:
                log.info("fault rpc late %s: a rebroadcast already landed it", sig)
                continue
            try:
                self.chain.send(entry[0])
            except ChainError as exc:
                self.count("lateExpired", f"{sig} did not land at slot {slot}: {exc}")
            else:
                self.count("lateLanded", f"{sig} landed at slot {slot}")
        sticky = self._sticky
        while sticky:  # forget sticky drops whose blockhash expired: they can never land
            first = next(iter(sticky))
            if self.chain.is_blockhash_valid(sticky[first]):
                break
            del sticky[first]

