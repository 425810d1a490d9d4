"""Every valid and invalid edge of the order state machine."""

from __future__ import annotations

import itertools

import pytest

from pipeline.errors import InvalidTransition
from pipeline.lifecycle import (
    TRANSITIONS,
    AttemptRestarted,
    Order,
    OrderAccepted,
    OrderConfirmed,
    OrderEvent,
    OrderFailed,
    OrderQuoted,
    OrderRouted,
    OrderStatus,
    OrderSubmitted,
    TransactionFound,
    apply,
    rank,
)
from pipeline.model import Quote, Venue

S = OrderStatus
QUOTE = Quote(Venue.RAYDIUM, 10, 20, 1, "m", "0", "amm", 5)
EVENT_FOR: dict[OrderStatus, OrderEvent] = {
    S.PENDING: OrderAccepted(),
    S.ROUTING: OrderQuoted((QUOTE,)),
    S.BUILDING: OrderRouted(Venue.RAYDIUM, 20, 19),
    S.SUBMITTED: OrderSubmitted("sig", 100),
    S.CONFIRMED: OrderConfirmed("sig", 7, 10, 20, "2"),
    S.FAILED: OrderFailed("no_route", "none"),
}
NEW = Order("o-1", "in", "out", 10, 50, "http", 0)


def at(status: OrderStatus) -> Order:
    order = apply(NEW, OrderAccepted())
    path = {S.PENDING: [], S.ROUTING: [S.ROUTING], S.BUILDING: [S.ROUTING, S.BUILDING],
            S.SUBMITTED: [S.ROUTING, S.BUILDING, S.SUBMITTED],
            S.CONFIRMED: [S.ROUTING, S.BUILDING, S.SUBMITTED, S.CONFIRMED],
            S.FAILED: [S.FAILED]}[status]
    for step in path:
        order = apply(order, EVENT_FOR[step])
    assert order.status is status
    return order


def test_happy_path_carries_what_is_true() -> None:
    order = at(S.CONFIRMED)
    assert (order.venue, order.expected_out, order.min_out) == (Venue.RAYDIUM, 20, 19)
    assert (order.signature, order.slot, order.amount_in_actual, order.amount_out) == (
        "sig", 7, 10, 20)


@pytest.mark.parametrize(("source", "target"), list(itertools.product(S, S)))
def test_every_forward_edge(source: OrderStatus, target: OrderStatus) -> None:
    order = at(source)
    allowed = target in TRANSITIONS[source] and target is not S.PENDING and not (
        target is S.SUBMITTED and source in (S.PENDING, S.ROUTING))
    # (only a restart returns an order to pending: test_restart_edges; only a swap found on
    # chain skips to submitted: test_found_on_chain_edges)
    if allowed:
        assert apply(order, EVENT_FOR[target]).status is target
    else:
        with pytest.raises(InvalidTransition):
            apply(order, EVENT_FOR[target])


@pytest.mark.parametrize("source", list(S))
def test_found_on_chain_edges(source: OrderStatus) -> None:
    order = at(source)
    event = TransactionFound("sig-found")
    if source in (S.PENDING, S.ROUTING, S.BUILDING):
        found = apply(order, event)
        assert (found.status, found.signature, found.attempt) == (S.SUBMITTED, "sig-found",
                                                                  order.attempt)
    else:
        with pytest.raises(InvalidTransition):
            apply(order, event)


@pytest.mark.parametrize("source", list(S))
def test_restart_edges(source: OrderStatus) -> None:
    order = at(source)
    event = AttemptRestarted("rpc_unavailable", "timeout", 123)
    if source in (S.ROUTING, S.BUILDING, S.SUBMITTED):
        restarted = apply(order, event)
        assert (restarted.status, restarted.attempt) == (S.PENDING, 2)
        assert restarted.signature is None and restarted.venue is None
        assert (restarted.error_code, restarted.retry_due_ms) == ("rpc_unavailable", 123)
        assert apply(restarted, EVENT_FOR[S.ROUTING]).status is S.ROUTING
    else:
        with pytest.raises(InvalidTransition):
            apply(order, event)


def test_new_order_only_accepts_acceptance() -> None:
    for status, event in EVENT_FOR.items():
        if status is S.PENDING:
            continue
        with pytest.raises(InvalidTransition):
            apply(NEW, event)


def test_terminal_states_have_no_exits() -> None:
    assert TRANSITIONS[S.CONFIRMED] == frozenset() == TRANSITIONS[S.FAILED]


def test_rank_orders_states_and_attempts() -> None:
    ranks = [rank(s, 1) for s in (S.PENDING, S.ROUTING, S.BUILDING, S.SUBMITTED)]
    assert ranks == sorted(ranks) and len(set(ranks)) == 4
    assert rank(S.PENDING, 2) > rank(S.SUBMITTED, 1)
    assert rank(S.CONFIRMED, 1) > rank(S.SUBMITTED, 99) and rank(S.FAILED, 1) == rank(
        S.CONFIRMED, 3)
