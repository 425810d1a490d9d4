"""Expiry and cancel in the executor (pipeline/order_end.py) on in-memory ports: an order
reached after its expiry ends ``expired`` without a transaction, and a cancel and an
execution race to exactly one outcome, decided by the journal."""

from __future__ import annotations

from dataclasses import replace

from pipeline.executor import Outcome
from pipeline.lifecycle import OrderStatus
from pipeline.model import Quote
from pipeline.order_end import Endings
from pipeline.ports import CancelRequest
from pipeline.venues import SwapTransaction
from tests.unit.executor_doubles import SUBMITTED_MS, SigningVenues, market_order, rig

CANCEL = CancelRequest("changed my mind", SUBMITTED_MS + 5, "http")


async def test_a_market_order_reached_after_its_expiry_ends_expired_without_a_swap() -> None:
    r = rig(market_ttl_ms=60_000)  # submitted long ago: its default expiry has passed
    assert await r.executor.run(market_order()) is Outcome.EXPIRED
    assert r.outbox.statuses("o-1") == ["expired"]
    assert (r.venues.swaps_built, r.ledger.sent) == (0, [])
    event = r.outbox.events[-1]
    assert event.data["code"] == "expired" and event.to_json()["schemaVersion"] == 2
    row = r.journal.state.rows["o-1"]
    assert (row.status, row.terminal, row.final_event) == (OrderStatus.EXPIRED, True,
                                                           event.to_json())
    # met again (redelivery): the journal's final event, nothing new
    assert await r.executor.run(market_order()) is Outcome.DUPLICATE
    assert r.outbox.statuses("o-1") == ["expired", "expired"]
    assert r.ledger.sent == []


async def test_its_own_expiry_wins_over_the_default() -> None:
    r = rig(market_ttl_ms=60_000)
    far = replace(market_order(), expires_at_ms=SUBMITTED_MS + 10**13)
    assert await r.executor.run(far) is Outcome.CONFIRMED


async def test_an_order_that_expires_while_routing_sends_nothing() -> None:
    r = rig()
    cmd = replace(market_order(), expires_at_ms=2_000_000_000_000)
    clock = [1_999_999_999_000]
    r.executor._endings = Endings(r.journal, r.executor._status, lambda: clock[0])

    class SlowVenues(SigningVenues):
        async def quote(self, *args: object, **kwargs: object) -> Quote:
            clock[0] = 2_000_000_000_000  # the routing took until the expiry
            return await super().quote(*args, **kwargs)  # type: ignore[arg-type]

    r.executor._venues = r.executor._router._venues = SlowVenues()
    assert await r.executor.run(cmd) is Outcome.EXPIRED
    assert r.outbox.statuses("o-1") == ["pending", "routing", "building", "expired"]
    assert r.ledger.sent == [] and r.journal.state.broadcasts == {}


async def test_a_cancel_before_the_order_is_seen_ends_it_cancelled() -> None:
    r = rig()
    assert await r.journal.cancel("o-1", CANCEL) is None
    assert await r.executor.run(market_order()) is Outcome.CANCELLED
    assert r.outbox.statuses("o-1") == ["cancelled"]
    assert r.outbox.events[-1].data == {"code": "cancelled", "reason": "changed my mind",
                                        "requestedAt": "2023-11-14T22:13:20.005Z"}
    assert (r.venues.swaps_built, r.ledger.sent) == (0, [])
    assert await r.executor.run(market_order()) is Outcome.DUPLICATE


async def test_a_cancel_that_wins_during_building_refuses_the_transaction() -> None:
    """The race: the cancel reaches the journal after routing, before the transaction is
    recorded; the record is refused, nothing is sent, the order ends cancelled."""
    r = rig()
    journal = r.journal

    class CancelledMeanwhile(SigningVenues):
        async def swap_transaction(self, quote: Quote, user_public_key: str, *,
                                   memo: str | None = None,
                                   priority_fee_micro_lamports: int | None = None
                                   ) -> SwapTransaction:
            assert await journal.cancel("o-1", CANCEL) is None  # the cancel wins
            return await super().swap_transaction(quote, user_public_key, memo=memo)

    r.executor._venues = CancelledMeanwhile()
    assert await r.executor.run(market_order()) is Outcome.CANCELLED
    assert r.outbox.statuses("o-1") == ["pending", "routing", "building", "cancelled"]
    assert r.ledger.sent == [] and r.journal.state.broadcasts == {}
    assert r.journal.state.rows["o-1"].status is OrderStatus.CANCELLED


async def test_a_cancel_after_the_transaction_was_recorded_is_refused() -> None:
    r = rig()
    journal = r.journal
    refusals: list[str | None] = []

    original = journal.record_broadcast

    async def record_then_cancel(order_id: str, **kwargs: object) -> None:
        await original(order_id, **kwargs)  # type: ignore[arg-type]
        refusals.append(await journal.cancel(order_id, CANCEL))  # the execution won

    journal.record_broadcast = record_then_cancel  # type: ignore[method-assign]
    assert await r.executor.run(market_order()) is Outcome.CONFIRMED
    assert len(refusals) == 1 and "was sent and may land" in (refusals[0] or "")
    assert len(r.ledger.sent) == 1
    assert "cancelled" not in r.outbox.statuses("o-1")
    # and once it is confirmed, a cancel is refused for that
    assert await journal.cancel("o-1", CANCEL) == "the order is already confirmed"


async def test_a_cancel_decided_before_a_crash_is_finished_on_resume() -> None:
    r = rig()
    assert await r.journal.cancel("o-1", CANCEL) is None
    cmd = market_order()
    ex = await r.journal.claim("o-1", cmd.to_json())
    assert ex is not None and ex.cancel == CANCEL
    await r.journal.advance("o-1", status=OrderStatus.CANCELLED, attempt=1,
                            error=("cancelled", CANCEL.reason))  # decided, then the crash
    await r.journal.release("o-1")
    assert await r.executor.run(cmd) is Outcome.CANCELLED
    assert r.outbox.statuses("o-1") == ["cancelled"]
    assert r.journal.state.rows["o-1"].terminal
