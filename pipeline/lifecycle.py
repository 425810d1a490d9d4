"""The order lifecycle: one status enum, one transition table, one pure ``apply``.

Every status change in the engine goes through :func:`apply`; an edge that is
not in :data:`TRANSITIONS` raises :class:`InvalidTransition`.

A market order (unchanged since v1)::

    pending -> routing -> building -> submitted -> confirmed

A conditional order (limit, sniper) waits on the market first::

    pending -> open -> triggered -> routing -> building -> submitted -> confirmed

Any state before ``confirmed`` may end ``failed``; any state before ``submitted`` (no
transaction recorded yet) may end ``expired`` (at or after the order's ``expires_at_ms``)
or ``cancelled``. From ``submitted`` on a transaction may land: a cancel is refused
(:func:`cancel_refusal`) and expiry no longer applies to that attempt.

An order whose swap is found on chain without a journal record of it (see
``pipeline/chain_history.py``) goes straight to ``submitted`` from any state before it
(:class:`TransactionFound`, the only event allowed that shortcut).

After a transient error the order goes back to ``pending`` with ``attempt + 1``
(the retry edges: it is truly waiting for its next attempt, and the event records
the error of the one that ended); a conditional order then opens again and waits for
its condition anew. Terminal states have no exits.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum

from pipeline.errors import InvalidTransition
from pipeline.model import LimitTerms, OrderType, Quote, RouteLeg, SniperTerms, Venue


class OrderStatus(StrEnum):
    PENDING = "pending"
    OPEN = "open"
    TRIGGERED = "triggered"
    ROUTING = "routing"
    BUILDING = "building"
    SUBMITTED = "submitted"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({OrderStatus.CONFIRMED, OrderStatus.FAILED, OrderStatus.EXPIRED,
                       OrderStatus.CANCELLED})

S = OrderStatus
BEFORE_SUBMIT = frozenset({S.PENDING, S.OPEN, S.TRIGGERED, S.ROUTING, S.BUILDING})
"""No transaction of the current attempt is recorded: it may still end expired or cancelled
(the journal decides a race with a transaction being recorded, see pipeline/journal.py)."""

_ENDS = frozenset({S.FAILED, S.EXPIRED, S.CANCELLED})
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PENDING: frozenset({S.OPEN, S.ROUTING, S.SUBMITTED, S.PENDING}) | _ENDS,
    S.OPEN: frozenset({S.TRIGGERED, S.SUBMITTED}) | _ENDS,
    S.TRIGGERED: frozenset({S.ROUTING, S.SUBMITTED, S.PENDING}) | _ENDS,
    S.ROUTING: frozenset({S.BUILDING, S.SUBMITTED, S.PENDING}) | _ENDS,
    S.BUILDING: frozenset({S.SUBMITTED, S.PENDING}) | _ENDS,
    S.SUBMITTED: frozenset({S.CONFIRMED, S.FAILED, S.PENDING}),
    S.CONFIRMED: frozenset(),
    S.FAILED: frozenset(),
    S.EXPIRED: frozenset(),
    S.CANCELLED: frozenset(),
}

_STAGE_RANK = {S.PENDING: 0, S.OPEN: 1, S.TRIGGERED: 2, S.ROUTING: 3, S.BUILDING: 4,
               S.SUBMITTED: 5}
TERMINAL_RANK = 1_000_000


def rank(status: OrderStatus, attempt: int) -> int:
    """Total order of an order's states, so a late older event never moves it back."""
    if status.terminal:
        return TERMINAL_RANK
    return attempt * 10 + _STAGE_RANK[status]


def cancel_refusal(status: OrderStatus | None) -> str | None:
    """Why an order at ``status`` cannot be cancelled, or ``None`` when it can."""
    if status is None or status in BEFORE_SUBMIT:
        return None
    if status.terminal:
        return f"the order is already {status.value}"
    return (f"the order is {status.value}: its transaction was sent and may land, so it can "
            "no longer be cancelled")


# ---- events (past tense): the only inputs of ``apply`` ----


@dataclass(frozen=True, slots=True)
class OrderAccepted:
    pass


@dataclass(frozen=True, slots=True)
class OrderOpened:
    """A conditional order now waits on the market (it is in the trigger book)."""


@dataclass(frozen=True, slots=True)
class OrderTriggered:
    """The order's condition held: a limit's best net quote reached its minimum
    (``observed_out``), or a sniper's pool appeared (``pool``, created at ``pool_slot``)."""

    slot: int
    observed_out: int | None = None
    pool: str | None = None
    pool_slot: int | None = None


@dataclass(frozen=True, slots=True)
class OrderQuoted:
    quotes: tuple[Quote, ...]
    quote_errors: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class OrderRouted:
    venue: Venue
    expected_out: int
    min_out: int
    route: tuple[RouteLeg, ...] = ()  # the pools, amounts and shares (two legs: a split)


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
class OrderExpired:
    """The order was reached at ``at_ms``, at or after its expiry, before any transaction."""

    at_ms: int


@dataclass(frozen=True, slots=True)
class OrderCancelled:
    """A ``CancelOrder`` command won: no transaction was recorded for the order."""

    reason: str
    requested_at_ms: int


@dataclass(frozen=True, slots=True)
class AttemptRestarted:
    """A transient error (or a lost worker) ended this attempt; the next one is due later."""

    code: str
    message: str
    due_ms: int


OrderEvent = (
    OrderAccepted
    | OrderOpened
    | OrderTriggered
    | OrderQuoted
    | OrderRouted
    | OrderSubmitted
    | TransactionFound
    | OrderConfirmed
    | OrderFailed
    | OrderExpired
    | OrderCancelled
    | AttemptRestarted
)


@dataclass(frozen=True, slots=True)
class Order:
    """The engine's view of one order; immutable, advanced only by :func:`apply`.

    ``expires_at_ms`` is resolved (a market order without one on the wire gets the
    engine's default); ``limit``/``sniper`` hold the terms of their type and nothing else.
    """

    order_id: str
    token_in: str
    token_out: str
    amount_in: int
    slippage_bps: int
    source: str
    submitted_at_ms: int
    status: OrderStatus | None = None
    attempt: int = 1
    type: OrderType = OrderType.MARKET
    expires_at_ms: int | None = None
    limit: LimitTerms | None = None
    sniper: SniperTerms | None = None
    quotes: tuple[Quote, ...] = ()
    quote_errors: tuple[tuple[str, str], ...] = ()
    venue: Venue | None = None
    expected_out: int | None = None
    min_out: int | None = None
    route: tuple[RouteLeg, ...] = ()
    signature: str | None = None
    last_valid_block_height: int | None = None
    slot: int | None = None
    amount_in_actual: int | None = None
    amount_out: int | None = None
    executed_price: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    retry_due_ms: int | None = None
    trigger: OrderTriggered | None = None
    ended_at_ms: int | None = None  # when it expired or was cancelled

    def __post_init__(self) -> None:
        if (self.limit is not None) != (self.type is OrderType.LIMIT):
            raise ValueError(f"order {self.order_id}: limit terms go with a limit order only")
        if (self.sniper is not None) != (self.type is OrderType.SNIPER):
            raise ValueError(f"order {self.order_id}: sniper terms go with a sniper order only")

    def expired_at(self, now_ms: int) -> bool:
        """Whether ``now_ms`` is at or past the order's expiry."""
        return self.expires_at_ms is not None and now_ms >= self.expires_at_ms


_TARGET: dict[type, OrderStatus] = {
    OrderAccepted: S.PENDING,
    OrderOpened: S.OPEN,
    OrderTriggered: S.TRIGGERED,
    OrderQuoted: S.ROUTING,
    OrderRouted: S.BUILDING,
    OrderSubmitted: S.SUBMITTED,
    TransactionFound: S.SUBMITTED,
    OrderConfirmed: S.CONFIRMED,
    OrderFailed: S.FAILED,
    OrderExpired: S.EXPIRED,
    OrderCancelled: S.CANCELLED,
    AttemptRestarted: S.PENDING,
}


def target_status(event: OrderEvent) -> OrderStatus:
    return _TARGET[type(event)]


def can_transition(current: OrderStatus | None, target: OrderStatus) -> bool:
    if current is None:
        return target is S.PENDING
    return target in TRANSITIONS[current]


def _refusal(order: Order, event: OrderEvent, target: OrderStatus) -> str | None:
    """Why an edge of the table is still not this order's (its type, the event), or None."""
    current = order.status
    conditional = order.type.conditional
    if target is S.PENDING and current is not None and not isinstance(event, AttemptRestarted):
        return "only a restart returns an order to pending"
    if (target is S.SUBMITTED and current is not S.BUILDING
            and not isinstance(event, TransactionFound)):
        return "only a swap found on chain skips routing and building"
    if target is S.OPEN and not conditional:
        return "a market order does not wait on the market"
    if target is S.ROUTING and current is S.PENDING and conditional:
        return f"a {order.type.value} order is routed only once triggered"
    if isinstance(event, OrderExpired) and not order.expired_at(event.at_ms):
        return (f"it expires at {order.expires_at_ms}, not yet at {event.at_ms}"
                if order.expires_at_ms is not None else "it has no expiry")
    return None


def apply(order: Order, event: OrderEvent) -> Order:
    """Return the order after ``event``; raise :class:`InvalidTransition` on a missing edge."""
    target = target_status(event)
    current = order.status
    why = None if can_transition(current, target) else "not in the transition table"
    why = why or _refusal(order, event, target)
    if why is not None:
        raise InvalidTransition(
            message=f"order {order.order_id} ({order.type.value}): {current or 'new'} -> "
            f"{target} ({type(event).__name__}) is not a lifecycle edge: {why}"
        )
    replace = dataclasses.replace
    match event:
        case OrderAccepted() | OrderOpened():
            return replace(order, status=target)
        case OrderTriggered():
            return replace(order, status=target, trigger=event)
        case OrderQuoted(quotes=quotes, quote_errors=errors):
            return replace(order, status=target, quotes=quotes, quote_errors=errors)
        case OrderRouted(venue=venue, expected_out=expected, min_out=min_out, route=route):
            return replace(order, status=target, venue=venue, expected_out=expected,
                           min_out=min_out, route=route)
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
        case OrderExpired(at_ms=at):
            return replace(order, status=target, ended_at_ms=at, error_code="expired",
                           error_message=f"the order expired at {order.expires_at_ms} ms "
                           "before it traded")
        case OrderCancelled(reason=reason, requested_at_ms=at):
            return replace(order, status=target, ended_at_ms=at, error_code="cancelled",
                           error_message=reason)
        case AttemptRestarted(code=code, message=message, due_ms=due):
            return replace(order, status=target, attempt=order.attempt + 1, quotes=(),
                           quote_errors=(), venue=None, expected_out=None, min_out=None,
                           route=(), signature=None, last_valid_block_height=None, trigger=None,
                           error_code=code, error_message=message, retry_due_ms=due)
    raise InvalidTransition(message=f"unknown event {event!r}")  # pragma: no cover
