"""Every valid and invalid edge of the order state machine, for each order type."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from pipeline.errors import InvalidTransition
from pipeline.lifecycle import (
    BEFORE_SUBMIT,
    TRANSITIONS,
    AttemptRestarted,
    Order,
    OrderAccepted,
    OrderCancelled,
    OrderConfirmed,
    OrderEvent,
    OrderExpired,
    OrderFailed,
    OrderOpened,
    OrderQuoted,
    OrderRouted,
    OrderStatus,
    OrderSubmitted,
    OrderTriggered,
    TransactionFound,
    apply,
    cancel_refusal,
    rank,
)
from pipeline.model import LimitTerms, OrderType, Quote, SniperTerms, Venue

S = OrderStatus
T = OrderType
EXPIRES = 60_000
QUOTE = Quote(Venue.RAYDIUM, 10, 20, 1, "m", "0", "amm", 5)
EVENT_FOR: dict[OrderStatus, OrderEvent] = {
    S.PENDING: OrderAccepted(),
    S.OPEN: OrderOpened(),
    S.TRIGGERED: OrderTriggered(slot=9, observed_out=21),
    S.ROUTING: OrderQuoted((QUOTE,)),
    S.BUILDING: OrderRouted(Venue.RAYDIUM, 20, 19),
    S.SUBMITTED: OrderSubmitted("sig", 100),
    S.CONFIRMED: OrderConfirmed("sig", 7, 10, 20, "2"),
    S.FAILED: OrderFailed("no_route", "none"),
    S.EXPIRED: OrderExpired(EXPIRES),
    S.CANCELLED: OrderCancelled("user asked", 5),
}
MARKET = Order("o-1", "in", "out", 10, 50, "http", 0, expires_at_ms=EXPIRES)
LIMIT = replace(MARKET, type=T.LIMIT, limit=LimitTerms(min_out=19))
SNIPER = replace(MARKET, type=T.SNIPER, sniper=SniperTerms(min_quote_liquidity=1_000))
NEW = {T.MARKET: MARKET, T.LIMIT: LIMIT, T.SNIPER: SNIPER}

MARKET_PATH = [S.PENDING, S.ROUTING, S.BUILDING, S.SUBMITTED, S.CONFIRMED]
CONDITIONAL_PATH = [S.PENDING, S.OPEN, S.TRIGGERED, S.ROUTING, S.BUILDING, S.SUBMITTED,
                    S.CONFIRMED]


def path_of(order_type: OrderType) -> list[OrderStatus]:
    return CONDITIONAL_PATH if order_type.conditional else MARKET_PATH


def at(status: OrderStatus, order_type: OrderType = T.MARKET) -> Order:
    """The order of ``order_type`` brought to ``status`` along its own path."""
    order = NEW[order_type]
    path = path_of(order_type)
    steps = path[:path.index(status) + 1] if status in path else [S.PENDING, status]
    for step in steps:
        order = apply(order, EVENT_FOR[step])
    assert order.status is status
    return order


def reachable(order_type: OrderType) -> list[OrderStatus]:
    return [s for s in S if order_type.conditional or s not in (S.OPEN, S.TRIGGERED)]


def test_happy_paths_carry_what_is_true() -> None:
    order = at(S.CONFIRMED)
    assert (order.venue, order.expected_out, order.min_out) == (Venue.RAYDIUM, 20, 19)
    assert (order.signature, order.slot, order.amount_in_actual, order.amount_out) == (
        "sig", 7, 10, 20)
    limit = at(S.CONFIRMED, T.LIMIT)
    assert limit.trigger == OrderTriggered(slot=9, observed_out=21)
    assert limit.limit == LimitTerms(19) and limit.amount_out == 20


def _allowed(order: Order, source: OrderStatus, target: OrderStatus) -> bool:
    """The rule, written out independently of ``apply``."""
    if target not in TRANSITIONS[source] or target is S.PENDING:
        return False  # only a restart returns to pending: test_restart_edges
    if target is S.SUBMITTED and source is not S.BUILDING:
        return False  # only a swap found on chain: test_found_on_chain_edges
    if target is S.OPEN:
        return order.type.conditional
    if target is S.ROUTING and source is S.PENDING:
        return not order.type.conditional
    return True


@pytest.mark.parametrize("order_type", list(T))
@pytest.mark.parametrize(("source", "target"), list(itertools.product(S, S)))
def test_every_edge(order_type: OrderType, source: OrderStatus, target: OrderStatus) -> None:
    if source not in reachable(order_type):
        pytest.skip(f"a {order_type} order never is {source}")
    order = at(source, order_type)
    if _allowed(order, source, target):
        assert apply(order, EVENT_FOR[target]).status is target
    else:
        with pytest.raises(InvalidTransition):
            apply(order, EVENT_FOR[target])


def test_market_orders_keep_todays_sequence() -> None:
    """v1's market order never passes through open or triggered."""
    with pytest.raises(InvalidTransition, match="does not wait on the market"):
        apply(at(S.PENDING), OrderOpened())
    with pytest.raises(InvalidTransition, match="not in the transition table"):
        apply(at(S.PENDING), EVENT_FOR[S.TRIGGERED])


@pytest.mark.parametrize("order_type", [T.LIMIT, T.SNIPER])
def test_conditional_orders_route_only_once_triggered(order_type: OrderType) -> None:
    with pytest.raises(InvalidTransition, match="routed only once triggered"):
        apply(at(S.PENDING, order_type), EVENT_FOR[S.ROUTING])
    with pytest.raises(InvalidTransition):
        apply(at(S.OPEN, order_type), EVENT_FOR[S.ROUTING])
    assert apply(at(S.TRIGGERED, order_type), EVENT_FOR[S.ROUTING]).status is S.ROUTING


@pytest.mark.parametrize("order_type", list(T))
@pytest.mark.parametrize("source", list(S))
def test_found_on_chain_edges(order_type: OrderType, source: OrderStatus) -> None:
    if source not in reachable(order_type):
        pytest.skip(f"a {order_type} order never is {source}")
    order = at(source, order_type)
    event = TransactionFound("sig-found")
    if source in BEFORE_SUBMIT:
        found = apply(order, event)
        assert (found.status, found.signature, found.attempt) == (S.SUBMITTED, "sig-found",
                                                                  order.attempt)
    else:
        with pytest.raises(InvalidTransition):
            apply(order, event)


@pytest.mark.parametrize("order_type", list(T))
@pytest.mark.parametrize("source", list(S))
def test_restart_edges(order_type: OrderType, source: OrderStatus) -> None:
    if source not in reachable(order_type):
        pytest.skip(f"a {order_type} order never is {source}")
    order = at(source, order_type)
    event = AttemptRestarted("rpc_unavailable", "timeout", 123)
    if source in (S.PENDING, S.TRIGGERED, S.ROUTING, S.BUILDING, S.SUBMITTED):
        restarted = apply(order, event)
        assert (restarted.status, restarted.attempt) == (S.PENDING, 2)
        assert restarted.signature is None and restarted.venue is None
        assert restarted.trigger is None
        assert (restarted.error_code, restarted.retry_due_ms) == ("rpc_unavailable", 123)
        # the next attempt starts where the type starts: routing, or open again
        nxt = S.OPEN if order_type.conditional else S.ROUTING
        assert apply(restarted, EVENT_FOR[nxt]).status is nxt
    else:
        with pytest.raises(InvalidTransition):
            apply(order, event)


@pytest.mark.parametrize("order_type", list(T))
@pytest.mark.parametrize("source", list(S))
def test_expiry_and_cancel_only_before_a_transaction(order_type: OrderType,
                                                     source: OrderStatus) -> None:
    if source not in reachable(order_type):
        pytest.skip(f"a {order_type} order never is {source}")
    order = at(source, order_type)
    for event, target in ((OrderExpired(EXPIRES + 1), S.EXPIRED),
                          (OrderCancelled("changed my mind", 42), S.CANCELLED)):
        if source in BEFORE_SUBMIT:
            done = apply(order, event)
            assert done.status is target and done.status.terminal
            assert done.error_code == target.value and done.ended_at_ms is not None
            assert cancel_refusal(source) is None
        else:
            with pytest.raises(InvalidTransition):
                apply(order, event)
            assert cancel_refusal(source) is not None


def test_expiry_is_published_only_when_true() -> None:
    order = at(S.OPEN, T.LIMIT)
    with pytest.raises(InvalidTransition, match="not yet"):
        apply(order, OrderExpired(EXPIRES - 1))
    assert apply(order, OrderExpired(EXPIRES)).ended_at_ms == EXPIRES
    with pytest.raises(InvalidTransition, match="no expiry"):
        apply(replace(order, expires_at_ms=None), OrderExpired(EXPIRES))
    assert not order.expired_at(EXPIRES - 1) and order.expired_at(EXPIRES)


def test_cancel_refusals_say_why() -> None:
    assert "may land" in (cancel_refusal(S.SUBMITTED) or "")
    assert cancel_refusal(S.CONFIRMED) == "the order is already confirmed"
    assert cancel_refusal(S.CANCELLED) == "the order is already cancelled"
    assert cancel_refusal(None) is None  # not seen yet: the journal decides


@pytest.mark.parametrize("order_type", list(T))
def test_new_order_only_accepts_acceptance(order_type: OrderType) -> None:
    for status, event in EVENT_FOR.items():
        if status is S.PENDING:
            continue
        with pytest.raises(InvalidTransition):
            apply(NEW[order_type], event)


def test_terminal_states_have_no_exits() -> None:
    terminal = [s for s in S if s.terminal]
    assert terminal == [S.CONFIRMED, S.FAILED, S.EXPIRED, S.CANCELLED]
    assert all(TRANSITIONS[s] == frozenset() for s in terminal)


def test_terms_go_with_their_type() -> None:
    with pytest.raises(ValueError, match="limit terms"):
        replace(MARKET, limit=LimitTerms(1))
    with pytest.raises(ValueError, match="limit terms"):
        replace(MARKET, type=T.LIMIT)
    with pytest.raises(ValueError, match="sniper terms"):
        replace(LIMIT, sniper=SniperTerms(0))
    with pytest.raises(ValueError, match="positive integer"):
        LimitTerms(0)
    with pytest.raises(ValueError, match="min_out"):
        SniperTerms(0, min_out=0)
    with pytest.raises(ValueError, match="max_price_impact_bps"):
        SniperTerms(0, max_price_impact_bps=10_001)
    with pytest.raises(ValueError, match="min_quote_liquidity"):
        SniperTerms(True)


def test_rank_orders_states_and_attempts() -> None:
    ranks = [rank(s, 1) for s in CONDITIONAL_PATH[:-1]]
    assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks)
    assert rank(S.PENDING, 2) > rank(S.SUBMITTED, 1)
    assert rank(S.CONFIRMED, 1) > rank(S.SUBMITTED, 99) and rank(S.FAILED, 1) == rank(
        S.CONFIRMED, 3) == rank(S.EXPIRED, 1) == rank(S.CANCELLED, 2)
