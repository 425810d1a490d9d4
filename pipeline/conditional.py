"""The executor's steps for conditional orders (limit, sniper) before and after the wait.

An accepted conditional order is opened: ``pending -> open`` published, the journal row
left at ``open`` with no owner, and the order handed to the trigger agent
(:class:`Opener`, ``pipeline/trigger_agent.py``), which holds it in its book. The
journal row is the durable record of every open order: the agent rebuilds its book from
it, and its trigger is a compare-and-set on it (``open -> triggered``,
``pipeline/trigger_store.py``), so a trigger fires at most once across workers.

Once triggered the executor runs the order like a market order from ``triggered``: the
journal's claim, broadcast records and chain look-up make the execution exactly-once.
Its minimum output is raised to the order's own (:func:`floor_slippage_bps`): a limit
never fills worse than its limit on chain. When the market moved back between trigger
and routing, the attempt ends ``limit_not_reached`` (transient): the order goes back to
``pending`` with the next attempt and opens again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from enum import StrEnum

from pipeline.errors import BrokerUnavailable, TransientError
from pipeline.lifecycle import (
    AttemptRestarted,
    Order,
    OrderAccepted,
    OrderOpened,
    OrderStatus,
    apply,
)
from pipeline.ports import Execution, JournalPort
from pipeline.router import Quotes, Route, Router
from pipeline.status_out import StatusPublisher
from pipeline.wire import ExecuteOrder, now_ms

log = logging.getLogger(__name__)

BPS = 10_000

Opener = Callable[[ExecuteOrder], Awaitable[None]]
"""Hands an open order to the trigger agent that owns its pair (durable when it returns)."""


class Parked(StrEnum):
    OPENED = "opened"  # waiting in the trigger book


class LimitNotReached(TransientError):
    default_code = "limit_not_reached"


def order_floor(order: Order) -> int | None:
    """The least output the order accepts on chain, from its own terms."""
    if order.limit is not None:
        return order.limit.min_out
    if order.sniper is not None:
        return order.sniper.min_out
    return None


def floor_slippage_bps(expected_out: int, floor: int, slippage_bps: int) -> int | None:
    """The largest slippage (at most the order's) whose minimum output,
    ``expected * (10000 - s) // 10000``, is still at least ``floor``; None when
    ``expected_out`` itself is below it. Proof: with ``s = (expected - floor) * 10000 //
    expected``, ``expected * (10000 - s) >= expected * 10000 - (expected - floor) * 10000
    = floor * 10000``, so the floored minimum is at least ``floor``."""
    if expected_out < floor or expected_out <= 0:
        return None
    return min(slippage_bps, (expected_out - floor) * BPS // expected_out)


async def floor_quotes(router: Router, order: Order, quotes: Quotes) -> tuple[Order, Quotes]:
    """The order to route with and its quotes: for an order with a floor, quoted again at
    the slippage that makes the venue's minimum at least the floor (one more round of
    quotes only when the order's own slippage would go below it)."""
    floor = order_floor(order)
    usable = [q.out_amount for q in quotes.quotes if q.out_amount > 0]
    if floor is None or not usable:
        return order, quotes
    slippage = floor_slippage_bps(max(usable), floor, order.slippage_bps)
    if slippage is None:
        raise LimitNotReached(message=f"the best quote pays {max(usable)}, below the "
                              f"order's minimum {floor}: the market moved back")
    if slippage == order.slippage_bps:
        return order, quotes
    tight = replace(order, slippage_bps=slippage)
    return tight, await router.quote_all(tight)


def check_floor(order: Order, route: Route) -> None:
    """The route's on-chain minimum must hold the order's own."""
    floor = order_floor(order)
    if floor is not None and route.min_out < floor:
        raise LimitNotReached(message=f"the route's minimum {route.min_out} is below the "
                              f"order's {floor}: the market moved back")


class ConditionalSteps:
    """What the executor does for a conditional order that is not triggered yet."""

    def __init__(self, journal: JournalPort, status: StatusPublisher,
                 opener: Opener | None) -> None:
        self._journal = journal
        self._status = status
        self.opener = opener  # set by the trigger agent once it runs

    async def park(self, cmd: ExecuteOrder, ex: Execution) -> Parked | Order:
        """Open the order; return it at ``triggered`` when the trigger agent already fired
        it, for the executor to route. (An expiry or a cancel was handled before this, by
        ``pipeline/order_end.py``.)"""
        base = cmd.to_order()
        status = ex.status
        if status is OrderStatus.TRIGGERED:
            return replace(base, status=status, attempt=ex.attempt)
        opener = self.opener
        if opener is None:  # the trigger agent is not up yet: hold the order, decide nothing
            raise BrokerUnavailable(message="the trigger agent is not ready to take open "
                                    "orders yet")
        new = status is OrderStatus.PENDING and ex.attempt == 1
        at = replace(base, status=None if new else status, attempt=ex.attempt)
        if status not in (OrderStatus.PENDING, OrderStatus.OPEN):
            at = await self._restart_lost(cmd, at)
        if at.status is None:
            at = apply(at, OrderAccepted())
            await self._status.announce(at, cmd)
        if at.status is OrderStatus.PENDING:
            at = apply(at, OrderOpened())
            await self._journal.advance(cmd.order_id, status=OrderStatus.OPEN,
                                        attempt=at.attempt, release=True)
            await self._status.announce(at, cmd)
        else:  # open already (a redelivery): hand it over again, idempotently
            await self._journal.release(cmd.order_id)
        await opener(cmd)
        return Parked.OPENED

    async def _restart_lost(self, cmd: ExecuteOrder, at: Order) -> Order:
        """A triggered order whose worker was lost mid-attempt (routing, building, or
        submitted with nothing live: the executor checked) is back at ``pending`` with the
        next attempt, to open again. Handed to the book at its old status, its trigger's
        ``open -> triggered`` compare-and-set could never win: it would wait forever."""
        code, message = "worker_lost", "the worker running this attempt stopped"
        log.info("order %s: attempt %d ended at %s (%s); opening it again", cmd.order_id,
                 at.attempt, at.status, code)
        await self._journal.advance(cmd.order_id, status=OrderStatus.PENDING,
                                    attempt=at.attempt + 1, retry_due_ms=now_ms(),
                                    error=(code, message))
        at = apply(at, AttemptRestarted(code, message, now_ms()))
        await self._status.announce(at, cmd)
        return at
