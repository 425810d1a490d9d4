"""When subscriptions fire: the chain's landed transactions and slots, per commitment level.

A transaction that lands is *processed* at once; its slot is *confirmed* when the next slot
exists and *finalized* 32 slots later (as :meth:`Chain.signature_status` reports it). The hub
keeps, for each of the last 32 slots, what landed in it and which accounts it wrote, and
delivers each at the moment its slot reaches a subscription's commitment. Account state is
LiteSVM's latest whatever the commitment (as every localnet read), so a ``finalized``
account notification carries the current state of an account written 32 slots ago.

A ``signatureSubscribe`` whose transaction already reached its commitment fires at once
(Agave only fires on the next commitment change; a client that subscribes after sending
would otherwise wait forever on a fast localnet), then, as on Solana, it is removed.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field

from solders.account import Account
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from solders.transaction_status import TransactionErrorType

from localnet.chain import COMMITMENTS, FINALIZATION_DEPTH, Chain
from localnet.messages import writable_flags
from localnet.programs import SYSTEM_PROGRAM_ID
from localnet.pubsub.subscriptions import Subscriber, Subscription
from localnet.rpc.accounts import AccountMethods
from localnet.rpc.filters import matches_all
from localnet.rpc.params import RpcError
from localnet.txerrors import Json

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Landed:
    """A landed transaction as the subscriptions need it."""

    signature: str
    err: Json
    logs: list[str]
    keys: frozenset[Pubkey]
    writable: tuple[Pubkey, ...]


@dataclass(slots=True)
class SlotEvents:
    landed: list[Landed] = field(default_factory=list)
    written: dict[Pubkey, None] = field(default_factory=dict)  # ordered set


class _Accounts(AccountMethods):
    """The RPC's account encoding (``binary``/``base58``/``base64``/``jsonParsed``)."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain


class Hub:
    """Every subscription of one chain, across connections; registers the chain listeners."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self._ids = itertools.count(1)
        self._subs: dict[int, Subscription] = {}
        self._slots: dict[int, SlotEvents] = {}
        self._accounts = _Accounts(chain)
        chain.add_listener(self._on_transaction)
        chain.add_slot_listener(self._on_slot)

    def close(self) -> None:
        self.chain.remove_listener(self._on_transaction)
        self.chain.remove_slot_listener(self._on_slot)
        self._subs.clear()

    # -- registry ------------------------------------------------------------------------------

    def add(self, sub: Subscription) -> int:
        sub.id = next(self._ids)
        self._subs[sub.id] = sub
        return sub.id

    def remove(self, owner: Subscriber, kind: str, sub_id: int) -> bool:
        """Unsubscribe; ``False`` if ``sub_id`` is not a live ``kind`` subscription of ``owner``."""
        sub = self._subs.get(sub_id)
        if sub is None or sub.owner is not owner or sub.kind != kind:
            return False
        del self._subs[sub_id]
        return True

    def drop(self, owner: Subscriber) -> None:
        """A connection closed: every subscription it held ends."""
        for sub_id in [i for i, s in self._subs.items() if s.owner is owner]:
            del self._subs[sub_id]

    def __len__(self) -> int:
        return len(self._subs)

    def catch_up(self, sub: Subscription) -> None:
        """Right after subscribing: a signature already at its commitment fires now."""
        if sub.kind != "signature" or sub.signature is None:
            return
        status = self.chain.signature_status(sub.signature)
        if status is None:
            return
        reached = COMMITMENTS.index(status.confirmation_status)
        if reached >= COMMITMENTS.index(sub.commitment):
            self._fire_signature(sub, status.slot, status.err_json)

    # -- chain hooks ---------------------------------------------------------------------------

    def _on_transaction(self, signature: Signature, tx: VersionedTransaction,
                        err: TransactionErrorType | None, slot: int) -> None:
        record = self.chain.transaction(signature)
        if record is None:
            return
        keys = record.account_keys
        flags = writable_flags(tx.message, len(record.loaded_writable),  # type: ignore[arg-type]
                               len(record.loaded_readonly))
        landed = Landed(record.signature, record.err_json, record.logs, frozenset(keys),
                        tuple(k for k, w in zip(keys, flags, strict=True) if w))
        events = self._slots.setdefault(slot, SlotEvents())
        events.landed.append(landed)
        events.written.update(dict.fromkeys(landed.writable))
        for sub in self._of_kind("signature"):
            if sub.received and sub.signature == landed.signature:
                sub.received = False
                sub.owner.notify(sub.notification, sub.id,
                                 {"context": {"slot": slot}, "value": "receivedSignature"})
        self._deliver("processed", slot, [landed], landed.writable)

    def _on_slot(self, slot: int, block_height: int) -> None:
        for sub in self._of_kind("slot"):
            sub.owner.notify(sub.notification, sub.id, {
                "parent": slot - 1, "root": max(0, slot - FINALIZATION_DEPTH), "slot": slot})
        root = slot - FINALIZATION_DEPTH
        if root > 0:
            for sub in self._of_kind("root"):
                sub.owner.notify(sub.notification, sub.id, root)
        confirmed = self._slots.get(slot - 1)
        if confirmed is not None:
            self._deliver("confirmed", slot - 1, confirmed.landed, confirmed.written)
        finalized = self._slots.pop(root, None)
        if finalized is not None:
            self._deliver("finalized", root, finalized.landed, finalized.written)
        for old in [s for s in self._slots if s < root]:  # slots the clock jumped over
            del self._slots[old]

    # -- delivery ------------------------------------------------------------------------------

    def _of_kind(self, kind: str, commitment: str | None = None) -> list[Subscription]:
        return [s for s in self._subs.values()
                if s.kind == kind and (commitment is None or s.commitment == commitment)]

    def _deliver(self, commitment: str, slot: int, landed: list[Landed],
                 written: tuple[Pubkey, ...] | dict[Pubkey, None]) -> None:
        if not self._subs:
            return
        for sub in self._of_kind("signature", commitment):
            for tx in landed:
                if tx.signature == sub.signature:
                    self._fire_signature(sub, slot, tx.err)
        for sub in self._of_kind("logs", commitment):
            for tx in landed:
                if sub.mentions is None or sub.mentions in tx.keys:
                    value = {"signature": tx.signature, "err": tx.err, "logs": tx.logs}
                    sub.owner.notify(sub.notification, sub.id,
                                     {"context": {"slot": slot}, "value": value})
        accounts = self._of_kind("account", commitment)
        programs = self._of_kind("program", commitment)
        if accounts or programs:
            for key in written:
                self._account_changed(key, slot, accounts, programs)

    def _fire_signature(self, sub: Subscription, slot: int, err: Json) -> None:
        """A signature subscription fires once and ends (Solana's auto-unsubscribe)."""
        if self._subs.pop(sub.id, None) is None:
            return
        sub.owner.notify(sub.notification, sub.id,
                         {"context": {"slot": slot}, "value": {"err": err}})

    def _account_changed(self, key: Pubkey, slot: int, accounts: list[Subscription],
                         programs: list[Subscription]) -> None:
        acc = self.chain.get_account(key)
        if acc is None:  # closed: Solana notifies an empty system account
            acc = Account(0, b"", SYSTEM_PROGRAM_ID)
        for sub in accounts:
            if sub.key == key and (value := self._account_json(sub, acc)) is not None:
                sub.owner.notify(sub.notification, sub.id,
                                 {"context": {"slot": slot}, "value": value})
        for sub in programs:
            if sub.key != acc.owner or not matches_all(sub.filters, acc.data):
                continue
            value = self._account_json(sub, acc)
            if value is not None:
                sub.owner.notify(sub.notification, sub.id, {
                    "context": {"slot": slot}, "value": {"pubkey": str(key), "account": value}})

    def _account_json(self, sub: Subscription, acc: Account) -> dict[str, Json] | None:
        try:
            return self._accounts._account_json(acc, sub.encoding, sub.data_slice)
        except RpcError as e:  # base58 of data over 128 bytes: nothing to send
            log.debug("subscription %d: %s", sub.id, e.message)
            return None
