"""The execution journal's guards, against real PostgreSQL.

The double-swap guard (never record a new transaction while an earlier one of the order
may still land) lives in migration 004's ``journal_record_broadcast``; these tests hit it
sequentially and with concurrent callers on separate connections.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from psycopg_pool import AsyncConnectionPool
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction

from pipeline.errors import BroadcastConflict, LeaseLost
from pipeline.journal import Journal
from pipeline.lifecycle import OrderStatus
from pipeline.ports import BroadcastOutcome
from sinks.migrate import migrate

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(own_database_url: str) -> AsyncIterator[AsyncConnectionPool]:
    await migrate(own_database_url)
    p = AsyncConnectionPool(own_database_url, min_size=1, max_size=24, open=False,
                            kwargs={"autocommit": True})
    await p.open(wait=True, timeout=30)
    try:
        yield p
    finally:
        await p.close()


_SIGNED: dict[str, bytes] = {}


def _sig() -> str:
    """A really signed transaction (a 1-lamport transfer, never sent: these tests are about
    the journal); its signature names it and its bytes are what gets recorded."""
    payer = Keypair()
    ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=Keypair().pubkey(),
                                 lamports=1))
    tx = VersionedTransaction(Message.new_with_blockhash([ix], payer.pubkey(), Hash.default()),
                              [payer])
    sig = str(tx.signatures[0])
    _SIGNED[sig] = bytes(tx)
    return sig


async def _record(j: Journal, order_id: str, sig: str, attempt: int = 1) -> None:
    await j.record_broadcast(order_id, attempt=attempt, signature=sig, tx=_SIGNED[sig],
                             last_valid_block_height=1000 + attempt, venue="raydium",
                             expected_out=10**18 + 7, min_out=10**18)


async def test_record_guard_lease_and_outcomes(pool: AsyncConnectionPool) -> None:
    a, b = Journal(pool, "worker-a"), Journal(pool, "worker-b")
    oid = f"o-{uuid.uuid4().hex}"
    ex = await a.claim(oid, {"orderId": oid})
    assert ex is not None and ex.fresh and ex.status == "pending"
    assert await b.claim(oid, {"orderId": oid}) is None  # a's lease is live

    with pytest.raises(LeaseLost):  # b does not own it
        await _record(b, oid, _sig())
    first = _sig()
    await _record(a, oid, first)
    [bc] = await a.broadcasts(oid)
    assert (bc.signature, bc.outcome, bc.expected_out, bc.min_out) == (
        first, None, 10**18 + 7, 10**18)  # numeric(20,0) keeps the integers exact
    with pytest.raises(BroadcastConflict, match=f"{first} \\(open\\)"):
        await _record(a, oid, _sig(), attempt=2)

    # provably dead: a new one may be built
    await a.close_broadcast(first, BroadcastOutcome.EXPIRED)
    second = _sig()
    await _record(a, oid, second, attempt=2)
    await a.close_broadcast(second, BroadcastOutcome.LANDED)
    with pytest.raises(BroadcastConflict, match=f"{second} \\(landed\\)"):
        await _record(a, oid, _sig(), attempt=3)
    assert [x.outcome for x in await a.broadcasts(oid)] == ["expired", "landed"]


async def test_confirm_closes_broadcast_and_order_together(pool: AsyncConnectionPool) -> None:
    a, b = Journal(pool, "worker-a"), Journal(pool, "worker-b")
    oid = f"o-{uuid.uuid4().hex}"
    assert await a.claim(oid, {"orderId": oid}) is not None
    sig = _sig()
    await _record(a, oid, sig)
    with pytest.raises(LeaseLost):
        await b.confirm(oid, attempt=1, signature=sig, final_event={"eventId": "e"})
    await a.confirm(oid, attempt=1, signature=sig, final_event={"eventId": "e"})
    [bc] = await a.broadcasts(oid)
    assert bc.outcome == "landed"
    ex = await b.claim(oid, {"orderId": oid})  # terminal: returned, not leased
    assert ex is not None and ex.terminal and ex.status == "confirmed" and ex.owner is None
    with pytest.raises(LeaseLost):  # terminal: nothing more can be recorded
        await _record(a, oid, _sig(), attempt=2)
    with pytest.raises(LeaseLost):
        await a.confirm(oid, attempt=1, signature=sig, final_event={"eventId": "e"})


async def test_concurrent_records_for_one_order_admit_exactly_one(
        pool: AsyncConnectionPool) -> None:
    """20 callers race to record a transaction for the same order, each through its own
    Journal (so each on its own connection, not queued behind one group commit): the row
    lock and the read after it let exactly one through."""
    journals = [Journal(pool, "worker-a") for _ in range(20)]
    for _ in range(5):
        oid = f"o-{uuid.uuid4().hex}"
        assert await journals[0].claim(oid, {"orderId": oid}) is not None
        results = await asyncio.gather(*(_record(j, oid, _sig()) for j in journals),
                                       return_exceptions=True)
        assert sum(r is None for r in results) == 1, results
        assert all(isinstance(r, BroadcastConflict) for r in results if r is not None)
        assert len(await journals[0].broadcasts(oid)) == 1


async def test_one_batch_answers_each_order_on_its_own(pool: AsyncConnectionPool) -> None:
    """Concurrent calls of one Journal share statements; each caller still gets its own
    outcome (recorded / conflict / lease lost), and advances are not mixed up."""
    sizes: list[tuple[str, int]] = []
    a = Journal(pool, "worker-a", on_batch=lambda op, n: sizes.append((op, n)))
    b = Journal(pool, "worker-b")
    ids = [f"o-{uuid.uuid4().hex}" for _ in range(30)]
    for oid in ids[:20]:
        assert await a.claim(oid, {"orderId": oid}) is not None
    for oid in ids[20:]:
        assert await b.claim(oid, {"orderId": oid}) is not None
    for oid in ids[10:20]:
        await _record(a, oid, _sig())  # these already have an open transaction
    results = await asyncio.gather(*(_record(a, oid, _sig(), attempt=2) for oid in ids),
                                   return_exceptions=True)
    assert results[:10] == [None] * 10
    assert all(isinstance(r, BroadcastConflict) for r in results[10:20])
    assert all(isinstance(r, LeaseLost) for r in results[20:])
    assert a._records.batches < a._records.calls  # they were group-committed
    records = [n for op, n in sizes if op == "record"]
    assert sum(records) == a._records.calls and max(records) > 1  # the metric saw the batches
    await asyncio.gather(*(a.advance(oid, status=OrderStatus.PENDING, attempt=3, release=True)
                           for oid in ids[:10]))
    for oid in ids[:10]:
        ex = await b.claim(oid, {"orderId": oid})  # released: b may take it now
        assert ex is not None and ex.owner == "worker-b" and ex.attempt == 3


async def test_an_unreadable_journal_row_does_not_stop_orphan_recovery(
        pool: AsyncConnectionPool) -> None:
    """The sweeper resumes every undriven order it can read, and names the one it cannot."""
    from typing import Any

    from pipeline.executor import OrderExecutor
    from pipeline.tokens import SOL, USDC
    from pipeline.wire import ExecuteOrder, now_ms

    good = ExecuteOrder(f"o-{uuid.uuid4().hex}", SOL.mint, USDC.mint, 10**8, 50, now_ms(),
                        "kafka")
    bad_id = f"o-{uuid.uuid4().hex}"
    gone = Journal(pool, "a-worker-that-died", lease_s=0.01)
    assert await gone.claim(good.order_id, good.to_json()) is not None
    assert await gone.claim(bad_id, {"orderId": bad_id, "schemaVersion": 99}) is not None
    async with pool.connection() as conn:  # both idle long enough to count as orphans
        await conn.execute("UPDATE executions SET updated_at = now() - interval '1 hour', "
                           "lease_until = now() - interval '1 hour' WHERE order_id = ANY(%s)",
                           ([good.order_id, bad_id],))
    unused: Any = None
    executor = OrderExecutor(venues=unused, chain=unused, watcher=unused, wallet=Keypair(),
                             outbox=unused, journal=Journal(pool, "sweeper"))
    found = [cmd.order_id for cmd in await executor.orphans(idle_s=60)]
    assert good.order_id in found and bad_id not in found
