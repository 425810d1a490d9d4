"""Conditional orders in the executor (in-memory ports): opened and handed to the trigger
agent, executed once triggered with the order's own minimum as the route's on-chain
minimum, re-opened when the market moved back. (Expiry and cancel: test_order_end.)"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st
from solders.keypair import Keypair

from pipeline.conditional import floor_slippage_bps
from pipeline.errors import BrokerUnavailable
from pipeline.executor import OrderExecutor, Outcome
from pipeline.lifecycle import OrderStatus
from pipeline.model import LimitTerms, OrderType
from pipeline.routing import min_out
from pipeline.tokens import SOL, USDC
from pipeline.wire import ExecuteOrder, now_ms
from tests.unit.executor_doubles import (
    InstantWatcher,
    JournalState,
    Ledger,
    MemoryJournal,
    Outbox,
    SigningVenues,
)

LIMIT = 149_500_000  # for 1 SOL; the doubles' best venue pays 150_000_000


def limit_order(order_id: str = "l-1", *, min_out_: int = LIMIT,
                expires_in_ms: int = 3_600_000) -> ExecuteOrder:
    now = now_ms()
    return ExecuteOrder(order_id, SOL.mint, USDC.mint, 1_000_000_000, 50, now,
                        order_type=OrderType.LIMIT, expires_at_ms=now + expires_in_ms,
                        limit=LimitTerms(min_out_))


@dataclasses.dataclass
class CRig:
    executor: OrderExecutor
    journal: MemoryJournal
    outbox: Outbox
    venues: SigningVenues
    opened: list[str]


def crig(venues: SigningVenues | None = None, *, with_opener: bool = True) -> CRig:
    wallet = Keypair()
    ledger = Ledger(wallet)
    journal = MemoryJournal(JournalState(), "worker-a")
    venues = venues or SigningVenues()
    outbox = Outbox()
    opened: list[str] = []

    async def opener(cmd: ExecuteOrder) -> None:
        opened.append(cmd.order_id)

    executor = OrderExecutor(
        venues=venues, chain=ledger, watcher=InstantWatcher(ledger),  # type: ignore[arg-type]
        wallet=wallet, outbox=outbox, journal=journal, follow_backoff_s=0.0)
    if with_opener:
        executor.set_opener(opener)
    return CRig(executor, journal, outbox, venues, opened)


def trigger(r: CRig, order_id: str) -> None:
    """What the trigger agent's compare-and-set does to the journal row."""
    row = r.journal.state.rows[order_id]
    assert row.status is OrderStatus.OPEN and row.owner is None
    row.status = OrderStatus.TRIGGERED


async def test_a_limit_order_opens_and_waits_for_its_trigger() -> None:
    r = crig()
    cmd = limit_order()
    assert await r.executor.run(cmd) is Outcome.OPENED
    assert r.outbox.statuses("l-1") == ["pending", "open"]
    row = r.journal.state.rows["l-1"]
    assert row.status is OrderStatus.OPEN and row.owner is None and not row.terminal
    assert r.opened == ["l-1"] and r.venues.swaps_built == 0
    # redelivered: handed over again (the book ignores a second add), nothing republished
    assert await r.executor.run(cmd) is Outcome.OPENED
    assert r.opened == ["l-1", "l-1"] and r.outbox.statuses("l-1") == ["pending", "open"]


async def test_before_the_trigger_agent_runs_an_order_is_held_not_decided() -> None:
    r = crig(with_opener=False)
    cmd = limit_order()
    with pytest.raises(BrokerUnavailable):
        await r.executor.run(cmd)
    assert r.outbox.events == [] and r.journal.state.rows["l-1"].status is OrderStatus.PENDING
    r.executor.set_opener(lambda c: _record(r, c))
    assert await r.executor.run(cmd) is Outcome.OPENED
    assert r.outbox.statuses("l-1") == ["pending", "open"] and r.opened == ["l-1"]


async def _record(r: CRig, cmd: ExecuteOrder) -> None:
    r.opened.append(cmd.order_id)


async def test_a_triggered_limit_order_executes_once_with_its_limit_as_the_minimum() -> None:
    r = crig()
    cmd = limit_order()
    await r.executor.run(cmd)
    trigger(r, "l-1")
    assert await r.executor.run(cmd) is Outcome.CONFIRMED
    assert r.outbox.statuses("l-1") == ["pending", "open", "routing", "building",
                                        "submitted", "confirmed"]
    (b,) = r.journal.state.broadcasts["l-1"]
    # the order's 50 bps would allow 149_250_000; the limit raised the minimum
    assert b.min_out >= LIMIT and b.min_out == 150_000_000 * (10_000 - 33) // 10_000
    assert await r.executor.run(cmd) is Outcome.DUPLICATE
    assert r.venues.swaps_built == 1


async def test_a_market_that_moved_back_reopens_the_order_without_trading() -> None:
    r = crig(SigningVenues(raydium_out=149_400_000))  # both venues now pay below the limit
    cmd = limit_order()
    await r.executor.run(cmd)
    trigger(r, "l-1")
    assert await r.executor.run(cmd) is Outcome.RETRY_SCHEDULED
    row = r.journal.state.rows["l-1"]
    assert row.status is OrderStatus.PENDING and row.attempt == 2
    assert row.error is not None and row.error[0] == "limit_not_reached"
    assert r.venues.swaps_built == 0
    assert await r.executor.run(cmd, retry_attempt=2) is Outcome.OPENED
    assert r.journal.state.rows["l-1"].status is OrderStatus.OPEN
    assert r.opened == ["l-1", "l-1"]


async def test_a_limit_the_market_keeps_moving_back_from_never_fails_for_it() -> None:
    """Each race lost between trigger and routing re-opens the order; the retry budget of
    transient errors (3 attempts) does not end it."""
    r = crig(SigningVenues(raydium_out=149_400_000))
    cmd = limit_order()
    await r.executor.run(cmd)
    for attempt in range(1, 6):
        trigger(r, "l-1")
        assert await r.executor.run(cmd, retry_attempt=attempt) is Outcome.RETRY_SCHEDULED
        assert await r.executor.run(cmd, retry_attempt=attempt + 1) is Outcome.OPENED
    row = r.journal.state.rows["l-1"]
    assert row.status is OrderStatus.OPEN and row.attempt == 6 and not row.terminal
    assert "failed" not in r.outbox.statuses("l-1") and r.venues.swaps_built == 0

@pytest.mark.parametrize("lost_at", [OrderStatus.ROUTING, OrderStatus.BUILDING,
                                     OrderStatus.SUBMITTED])
async def test_a_triggered_order_whose_worker_was_lost_before_sending_opens_again(
        lost_at: OrderStatus) -> None:
    """The worker running a triggered order died while routing or building (or after
    recording a transaction that can no longer land: nothing live):
    the row is left at that status. The orphan sweep's run used to take it for an open
    order redelivered, hand it to the book and release it, so the trigger's ``open ->
    triggered`` compare-and-set could never win again: stuck, swept every few seconds
    (found by the soak, a limit order left at ``routing``). The attempt is restarted and
    the order opens again, to trade once when its trigger fires."""
    r = crig()
    cmd = limit_order()
    await r.executor.run(cmd)
    trigger(r, "l-1")
    row = r.journal.state.rows["l-1"]
    row.status = lost_at  # the lost worker's last journal write; its lease ran out
    assert await r.executor.run(cmd) is Outcome.OPENED
    assert (row.status, row.attempt, row.owner) == (OrderStatus.OPEN, 2, None)
    assert r.opened == ["l-1", "l-1"] and r.venues.swaps_built == 0
    assert r.outbox.statuses("l-1")[-2:] == ["pending", "open"]
    trigger(r, "l-1")
    assert await r.executor.run(cmd) is Outcome.CONFIRMED
    assert r.venues.swaps_built == 1



@given(st.integers(1, 10**15), st.integers(1, 10**15), st.integers(0, 5_000))
def test_floor_slippage_is_the_largest_that_keeps_the_floor(
        expected: int, floor: int, slippage: int) -> None:
    s = floor_slippage_bps(expected, floor, slippage)
    if expected < floor:
        assert s is None
        return
    assert s is not None and 0 <= s <= slippage
    assert min_out(expected, s) >= floor
    if s < slippage:
        assert min_out(expected, s + 1) < floor
