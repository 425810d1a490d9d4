"""Test doubles for the executor's ports: an in-memory journal with the SQL journal's
rules, venues that build really signed transactions (never sent), a chain that lands
what it is sent, and recorders for what the executor publishes.

They implement the same methods the real adapters do; the rules they keep (lease owner,
no new broadcast while one may land, terminal rows immutable) are the ones
``tests/integration/test_journal.py`` checks on PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from solders.compute_budget import set_compute_unit_price
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from pipeline.chain_history import SignatureEntry
from pipeline.errors import BroadcastConflict, LeaseLost, RpcUnavailable
from pipeline.executor import OrderExecutor
from pipeline.lifecycle import OrderStatus
from pipeline.model import Quote, Venue
from pipeline.ports import (
    Broadcast,
    BroadcastOutcome,
    CancelRequest,
    CancelWon,
    Execution,
    FailedOrder,
    RetryRequest,
)
from pipeline.reconcile import TokenBalance, TxBalances
from pipeline.solana_rpc import Landed
from pipeline.tokens import SOL, USDC
from pipeline.venues import SwapTransaction
from pipeline.wire import ExecuteOrder, StatusEvent

MEMO_V3 = Pubkey.from_string("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr")
POOL = Keypair().pubkey()


SUBMITTED_MS = 1_700_000_000_000
NO_EXPIRY_TTL_MS = 10**13
"""The doubles' market orders were submitted long ago; ``rig`` gives them a TTL that has not
run out unless a test asks for one that has."""


def market_order(order_id: str = "o-1", amount: int = 1_000_000_000) -> ExecuteOrder:
    return ExecuteOrder(order_id, SOL.mint, USDC.mint, amount, 50, SUBMITTED_MS)


@dataclass
class _Row:
    command: dict[str, Any]
    status: OrderStatus = OrderStatus.PENDING
    attempt: int = 1
    terminal: bool = False
    owner: str | None = None
    retry_due_ms: int | None = None
    error: tuple[str, str] | None = None
    final_event: dict[str, Any] | None = None


@dataclass
class JournalState:
    """What PostgreSQL would hold; shared by the journals of several workers."""

    rows: dict[str, _Row] = field(default_factory=dict)
    broadcasts: dict[str, list[Broadcast]] = field(default_factory=dict)
    fates: dict[str, str | CancelRequest] = field(default_factory=dict)  # order_fates
    claims_running: dict[str, int] = field(default_factory=dict)
    max_claims_running: int = 0


class MemoryJournal:
    def __init__(self, state: JournalState, owner: str) -> None:
        self.state = state
        self.owner = owner
        self.unavailable: Exception | None = None  # raise this from every call while set

    def _check(self) -> None:
        if self.unavailable is not None:
            raise self.unavailable

    def _mine(self, order_id: str) -> _Row:
        row = self.state.rows.get(order_id)
        if row is None or row.terminal or row.owner != self.owner:
            raise LeaseLost(message=f"order {order_id} is no longer ours")
        return row

    async def claim(self, order_id: str, command: dict[str, Any]) -> Execution | None:
        running = self.state.claims_running
        running[order_id] = running.get(order_id, 0) + 1
        self.state.max_claims_running = max(self.state.max_claims_running, running[order_id])
        try:
            for _ in range(3):  # a claim is a round trip: let other tasks run meanwhile
                await asyncio.sleep(0)
            self._check()
            row = self.state.rows.get(order_id)
            fresh = row is None
            if row is None:
                row = self.state.rows[order_id] = _Row(command, owner=self.owner)
            elif row.terminal:
                return self._execution(order_id, row, False)
            elif row.owner not in (None, self.owner):
                return None
            row.owner = self.owner
            return self._execution(order_id, row, fresh)
        finally:
            running[order_id] -= 1

    def _execution(self, order_id: str, row: _Row, fresh: bool) -> Execution:
        code, message = row.error or (None, None)
        fate = self.state.fates.get(order_id)
        return Execution(order_id, row.command, row.attempt, row.status, row.terminal,
                         row.retry_due_ms, code, message, row.owner, fresh, row.final_event,
                         fate if isinstance(fate, CancelRequest) else None)

    async def renew(self, order_ids: Sequence[str]) -> None:
        self._check()

    async def advance(self, order_id: str, *, status: OrderStatus, attempt: int,
                      retry_due_ms: int | None = None, error: tuple[str, str] | None = None,
                      terminal: bool = False, release: bool = False,
                      final_event: dict[str, Any] | None = None) -> None:
        self._check()
        row = self._mine(order_id)
        row.status, row.attempt, row.retry_due_ms, row.terminal = (status, attempt,
                                                                   retry_due_ms, terminal)
        row.error = error or row.error
        row.final_event = final_event or row.final_event
        if terminal or release:
            row.owner = None

    async def release(self, order_id: str) -> None:
        self._check()
        row = self.state.rows.get(order_id)
        if row is not None and row.owner == self.owner:
            row.owner = None

    async def broadcasts(self, order_id: str) -> list[Broadcast]:
        self._check()
        return list(self.state.broadcasts.get(order_id, []))

    async def record_broadcast(self, order_id: str, *, attempt: int, signature: str, tx: bytes,
                               last_valid_block_height: int, venue: str, expected_out: int,
                               min_out: int) -> None:
        self._check()
        row = self._mine(order_id)
        fate = self.state.fates.setdefault(order_id, "executing")
        if isinstance(fate, CancelRequest):
            raise CancelWon(order_id, fate)
        live = [b for b in self.state.broadcasts.get(order_id, []) if b.live]
        if live:
            raise BroadcastConflict(message=f"order {order_id} already has {live[0].signature}")
        self.state.broadcasts.setdefault(order_id, []).append(Broadcast(
            signature, attempt, tx, last_valid_block_height, venue, expected_out, min_out, None))
        row.status, row.attempt = OrderStatus.SUBMITTED, attempt

    async def confirm(self, order_id: str, *, attempt: int, signature: str,
                      final_event: dict[str, Any]) -> None:
        self._check()
        row = self._mine(order_id)
        await self.close_broadcast(signature, BroadcastOutcome.LANDED)
        row.status, row.attempt, row.terminal, row.owner = (OrderStatus.CONFIRMED, attempt, True,
                                                            None)
        row.final_event = final_event

    async def close_broadcast(self, signature: str, outcome: BroadcastOutcome) -> None:
        self._check()
        for bs in self.state.broadcasts.values():
            for i, b in enumerate(bs):
                if b.signature == signature:
                    bs[i] = replace(b, outcome=outcome)

    async def cancel(self, order_id: str, request: CancelRequest) -> str | None:
        """migration 007's journal_cancel, in memory."""
        self._check()
        row = self.state.rows.get(order_id)
        if row is not None and row.terminal and row.status is not OrderStatus.CANCELLED:
            return f"the order is already {row.status}"
        fate = self.state.fates.get(order_id)
        if isinstance(fate, CancelRequest):
            return None
        live = [b for b in self.state.broadcasts.get(order_id, []) if b.live]
        if live:
            return f"the order's transaction {live[0].signature} was sent and may land"
        self.state.fates[order_id] = request
        return None

    async def command(self, order_id: str) -> dict[str, Any] | None:
        row = self.state.rows.get(order_id)
        return None if row is None else row.command

    async def orphans(self, *, idle_s: float, limit: int = 100) -> list[dict[str, Any]]:
        return []

    def forget(self, order_id: str) -> None:
        """What a journal that lost rows looks like (a non-durable database after a crash)."""
        self.state.rows.pop(order_id, None)
        self.state.broadcasts.pop(order_id, None)


class Ledger:
    """A chain that lands every transaction it is sent, and can say what landed."""

    def __init__(self, wallet: Keypair) -> None:
        self.wallet = wallet
        self.sent: list[VersionedTransaction] = []
        self.landed: dict[str, tuple[int, str]] = {}  # signature -> (slot, memo text)
        self.slot = 100
        self.history_calls = 0
        self.wallet_lamports = 10_000_000_000

    async def send(self, tx: VersionedTransaction) -> str:
        sig = str(tx.signatures[0])
        self.sent.append(tx)
        self.slot += 1
        memo = next((bytes(ix.data).decode() for ix in tx.message.instructions
                     if tx.message.account_keys[ix.program_id_index] == MEMO_V3), "")
        self.landed[sig] = (self.slot, memo)
        return sig

    async def resend(self, tx_bytes: bytes) -> None:
        return None

    async def block_height(self) -> int:
        return self.slot

    async def statuses(self, signatures: Sequence[str]) -> list[tuple[int, str | None, int] | None]:
        return [(self.landed[s][0], None, 2) if s in self.landed else None for s in signatures]

    async def balances(self, signature: str) -> TxBalances:
        wallet = str(self.wallet.pubkey())
        return TxBalances(
            account_keys=[wallet, "usdc-ata"], fee=5000, fee_payer=wallet,
            pre_lamports=[10_000_000_000, 2_039_280],
            post_lamports=[10_000_000_000 - 1_000_000_000 - 5000, 2_039_280],
            pre_tokens=[TokenBalance(1, USDC.mint, wallet, 0)],
            post_tokens=[TokenBalance(1, USDC.mint, wallet, 150_000_000)])

    async def signatures_for_address(self, address: str, *, before: str | None = None,
                                     until: str | None = None,
                                     limit: int = 1000) -> list[SignatureEntry]:
        self.history_calls += 1
        newest_first = sorted(self.landed.items(), key=lambda kv: -kv[1][0])
        out: list[SignatureEntry] = []
        for sig, (slot, memo) in newest_first:
            if sig == until:
                break
            out.append(SignatureEntry(sig, slot, None,
                                      f"[{len(memo.encode())}] {memo}" if memo else None))
        return out[:limit]

    async def token_balance(self, owner: str, mint: str) -> int:
        if mint == SOL.mint:
            return self.wallet_lamports
        return 0


class SigningVenues:
    """Venues whose swap is a real, signed-by-us-later transaction: a memo (when asked)
    and a zero-lamport transfer to a pool key. Counts concurrent quotes per order."""

    def __init__(self, *, drop_memo: bool = False, raydium_out: int = 150_000_000,
                 raydium_impact: str = "0.001") -> None:
        self.drop_memo = drop_memo
        self.raydium_out = raydium_out
        self.raydium_impact = raydium_impact
        self.swaps_built = 0

    async def quote(self, venue: Venue, input_mint: str, output_mint: str, amount: int,
                    slippage_bps: int) -> Quote:
        await asyncio.sleep(0)
        if venue is Venue.RAYDIUM:
            return Quote(venue, amount, self.raydium_out, 2500, input_mint, self.raydium_impact,
                         str(POOL), 1)
        return Quote(venue, amount, 149_000_000, 2500, input_mint, "0.001", str(POOL), 1)

    async def swap_transaction(self, quote: Quote, user_public_key: str, *,
                               memo: str | None = None,
                               priority_fee_micro_lamports: int | None = None
                               ) -> SwapTransaction:
        self.swaps_built += 1
        payer = Pubkey.from_string(user_public_key)
        budget = ([] if priority_fee_micro_lamports is None
                  else [set_compute_unit_price(priority_fee_micro_lamports)])
        ixs = [*budget, Instruction(
            Pubkey.from_string("11111111111111111111111111111111"),
            bytes([2, 0, 0, 0]) + (0).to_bytes(8, "little"),
            [AccountMeta(payer, True, True), AccountMeta(POOL, False, True)])]
        if memo is not None and not self.drop_memo:
            ixs.append(Instruction(MEMO_V3, memo.encode(), []))
        msg = MessageV0.try_compile(payer, ixs, [], Hash.new_unique())
        n = msg.header.num_required_signatures
        tx = VersionedTransaction.populate(msg, [Keypair().sign_message(b"")] * n)
        return SwapTransaction(bytes(tx), 10_000)


class InstantWatcher:
    """Confirms whatever the ledger landed; a signature it never saw expires."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.in_flight = 0
        self.outage = 0  # answer this many waits with RpcUnavailable (an RPC outage)

    async def wait(self, signature: str, last_valid_block_height: int,
                   tx_bytes: bytes | None = None) -> Landed:
        await asyncio.sleep(0)
        if self.outage:
            self.outage -= 1
            raise RpcUnavailable(message="getSignatureStatuses: 429 Too Many Requests")
        if signature not in self.ledger.landed:
            raise RpcUnavailable(message=f"{signature} not seen")
        return Landed(self.ledger.landed[signature][0], None)


@dataclass
class Outbox:
    events: list[StatusEvent] = field(default_factory=list)
    retries: list[RetryRequest] = field(default_factory=list)
    dead: list[FailedOrder] = field(default_factory=list)
    fail_publish: Exception | None = None
    fail_status: str | None = None  # with fail_publish: only events entering this status

    async def publish(self, event: StatusEvent, *, wait: bool) -> None:
        await asyncio.sleep(0)
        if self.fail_publish is not None and self.fail_status in (None, event.status):
            raise self.fail_publish
        self.events.append(event)

    async def schedule_retry(self, req: RetryRequest) -> None:
        self.retries.append(req)

    async def dead_letter(self, failed: FailedOrder) -> None:
        self.dead.append(failed)

    def statuses(self, order_id: str) -> list[str]:
        return [e.status.value for e in self.events if e.order_id == order_id]


@dataclass
class Rig:
    executor: OrderExecutor
    journal: MemoryJournal
    ledger: Ledger
    venues: SigningVenues
    outbox: Outbox
    watcher: InstantWatcher


def rig(*, state: JournalState | None = None, ledger: Ledger | None = None,
        venues: SigningVenues | None = None, owner: str = "worker-a",
        publish_budget_s: float = 30.0, max_attempts: int = 3,
        market_ttl_ms: int = NO_EXPIRY_TTL_MS) -> Rig:
    wallet = ledger.wallet if ledger is not None else Keypair()
    ledger = ledger or Ledger(wallet)
    journal = MemoryJournal(state or JournalState(), owner)
    venues = venues or SigningVenues()
    outbox = Outbox()
    watcher = InstantWatcher(ledger)
    executor = OrderExecutor(
        venues=venues, chain=ledger, watcher=watcher,  # type: ignore[arg-type]
        wallet=wallet, outbox=outbox, journal=journal, publish_budget_s=publish_budget_s,
        max_attempts=max_attempts, follow_backoff_s=0.0, market_ttl_ms=market_ttl_ms)
    return Rig(executor, journal, ledger, venues, outbox, watcher)
