"""Cancel against execution in the journal (migration 007), on real PostgreSQL: a cancel
and a transaction record of the same order, raced on separate connections, yield exactly
one winner, every time; a cancel of an order never seen wins and its claim says so."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from psycopg_pool import AsyncConnectionPool

from pipeline.errors import LeaseLost
from pipeline.journal import Journal
from pipeline.lifecycle import OrderStatus
from pipeline.ports import BroadcastOutcome, CancelRequest, CancelWon
from tests.integration.test_journal import _record, _sig, pool

pytestmark = pytest.mark.integration
__all__ = ["pool"]

REQUEST = CancelRequest("changed my mind", 1_900_000_000_123, "http")


async def test_cancel_wins_before_a_record_and_the_claim_returns_it(
        pool: AsyncConnectionPool) -> None:
    a = Journal(pool, "worker-a")
    oid = f"o-{uuid.uuid4().hex}"
    assert await a.cancel(oid, REQUEST) is None  # not seen yet: still decided
    assert await a.cancel(oid, REQUEST) is None  # and idempotent
    assert await a.command(oid) is None
    ex = await a.claim(oid, {"orderId": oid})
    assert ex is not None and ex.cancel == REQUEST
    with pytest.raises(CancelWon) as won:
        await _record(a, oid, _sig())
    assert won.value.request == REQUEST
    assert await a.broadcasts(oid) == []
    assert await a.command(oid) == {"orderId": oid}


async def test_a_recorded_transaction_refuses_the_cancel_until_it_is_dead(
        pool: AsyncConnectionPool) -> None:
    a = Journal(pool, "worker-a")
    oid = f"o-{uuid.uuid4().hex}"
    assert await a.claim(oid, {"orderId": oid}) is not None
    sig = _sig()
    await _record(a, oid, sig)
    refusal = await a.cancel(oid, REQUEST)
    assert refusal is not None and sig in refusal and "may land" in refusal
    await a.close_broadcast(sig, BroadcastOutcome.EXPIRED)  # provably dead: a cancel may win
    assert await a.cancel(oid, REQUEST) is None
    with pytest.raises(CancelWon):
        await _record(a, oid, _sig(), attempt=2)
    await a.advance(oid, status=OrderStatus.CANCELLED, attempt=1, terminal=True)
    assert await a.cancel(oid, REQUEST) is None  # already cancelled: the same answer


async def test_a_cancel_of_a_finished_order_is_refused(pool: AsyncConnectionPool) -> None:
    a = Journal(pool, "worker-a")
    oid = f"o-{uuid.uuid4().hex}"
    assert await a.claim(oid, {"orderId": oid}) is not None
    sig = _sig()
    await _record(a, oid, sig)
    await a.confirm(oid, attempt=1, signature=sig, final_event={"status": "confirmed"})
    assert await a.cancel(oid, REQUEST) == "the order is already confirmed"
    other = f"o-{uuid.uuid4().hex}"
    assert await a.claim(other, {"orderId": other}) is not None
    await a.advance(other, status=OrderStatus.EXPIRED, attempt=1, terminal=True)
    assert await a.cancel(other, REQUEST) == "the order is already expired"


@pytest.mark.parametrize("claimed", [True, False])
async def test_cancel_and_record_raced_have_exactly_one_winner(
        pool: AsyncConnectionPool, claimed: bool) -> None:
    """90 orders, each raced by a cancel and an execution (claim unless ``claimed``, then
    the record) on separate connections; the cancel is sent as the execution starts, once
    its claim returned, or once its record returned: never both, never neither."""
    a, c = Journal(pool, "worker-a"), Journal(pool, "canceller")

    async def race(i: int, oid: str, sig: str) -> tuple[bool, str | None]:
        go = asyncio.Event()
        phase = i % 3

        async def execute() -> bool:
            try:
                if phase == 0:
                    go.set()
                if not claimed:
                    ex = await a.claim(oid, {"orderId": oid})
                    if ex is None or ex.cancel is not None:
                        return False
                if phase == 1:
                    go.set()
                await _record(a, oid, sig)
                return True
            except (CancelWon, LeaseLost):
                return False
            finally:
                go.set()

        async def cancel() -> str | None:
            await go.wait()
            return await c.cancel(oid, REQUEST)

        executed, refusal = await asyncio.gather(execute(), cancel())
        return executed, refusal

    ids = [f"o-{uuid.uuid4().hex}" for _ in range(90)]
    sigs = [_sig() for _ in ids]
    if claimed:
        for oid in ids:
            assert await a.claim(oid, {"orderId": oid}) is not None
    results = await asyncio.gather(*(race(i, oid, sig)
                                     for i, (oid, sig) in enumerate(zip(ids, sigs,
                                                                        strict=True))))
    winners = {"executed": 0, "cancelled": 0}
    for oid, (executed, refusal) in zip(ids, results, strict=True):
        cancelled = refusal is None
        assert executed != cancelled, (oid, executed, refusal)  # exactly one, never both
        winners["executed" if executed else "cancelled"] += 1
        assert len(await a.broadcasts(oid)) == (1 if executed else 0)
    assert winners["executed"] >= 30 and winners["cancelled"] > 0, winners
