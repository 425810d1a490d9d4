"""The order lifecycle: one status enum, one transition table, one pure ``apply``.

Every status change in the engine goes through :func:`apply`; an edge that is
not in :data:`TRANSITIONS` raises :class:`InvalidTransition`.

    pending -> routing -> building -> submitted -> confirmed
        \\________\\__________\\___________\\-------> failed

An order whose swap is found on chain without a journal record of it (see
``pipeline/chain_history.py``) goes straight to ``submitted`` from ``pending``,
``routing`` or ``building`` (:class:`TransactionFound`, the only event allowed that
shortcut).

After a transient error the order goes back to ``pending`` with ``attempt + 1``
(the retry edges: it is truly waiting for its next attempt, and the event records
the error of the one that ended); terminal states have no exits.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum

from pipeline.errors import InvalidTransition
from pipeline.model import Quote, Venue


class OrderStatus(StrEnum):
    PENDING = "pending"
    ROUTING = "routing"
    BUILDING = "building"
    SUBMITTED = "submitted"
    CONFIRMED = "confirmed"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (OrderStatus.CONFIRMED, OrderStatus.FAILED)


S = OrderStatus
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PENDING: frozenset({S.ROUTING, S.SUBMITTED, S.FAILED}),
    S.ROUTING: frozenset({S.BUILDING, S.SUBMITTED, S.FAILED, S.PENDING}),
    S.BUILDING: frozenset({S.SUBMITTED, S.FAILED, S.PENDING}),
    S.SUBMITTED: frozenset({S.CONFIRMED, S.FAILED, S.PENDING}),
    S.CONFIRMED: frozenset(),
    S.FAILED: frozenset(),
}

_STAGE_RANK = {S.PENDING: 0, S.ROUTING: 1, S.BUILDING: 2, S.SUBMITTED: 3}
TERMINAL_RANK = 1_000_000


def rank(status: OrderStatus, attempt: int) -> int:
    """Total order of an order's states, so a late older event never moves it back."""
    if status.terminal:
        return TERMINAL_RANK
    return attempt * 10 + _STAGE_RANK[status]


# ---- events (past tense): the only inputs of ``apply`` ----


@dataclass(frozen=True, slots=True)
class OrderAccepted:
    pass


@dataclass(frozen=True, slots=True)
class OrderQuoted:
    quotes: tuple[Quote, ...]
    quote_errors: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class OrderRouted:
    venue: Venue
    expected_out: int
    min_out: int


@dataclass(frozen=True, slots=True)
class OrderSubmitted:
    signature: str
    last_valid_block_height: int


@dataclass(frozen=True, slots=True)
class TransactionFound:
    """The order's landed transaction was found on chain (by its memo), not sent by us now."""

    signature: str


@dataclass(frozen=True, slots=True)
class OrderConfirmed:
    signature: str
    slot: int
    amount_in: int
    amount_out: int
    executed_price: str


@dataclass(frozen=True, slots=True)
class OrderFailed:
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class AttemptRestarted:
    """A transient error (or a lost worker) ended this attempt; the next one is due later."""

    code: str
    message: str
    due_ms: int


OrderEvent = (
    OrderAccepted
    | OrderQuoted
    | OrderRouted
    | OrderSubmitted
    | TransactionFound
    | OrderConfirmed
    | OrderFailed
    | AttemptRestarted
)


@dataclass(frozen=True, slots=True)
class Order:
    """The engine's view of one order; immutable, advanced only by :func:`apply`."""

    order_id: str
    token_in: str
    token_out: str
    amount_in: int
    slippage_bps: int
    source: str
    submitted_at_ms: int
    status: OrderStatus | None = None
    attempt: int = 1
    quotes: tuple[Quote, ...] = ()
    quote_errors: tuple[tuple[str, str], ...] = ()
    venue: Venue | None = None
    expected_out: int | None = None
    min_out: int | None = None
    signature: str | None = None
    last_valid_block_height: int | None = None
    slot: int | None = None
    amount_in_actual: int | None = None
    amount_out: int | None = None
    executed_price: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    retry_due_ms: int | None = None


_TARGET: dict[type, OrderStatus] = {
    OrderAccepted: S.PENDING,
    OrderQuoted: S.ROUTING,
    OrderRouted: S.BUILDING,
    OrderSubmitted: S.SUBMITTED,
    TransactionFound: S.SUBMITTED,
    OrderConfirmed: S.CONFIRMED,
    OrderFailed: S.FAILED,
    AttemptRestarted: S.PENDING,
}


def target_status(event: OrderEvent) -> OrderStatus:
    return _TARGET[type(event)]


def can_transition(current: OrderStatus | None, target: OrderStatus) -> bool:
    if current is None:
        return target is S.PENDING
    return target in TRANSITIONS[current]


def apply(order: Order, event: OrderEvent) -> Order:
    """Return the order after ``event``; raise :class:`InvalidTransition` on a missing edge."""
    target = target_status(event)
    current = order.status
    restart = isinstance(event, AttemptRestarted)
    valid = can_transition(current, target)
    if target is S.PENDING and current is not None and not restart:
        valid = False  # only a restart returns an order to pending
    if (target is S.SUBMITTED and current in (S.PENDING, S.ROUTING)
            and not isinstance(event, TransactionFound)):
        valid = False  # only a swap found on chain skips routing and building
    if not valid:
        raise InvalidTransition(
            message=f"order {order.order_id}: {current or 'new'} -> {target} "
            f"({type(event).__name__}) is not a lifecycle edge"
        )
    replace = dataclasses.replace
    match event:
        case OrderAccepted():
            return replace(order, status=target)
        case OrderQuoted(quotes=quotes, quote_errors=errors):
            return replace(order, status=target, quotes=quotes, quote_errors=errors)
        case OrderRouted(venue=venue, expected_out=expected, min_out=min_out):
            return replace(order, status=target, venue=venue, expected_out=expected,
                           min_out=min_out)
        case OrderSubmitted(signature=sig, last_valid_block_height=lvbh):
            return replace(order, status=target, signature=sig, last_valid_block_height=lvbh)
        case TransactionFound(signature=sig):
            return replace(order, status=target, signature=sig)
        case OrderConfirmed(signature=sig, slot=slot, amount_in=a_in, amount_out=a_out,
                            executed_price=price):
            return replace(order, status=target, signature=sig, slot=slot,
                           amount_in_actual=a_in, amount_out=a_out, executed_price=price)
        case OrderFailed(code=code, message=message):
            return replace(order, status=target, error_code=code, error_message=message)
        case AttemptRestarted(code=code, message=message, due_ms=due):
            return replace(order, status=target, attempt=order.attempt + 1, quotes=(),
                           quote_errors=(), venue=None, expected_out=None, min_out=None,
                           signature=None, last_valid_block_height=None,
                           error_code=code, error_message=message, retry_due_ms=due)
    raise InvalidTransition(message=f"unknown event {event!r}")  # pragma: no cover
