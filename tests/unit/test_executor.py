"""OrderExecutor on in-memory ports (tests/unit/executor_doubles.py): one swap per order
whatever runs it, orders held (not failed) while the journal or broker is down, the
journal's truth re-published, and a swap found on chain never repeated."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import KafkaConnectionError

from pipeline.errors import BrokerUnavailable, InsufficientFunds, JournalUnavailable
from pipeline.executor import Outcome
from pipeline.keyed_lock import KeyedLock
from tests.unit.executor_doubles import JournalState, Ledger, market_order, rig


async def test_a_market_order_confirms_with_one_memo_carrying_swap() -> None:
    r = rig()
    cmd = market_order()
    assert await r.executor.run(cmd) is Outcome.CONFIRMED
    assert r.outbox.statuses("o-1") == ["pending", "routing", "building", "submitted",
                                        "confirmed"]
    assert len(r.ledger.sent) == 1
    assert [memo for _, memo in r.ledger.landed.values()] == ["orderflow:o-1"]
    confirmed = r.outbox.events[-1]
    assert confirmed.data["amountOut"] == 150_000_000
    assert r.journal.state.rows["o-1"].final_event == confirmed.to_json()


async def test_concurrent_runs_of_one_order_never_overlap() -> None:
    """Defect 2: a run started just as the lock's previous holder left got a second lock
    (the woken waiter had not re-acquired it yet) and ran beside the waiter."""
    r = rig()
    cmd = market_order()
    first = asyncio.create_task(r.executor.run(cmd))
    second = asyncio.create_task(r.executor.run(cmd))
    await first
    third = asyncio.create_task(r.executor.run(cmd))  # arrives while `second` is waking up
    outcomes = await asyncio.gather(second, third)
    assert r.journal.state.max_claims_running == 1
    assert outcomes == [Outcome.DUPLICATE, Outcome.DUPLICATE]
    assert len(r.ledger.sent) == 1


async def test_keyed_lock_forgets_a_key_only_when_its_last_user_leaves() -> None:
    locks = KeyedLock()
    inside: list[str] = []
    peak = 0

    async def user(name: str) -> None:
        nonlocal peak
        async with locks.hold("k"):
            inside.append(name)
            peak = max(peak, len(inside))
            await asyncio.sleep(0)
            inside.remove(name)

    a = asyncio.create_task(user("a"))
    b = asyncio.create_task(user("b"))
    await a
    await asyncio.gather(b, user("c"))
    assert peak == 1
    assert "k" not in locks and len(locks) == 0


@pytest.mark.parametrize("error", [JournalUnavailable(message="connection refused")])
async def test_a_journal_outage_at_claim_holds_the_order_instead_of_ending_it(
        error: Exception) -> None:
    """Defect 3b: a database error during claim escaped the order's task; the order was
    never acked, retried or dead-lettered. The executor raises it to the caller (which
    holds the message and runs it again) and decides nothing about the order."""
    r = rig()
    r.journal.unavailable = error
    with pytest.raises(JournalUnavailable):
        await r.executor.run(market_order())
    assert r.outbox.events == [] and r.outbox.dead == [] and r.ledger.sent == []
    r.journal.unavailable = None
    assert await r.executor.run(market_order()) is Outcome.CONFIRMED
    assert len(r.ledger.sent) == 1


@pytest.mark.parametrize("status", ["pending", "routing", "building", "submitted"])
async def test_a_broker_outage_while_publishing_is_not_a_failure_of_the_order(
        status: str) -> None:
    """Defect 3c: a broker error while publishing a status became a permanent
    internal_error failure. Now it is BrokerUnavailable (after riding out a short outage
    in place); nothing is decided about the order, which resumes from the journal and
    still swaps exactly once."""
    r = rig(publish_budget_s=0.05)
    r.outbox.fail_publish = BrokerUnavailable(message=repr(KafkaConnectionError()))
    r.outbox.fail_status = status
    with pytest.raises(BrokerUnavailable):
        await r.executor.run(market_order())
    row = r.journal.state.rows["o-1"]
    assert not row.terminal and row.status != "failed" and row.error is None
    assert r.outbox.dead == []
    r.outbox.fail_publish = None
    assert await r.executor.run(market_order()) is Outcome.CONFIRMED
    assert r.outbox.statuses("o-1")[-1] == "confirmed" and len(r.ledger.sent) == 1


async def test_a_swap_the_journal_lost_is_found_on_chain_not_repeated() -> None:
    """Defect 1: journal rows lost in a crash made a redelivered order look fresh, and it
    swapped again. The memo on chain now tells the executor the swap already landed."""
    first = rig()
    assert await first.executor.run(market_order()) is Outcome.CONFIRMED
    first.journal.forget("o-1")  # PostgreSQL came back without the order's rows
    second = rig(ledger=first.ledger, owner="worker-b")  # a fresh worker, same chain
    assert await second.executor.run(market_order()) is Outcome.CONFIRMED
    assert len(first.ledger.sent) == 1
    assert second.venues.swaps_built == 0
    assert second.outbox.statuses("o-1") == ["pending", "submitted", "confirmed"]
    found = second.outbox.events[-1]
    assert found.data["signature"] == str(first.ledger.sent[0].signatures[0])
    assert found.data["amountOut"] == 150_000_000


async def test_the_wallet_history_is_read_once_for_concurrent_orders() -> None:
    r = rig()
    await asyncio.gather(*(r.executor.run(market_order(f"o-{i}")) for i in range(20)))
    assert len(r.ledger.sent) == 20
    assert r.ledger.history_calls < 20


async def test_a_venue_transaction_without_the_order_memo_is_never_signed_or_sent() -> None:
    from tests.unit.executor_doubles import SigningVenues

    r = rig(venues=SigningVenues(drop_memo=True))
    assert await r.executor.run(market_order()) is Outcome.FAILED
    assert r.ledger.sent == []
    assert r.outbox.events[-1].data["code"] == "unsafe_transaction"


async def test_a_terminal_order_met_again_republishes_its_final_event() -> None:
    """Defect 4: the read model missed a terminal event and never healed. A redelivered
    terminal order re-publishes the journal's final event (same eventId)."""
    state = JournalState()
    first = rig(state=state)
    await first.executor.run(market_order())
    final = first.outbox.events[-1]
    again = rig(state=state, ledger=first.ledger, owner="worker-b")
    assert await again.executor.run(market_order()) is Outcome.DUPLICATE
    assert [e.to_json() for e in again.outbox.events] == [final.to_json()]
    assert len(first.ledger.sent) == 1


async def test_an_order_id_reused_by_another_command_is_dead_lettered() -> None:
    r = rig()
    await r.executor.run(market_order())
    other = market_order(amount=2_000_000_000)
    assert await r.executor.run(other) is Outcome.CONFLICT
    assert [(d.code, d.command.amount_in) for d in r.outbox.dead] == [
        ("order_id_conflict", 2_000_000_000)]
    assert len(r.ledger.sent) == 1


async def test_insufficient_funds_says_what_is_needed_and_what_is_held() -> None:
    ledger = Ledger(rig().ledger.wallet)
    ledger.wallet_lamports = 100_200_000_000

    async def refuse(tx: object) -> str:
        raise InsufficientFunds(message="custom program error: 0x1")

    ledger.send = refuse  # type: ignore[method-assign]
    r = rig(ledger=ledger)
    assert await r.executor.run(market_order(amount=5_000_000_000_000)) is Outcome.FAILED
    failed = r.outbox.events[-1].data
    assert failed["code"] == "insufficient_funds"
    assert failed["message"] == "needs 5000 SOL + fees, wallet holds 100.2 SOL"


@pytest.mark.parametrize(("raydium_out", "impact", "code"), [
    (150_000_000 * 400, "0.001", "quote_deviation"),  # 400x the other venue's price
    (150_000_000, "0.412", "price_impact_too_high"),  # 41.2 % impact, bound 3 %
])
async def test_a_quote_far_from_fair_is_refused_before_anything_is_built(
        raydium_out: int, impact: str, code: str) -> None:
    """Defect 9: nothing compared the quote to anything; the engine executed at 400-1,300x
    the fair price."""
    from tests.unit.executor_doubles import SigningVenues

    r = rig(venues=SigningVenues(raydium_out=raydium_out, raydium_impact=impact))
    assert await r.executor.run(market_order()) is Outcome.FAILED
    assert r.venues.swaps_built == 0 and r.ledger.sent == []
    assert r.outbox.events[-1].data["code"] == code
    assert [d.code for d in r.outbox.dead] == [code]


async def test_the_orders_own_price_impact_bound_applies() -> None:
    from dataclasses import replace

    r = rig()  # the winning quote reports 0.1 % impact: within the default 3 %
    assert await r.executor.run(replace(market_order(), max_price_impact_bps=5)) is (
        Outcome.FAILED)
    assert r.outbox.events[-1].data["code"] == "price_impact_too_high"
    assert r.ledger.sent == []


async def test_an_rpc_outage_while_following_a_sent_swap_never_fails_the_order() -> None:
    """Found by the soak: the last attempt ended on an RPC 429 while its transaction was
    still open, and the order was failed although the swap landed (failed_with_landed_swap).
    A transaction that may still land is followed until the chain decides."""
    r = rig(max_attempts=1)
    r.watcher.outage = 5
    assert await r.executor.run(market_order()) is Outcome.CONFIRMED
    assert r.outbox.statuses("o-1")[-2:] == ["submitted", "confirmed"]
    assert len(r.ledger.sent) == 1 and r.outbox.dead == []
