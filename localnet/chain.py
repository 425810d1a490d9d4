"""A Solana cluster we run ourselves: LiteSVM plus the parts of a validator it lacks.

LiteSVM is the real runtime (real programs, real signature checks, real fees),
but it has no slots, no block height, no blockhash ageing, no signature
status and no transaction records. :class:`Chain` adds exactly those, with
Solana's rules, so that an engine talking to it through JSON-RPC
(:mod:`localnet.rpc`) sees what it would see on a real cluster:

* one slot every ``slot_ms``, one block per slot, a fresh blockhash per slot;
* a blockhash is valid while ``block_height <= lastValidBlockHeight``
  (issued height + 150); LiteSVM's own check (latest blockhash only) is off;
* a signature that already landed is never executed twice;
* a transaction that fails *after* its fee was charged lands with its error
  (LiteSVM commits the fee and nothing else); one that fails before that
  (bad signature, unknown fee payer, fee unpaid, expired blockhash) does not
  land, exactly as a leader would drop it;
* status goes processed -> confirmed (a later slot exists) -> finalized
  (32 slots later).

What LiteSVM loads by default (checked, solders 0.29): System, Compute
Budget, Address Lookup Table, SPL Token, Token-2022, Associated Token Account
and both Memo programs. The native mint account does not exist in LiteSVM;
:class:`Chain` writes it with the mainnet layout so wrap/unwrap works.

Rooms: the cluster itself is here; what it remembers is in :mod:`localnet.records`, Solana's
wire encoding of it in :mod:`localnet.encoding` and :mod:`localnet.txerrors`, token account
parsing in :mod:`localnet.token_accounts`, airdrops and mints in :mod:`localnet.faucet`.

Single-threaded: every method must be called from one thread (the event loop).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from array import array
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

from solders.account import Account
from solders.clock import Clock
from solders.epoch_schedule import EpochSchedule
from solders.hash import Hash
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.token.associated import get_associated_token_address
from solders.token.state import Mint
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata
from solders.transaction_status import TransactionErrorFieldless, TransactionErrorType

from localnet.encoding import transaction_result_json
from localnet.faucet import Faucet
from localnet.ledger import FINALIZATION_DEPTH, MAX_PROCESSING_AGE, MIN_HISTORY_SLOTS, Ledger
from localnet.messages import loaded_addresses, with_blockhash, writable_flags
from localnet.programs import (
    MINT_LEN,
    NATIVE_MINT,
    SYSTEM_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
    U64_MAX,
)
from localnet.records import SignatureStatus, Simulation, TxRecord
from localnet.token_accounts import TokenAccounts
from localnet.txerrors import ChainError, Json, error_json

log = logging.getLogger(__name__)

LAMPORTS_PER_SIGNATURE = 5000
CLOCK_RESYNC_S = 2.0
"""A clock stalled longer than this restarts its schedule instead of catching up."""

COMMITMENTS = ("processed", "confirmed", "finalized")


TxListener = Callable[[Signature, VersionedTransaction, TransactionErrorType | None, int], None]
SlotListener = Callable[[int, int], None]
RejectListener = Callable[[VersionedTransaction, TransactionErrorType], None]
WriteListener = Callable[[Sequence[Pubkey]], None]
"""Told the addresses a transaction or a direct write may have changed (persistence, forks)."""


class AccountSource(Protocol):
    """Where accounts the chain does not hold come from (a forked cluster, :mod:`localnet.fork`)."""

    def ensure(self, keys: Sequence[Pubkey]) -> None:
        """Bring the accounts among ``keys`` that are not local into the chain, if they exist."""

    def prepare(self, msg: Message | MessageV0) -> None:
        """Bring everything executing ``msg`` reads: its keys, lookup tables, program data."""

    def token_accounts(self, owner: Pubkey, flt: dict[str, str]) -> None:
        """Bring ``owner``'s token accounts matching ``flt`` (``mint`` or ``programId``)."""


class Chain:
    """An in-process Solana cluster on LiteSVM with Solana's slot, blockhash and status rules.

    ``history_slots`` / ``max_history`` bound memory (see :mod:`localnet.ledger`): after
    eviction ``signature_status`` and ``get_transaction`` return ``None``. Defaults: one
    hour of slots at 400 ms, at most 100k records. A record measured ~3 KB (a SOL + token
    transfer; mostly LiteSVM's metadata and logs), so the cap is ~300 MB at full load.
    """

    def __init__(
        self,
        *,
        slot_ms: int = 400,
        history_slots: int = 9_000,
        max_history: int = 100_000,
        faucet_lamports: int = 500_000_000 * 10**9,
        faucet: Keypair | None = None,
        genesis_seed: bytes | None = None,
    ) -> None:
        if slot_ms <= 0:
            raise ValueError("slot_ms must be positive")
        self.slot_ms = slot_ms
        self.ledger = Ledger(history_slots, max_history)
        svm = LiteSVM()
        svm.with_blockhash_check(False)  # we apply Solana's 150-block rule instead
        svm.with_transaction_history(0)  # we dedup and keep records ourselves
        svm.with_sigverify(True)
        self._svm = svm
        self._schedule = svm.get_epoch_schedule()
        self._slot = 0
        self._block_height = 0
        self._unix_ts = self._genesis_ts = int(time.time())
        # blockhash -> lastValidBlockHeight, and per-slot (hash, lvbh) for commitment views
        self._blockhashes: dict[Hash, int] = {}
        self._slot_hashes: deque[tuple[int, Hash, int]] = deque()
        self._parent_hashes: deque[tuple[int, Hash]] = deque(maxlen=512)  # MAX_ENTRIES
        self.tokens = TokenAccounts(svm)
        self._listeners: list[TxListener] = []
        self._slot_listeners: list[SlotListener] = []
        self._reject_listeners: list[RejectListener] = []
        self._write_listeners: list[WriteListener] = []
        self._tick_listeners: list[Callable[[], None]] = []
        self.source: AccountSource | None = None  # a forked cluster's accounts, on first use
        self._clock_changed: asyncio.Event | None = None
        self._set_clock()
        # Our own blockhash lineage: LiteSVM's starts from the same hash in every process, so
        # a transaction signed for an earlier chain would be valid on a fresh one.
        self.genesis_seed = genesis_seed if genesis_seed is not None else os.urandom(32)
        self.genesis_hash: Hash = Hash.hash(self.genesis_seed)
        self._issue_blockhash(self.genesis_hash)
        self.faucet = Faucet(self, faucet or Keypair())  # airdrops and mints, as transactions
        svm.set_account(self.faucet.pubkey(), Account(faucet_lamports, b"", SYSTEM_PROGRAM_ID))
        self.create_mint_at(NATIVE_MINT, 9, None)
        from localnet.history import AddressIndex  # it imports this module's types

        self.history = AddressIndex(self)  # getSignaturesForAddress, in O(limit)

    # -- clock ---------------------------------------------------------------------------------

    @property
    def slot(self) -> int:
        return self._slot

    @property
    def block_height(self) -> int:
        return self._block_height

    @property
    def svm(self) -> LiteSVM:
        """The underlying LiteSVM, for reads; writes that bypass :class:`Chain` skip its rules."""
        return self._svm

    @property
    def transaction_count(self) -> int:
        """Transactions that landed since genesis (failed ones included, as on Solana)."""
        return self.ledger.landed

    @property
    def epoch_schedule(self) -> EpochSchedule:
        return self._schedule

    def _set_clock(self) -> None:
        epoch = self._schedule.get_epoch(self._slot)
        self._svm.set_clock(
            Clock(
                self._slot,
                self._genesis_ts,
                epoch,
                self._schedule.get_leader_schedule_epoch(self._slot),
                self._unix_ts,
            )
        )

    def _issue_blockhash(self, blockhash: Hash) -> None:
        lvbh = self._block_height + MAX_PROCESSING_AGE
        self._blockhashes[blockhash] = lvbh
        self._slot_hashes.append((self._slot, blockhash, lvbh))

    def tick(self) -> None:
        """Advance one slot and one block.

        Issues a fresh blockhash, updates the Clock and SlotHashes sysvars,
        retires expired blockhashes and evicts old records.
        """
        for before in list(self._tick_listeners):
            before()  # persistence: the ending slot is made durable before a later one exists
        parent = self._slot_hashes[-1][1]
        self._parent_hashes.appendleft((self._slot, parent))
        self._slot += 1
        self._block_height += 1
        self._unix_ts = int(time.time())
        svm = self._svm
        svm.expire_blockhash()  # LiteSVM's own (durable nonces); transactions use ours
        self._issue_blockhash(Hash.hash(bytes(parent) + self._slot.to_bytes(8, "little")))
        self._set_clock()
        # SlotHashes holds the ancestors (newest first): lookup-table creation needs it
        svm.set_slot_hashes(self._parent_hashes)
        hashes = self._slot_hashes
        height = self._block_height
        while hashes and hashes[0][2] < height:
            del self._blockhashes[hashes.popleft()[1]]
        self.ledger.evict(self._slot)
        for cb in list(self._slot_listeners):
            try:
                cb(self._slot, height)
            except Exception:
                log.exception("slot listener failed")

    def clock_state(self) -> dict[str, Json]:
        """Slot, height, times and live blockhashes: what a restart resumes from."""
        return {
            "slot": self._slot, "block_height": self._block_height,
            "genesis_ts": self._genesis_ts, "landed": self.ledger.landed,
            "slot_hashes": [[s, str(h), lvbh] for s, h, lvbh in self._slot_hashes],
            "parent_hashes": [[s, str(h)] for s, h in self._parent_hashes],
        }

    def resume_clock(self, state: dict[str, Json]) -> None:
        """Continue from :meth:`clock_state`: the old chain's blockhashes stay valid."""
        self._slot, self._block_height = state["slot"], state["block_height"]
        self._genesis_ts, self.ledger.landed = state["genesis_ts"], state["landed"]
        self._unix_ts = max(int(time.time()), self._unix_ts)
        self._slot_hashes = deque((s, Hash.from_string(h), lvbh)
                                  for s, h, lvbh in state["slot_hashes"])
        self._blockhashes = {h: lvbh for _, h, lvbh in self._slot_hashes}
        self._parent_hashes = deque(((s, Hash.from_string(h)) for s, h in state["parent_hashes"]),
                                    maxlen=512)
        self._set_clock()
        self._svm.set_slot_hashes(self._parent_hashes)

    def advance(self, slots: int) -> None:
        """Tick ``slots`` slots at once (e.g. to expire every blockhash issued so far)."""
        for _ in range(slots):
            self.tick()

    def set_slot_ms(self, slot_ms: int) -> None:
        """Change the slot time; a running :meth:`run_clock` switches to it at once."""
        if slot_ms <= 0:
            raise ValueError("slot_ms must be positive")
        self.slot_ms = slot_ms
        if self._clock_changed is not None:
            self._clock_changed.set()

    async def run_clock(self) -> None:
        """Tick every ``slot_ms`` until cancelled, on a fixed schedule (no drift).

        A late tick (the event loop was busy) is caught up at once, so block height
        follows wall time even at 20 ms slots; after a stall longer than
        ``CLOCK_RESYNC_S`` (debugger, suspend) the schedule restarts from now instead.
        Cost: about 0.1 ms of CPU a tick, i.e. ~1% of a core at 20 ms slots.
        """
        loop = asyncio.get_running_loop()
        changed = self._clock_changed = asyncio.Event()
        try:
            deadline = loop.time() + self.slot_ms / 1000
            while True:
                delay = deadline - loop.time()
                if delay > 0:
                    try:
                        async with asyncio.timeout(delay):
                            await changed.wait()
                    except TimeoutError:
                        pass
                    else:  # the slot time changed: the next slot is one new period away
                        changed.clear()
                        deadline = loop.time() + self.slot_ms / 1000
                        continue
                self.tick()
                period = self.slot_ms / 1000
                deadline += period
                if loop.time() - deadline > max(10 * period, CLOCK_RESYNC_S):
                    deadline = loop.time() + period  # stalled: resync rather than burst
        finally:
            if self._clock_changed is changed:
                self._clock_changed = None

    def commitment_slot(self, commitment: str = "processed") -> int:
        """Slot of the bank a commitment level reads: latest, one behind, or 32 behind."""
        if commitment == "processed":
            return self._slot
        if commitment == "confirmed":
            return max(0, self._slot - 1)
        return max(0, self._slot - FINALIZATION_DEPTH)

    def commitment_block_height(self, commitment: str = "processed") -> int:
        return self._block_height - (self._slot - self.commitment_slot(commitment))

    def latest_blockhash(self, commitment: str = "processed") -> tuple[Hash, int]:
        """(blockhash, lastValidBlockHeight) of the bank at ``commitment``."""
        want = self.commitment_slot(commitment)
        hashes = self._slot_hashes
        index = want - hashes[0][0]
        _, blockhash, lvbh = hashes[max(0, min(index, len(hashes) - 1))]
        return blockhash, lvbh

    def last_valid_block_height(self, blockhash: Hash) -> int | None:
        """``lastValidBlockHeight`` of a still-valid blockhash, else ``None``."""
        lvbh = self._blockhashes.get(blockhash)
        if lvbh is None or lvbh < self._block_height:
            return None
        return lvbh

    def is_blockhash_valid(self, blockhash: Hash) -> bool:
        return self.last_valid_block_height(blockhash) is not None

    def epoch_info(self, commitment: str = "processed") -> dict[str, Json]:
        """Solana's ``getEpochInfo`` value for the bank at ``commitment``."""
        slot = self.commitment_slot(commitment)
        epoch, index = self._schedule.get_epoch_and_slot_index(slot)
        return {
            "absoluteSlot": slot,
            "blockHeight": self.commitment_block_height(commitment),
            "epoch": epoch,
            "slotIndex": index,
            "slotsInEpoch": self._schedule.get_slots_in_epoch(epoch),
            "transactionCount": self.ledger.landed,
        }

    # -- listeners -----------------------------------------------------------------------------

    def add_listener(self, callback: TxListener) -> None:
        """Call ``callback(signature, tx, err, slot)`` after every transaction that lands."""
        self._listeners.append(callback)

    def remove_listener(self, callback: TxListener) -> None:
        self._listeners.remove(callback)

    def add_slot_listener(self, callback: SlotListener) -> None:
        """Call ``callback(slot, block_height)`` after every slot tick."""
        self._slot_listeners.append(callback)

    def remove_slot_listener(self, callback: SlotListener) -> None:
        self._slot_listeners.remove(callback)

    def add_reject_listener(self, callback: RejectListener) -> None:
        """Call ``callback(tx, err)`` when a submitted transaction was refused unlanded."""
        self._reject_listeners.append(callback)

    def remove_reject_listener(self, callback: RejectListener) -> None:
        self._reject_listeners.remove(callback)

    def add_write_listener(self, callback: WriteListener) -> None:
        """Call ``callback(addresses)`` after a landed transaction or a direct account write."""
        self._write_listeners.append(callback)

    def add_tick_listener(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` at the end of every slot, before the next one starts."""
        self._tick_listeners.append(callback)

    def written(self, keys: Sequence[Pubkey]) -> None:
        """Tell the write listeners ``keys`` changed (for writes made around :class:`Chain`)."""
        for cb in self._write_listeners:
            cb(keys)

    def genesis_accounts(self) -> list[Pubkey]:
        """The accounts :class:`Chain` writes at genesis (LiteSVM's own builtins aside)."""
        return [self.faucet.pubkey(), NATIVE_MINT]

    def rejected(self, tx: VersionedTransaction, err: TransactionErrorType) -> None:
        """A submitted ``tx`` was refused without landing (failed preflight, fee unpaid...).

        The RPC server reports it, so that whoever waits on the transaction (the market's
        reservation) learns at once instead of when its blockhash expires.
        """
        for cb in list(self._reject_listeners):
            try:
                cb(tx, err)
            except Exception:
                log.exception("reject listener failed")

    # -- accounts ------------------------------------------------------------------------------

    def get_account(self, pubkey: Pubkey) -> Account | None:
        if self.source is not None:
            self.source.ensure([pubkey])
        return self._svm.get_account(pubkey)

    def get_balance(self, pubkey: Pubkey) -> int:
        if self.source is not None:
            self.source.ensure([pubkey])
        return self._svm.get_balance(pubkey) or 0

    def set_account(self, pubkey: Pubkey, account: Account) -> None:
        """Write an account directly (setup, ``--account``, forks: bypasses the runtime)."""
        self.tokens.forget(pubkey)
        self._svm.set_account(pubkey, account)
        self.written([pubkey])

    def add_program(self, program_id: Pubkey, elf: bytes) -> None:
        """Deploy an SBF program at ``program_id`` (upgradeable loader, as test-validator)."""
        self._svm.add_program(program_id, elf)
        program = self._svm.get_account(program_id)
        assert program is not None
        self.written([Pubkey(bytes(program.data[4:36])), program_id])  # ProgramData first

    def minimum_balance_for_rent_exemption(self, data_len: int) -> int:
        return self._svm.minimum_balance_for_rent_exemption(data_len)

    def ata(self, owner: Pubkey, mint: Pubkey, token_program: Pubkey = TOKEN_PROGRAM_ID) -> Pubkey:
        """The associated token account address of ``owner`` for ``mint``."""
        return get_associated_token_address(owner, mint, token_program)

    def create_mint_at(
        self, address: Pubkey, decimals: int, mint_authority: Pubkey | None
    ) -> None:
        """Write an initialised SPL Token mint at ``address`` (mainnet mint addresses locally).

        Idempotent when an identical mint is already there; ``ValueError`` if a
        different account occupies the address (overwriting would desync supply
        from existing token accounts).
        """
        existing = self._svm.get_account(address)
        if existing is not None:
            if existing.owner == TOKEN_PROGRAM_ID and len(existing.data) == MINT_LEN:
                mint = Mint.from_bytes(existing.data)
                if mint.decimals == decimals and mint.mint_authority == mint_authority:
                    return
            raise ValueError(f"{address} already holds a different account")
        data = bytes(Mint(mint_authority, 0, decimals, True, None))
        lamports = self._svm.minimum_balance_for_rent_exemption(len(data))
        self.set_account(address, Account(lamports, data, TOKEN_PROGRAM_ID, False, U64_MAX))

    def token_balance(self, token_account: Pubkey) -> int:
        """Raw amount in a token account; 0 if the account does not exist."""
        return self.tokens.balance(token_account)

    # -- transactions --------------------------------------------------------------------------

    def send(self, tx: VersionedTransaction) -> Signature:
        """Execute and commit ``tx``; return its signature.

        A signature seen before returns at once (no second execution). Raises
        :class:`ChainError` when the transaction would not land on Solana
        (unknown or expired blockhash, bad signature, unfunded fee payer...).
        A transaction that fails after its fee is charged lands with ``err``.
        """
        if not tx.signatures:
            raise ChainError(TransactionErrorFieldless.SanitizeFailure)
        sig = tx.signatures[0]
        key = str(sig)
        if key in self.ledger:
            return sig
        msg = tx.message
        if not isinstance(msg, Message | MessageV0):
            raise ChainError(TransactionErrorFieldless.UnsupportedVersion)
        if self.last_valid_block_height(msg.recent_blockhash) is None:
            raise ChainError(TransactionErrorFieldless.BlockhashNotFound)
        if self.source is not None:
            self.source.prepare(msg)
        record = self._execute(tx, msg, key)
        self.ledger.add(record)
        for cb in list(self._listeners):
            try:
                cb(sig, tx, record.err, self._slot)
            except Exception:
                log.exception("transaction listener failed for %s", key)
        return sig

    def _execute(self, tx: VersionedTransaction, msg: Message | MessageV0, key: str) -> TxRecord:
        """Run ``tx`` on LiteSVM, committing it; its record, or :class:`ChainError` if unlanded."""
        loaded_w, loaded_r = loaded_addresses(self._svm, msg)
        keys = [*msg.account_keys, *loaded_w, *loaded_r]
        svm = self._svm
        get = svm.get_account
        pre_accounts = [get(k) for k in keys]
        pre_balances = [a.lamports if a is not None else 0 for a in pre_accounts]

        result = svm.send_transaction(tx)
        if isinstance(result, FailedTransactionMetadata):
            err: TransactionErrorType | None = result.err()
            # LiteSVM commits a failed transaction only if it charged the fee ("included").
            if (svm.get_balance(keys[0]) or 0) == pre_balances[0]:
                assert err is not None
                raise ChainError(err)
            meta = result.meta()
        else:
            err = None
            meta = result

        writable = writable_flags(msg, len(loaded_w), len(loaded_r))
        post_accounts = [
            get(k) if w else a for k, w, a in zip(keys, writable, pre_accounts, strict=True)
        ]
        self.written([k for k, w in zip(keys, writable, strict=True) if w])
        parse = self.tokens.balance_of
        pre_tokens = [tb for i, a in enumerate(pre_accounts) if (tb := parse(i, a)) is not None]
        post_tokens = [tb for i, a in enumerate(post_accounts) if (tb := parse(i, a)) is not None]
        return TxRecord(
            signature=key,
            slot=self._slot,
            block_time=self._unix_ts,
            raw=bytes(tx),
            loaded_writable=loaded_w,
            loaded_readonly=loaded_r,
            err=err,
            err_json=error_json(err),
            fee=meta.fee(),
            pre_balances=array("Q", pre_balances),
            post_balances=array("Q", [a.lamports if a is not None else 0 for a in post_accounts]),
            pre_token_balances=pre_tokens,
            post_token_balances=post_tokens,
            meta=meta,
        )

    def simulate(
        self,
        tx: VersionedTransaction,
        *,
        sig_verify: bool = True,
        replace_recent_blockhash: bool = False,
    ) -> Simulation:
        """Execute ``tx`` against current state without committing anything."""
        replacement: tuple[Hash, int] | None = None
        if replace_recent_blockhash:
            replacement = self.latest_blockhash()
            tx = with_blockhash(tx, replacement[0])
            sig_verify = False
        elif self.last_valid_block_height(tx.message.recent_blockhash) is None:
            return Simulation.failed(TransactionErrorFieldless.BlockhashNotFound)
        if str(tx.signatures[0]) in self.ledger:
            return Simulation.failed(TransactionErrorFieldless.AlreadyProcessed)
        if self.source is not None and isinstance(tx.message, Message | MessageV0):
            self.source.prepare(tx.message)
        svm = self._svm
        if not sig_verify:
            svm.with_sigverify(False)
        try:
            result = svm.simulate_transaction(tx)
        finally:
            if not sig_verify:
                svm.with_sigverify(True)
        if isinstance(result, FailedTransactionMetadata):
            err: TransactionErrorType | None = result.err()
            meta = result.meta()
            post: dict[Pubkey, Account] = {}
        else:
            err = None
            meta = result.meta()
            post = dict(result.post_accounts())
        rd = meta.return_data()
        return Simulation(
            err=err,
            err_json=error_json(err),
            logs=meta.logs(),
            units_consumed=meta.compute_units_consumed(),
            fee=meta.fee(),
            return_data=(rd.program_id, bytes(rd.data)) if rd.data else None,
            post_accounts=post,
            replacement_blockhash=replacement,
            meta=meta,  # innerInstructions, rendered only when asked for
        )

    def fee_for_message(self, msg: Message | MessageV0) -> int | None:
        """Fee LiteSVM would charge (base + priority); ``None`` if the blockhash is invalid."""
        if self.last_valid_block_height(msg.recent_blockhash) is None:
            return None
        n_sigs = msg.header.num_required_signatures
        tx = VersionedTransaction.populate(msg, [Signature.default()] * n_sigs)
        svm = self._svm
        svm.with_sigverify(False)
        try:
            result = svm.simulate_transaction(tx)
        finally:
            svm.with_sigverify(True)
        fee = result.meta().fee()
        return fee or LAMPORTS_PER_SIGNATURE * n_sigs

    def transaction(self, sig: Signature | str) -> TxRecord | None:
        """The record of a landed transaction still in the history window."""
        return self.ledger.get(sig)

    def signature_status(self, sig: Signature | str) -> SignatureStatus | None:
        """Solana's status: processed, confirmed (a later slot exists), finalized (32 later)."""
        return self.ledger.status(sig, self._slot)

    def get_transaction(
        self,
        sig: Signature | str,
        encoding: str = "json",
        *,
        max_supported_transaction_version: int | None = 0,
    ) -> dict[str, Json] | None:
        """Solana's ``getTransaction`` result (``json``, ``base64`` or ``base58``), or ``None``.

        Raises :class:`UnsupportedTransactionVersion` for a v0 transaction when
        ``max_supported_transaction_version`` is ``None``, as Solana does, and
        ``ValueError`` for an unsupported encoding.
        """
        rec = self.transaction(sig)
        if rec is None:
            return None
        return transaction_result_json(rec, encoding, max_supported_transaction_version)


__all__ = [
    "CLOCK_RESYNC_S",
    "COMMITMENTS",
    "FINALIZATION_DEPTH",
    "LAMPORTS_PER_SIGNATURE",
    "MAX_PROCESSING_AGE",
    "MIN_HISTORY_SLOTS",
    "Chain",
    "RejectListener",
    "SlotListener",
    "TxListener",
]
