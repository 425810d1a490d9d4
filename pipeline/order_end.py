"""Ending an order without trading: ``expired`` or ``cancelled``.

The executor asks :meth:`Endings.due` once it knows no transaction of the order may land
(after the journal's broadcast check): a cancel that won in the journal ends it
``cancelled``, a clock at or past its expiry ends it ``expired``. Inside an attempt, a
transaction whose record the journal refuses for a cancel (:class:`~pipeline.ports.CancelWon`)
and an expiry reached while routing (:class:`Expired`) end it the same way, before anything
is sent. Decide durably, publish, then close the journal: a crash in between resumes into
the same ending (the journal's non-terminal ``expired``/``cancelled`` status and the cancel
it keeps lead back here).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace

import orjson

from pipeline.errors import OrderflowError
from pipeline.lifecycle import (
    BEFORE_SUBMIT,
    Order,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderStatus,
    apply,
)
from pipeline.ports import CancelRequest, CancelWon, Execution, JournalPort
from pipeline.status_out import StatusPublisher
from pipeline.wire import CancelOrder, ExecuteOrder, decode_execute_order, now_ms

log = logging.getLogger(__name__)
Ending = OrderExpired | OrderCancelled


class Expired(OrderflowError):
    """The order's expiry passed during this attempt, before its transaction was recorded."""

    default_code = "expired"


def cancelled(request: CancelRequest) -> OrderCancelled:
    return OrderCancelled(request.reason, request.requested_at_ms)


class Endings:
    def __init__(self, journal: JournalPort, status: StatusPublisher,
                 clock: Callable[[], int] = now_ms) -> None:
        self._journal = journal
        self._status = status
        self._clock = clock

    def due(self, order: Order, ex: Execution) -> Ending | None:
        """How the order ends now without trading, if it does (a cancel before expiry)."""
        if ex.cancel is not None:
            return cancelled(ex.cancel)
        now = self._clock()
        return OrderExpired(now) if order.expired_at(now) else None

    def check_before_send(self, order: Order) -> None:
        """Raise :class:`Expired` if the order expired while its attempt was routing."""
        now = self._clock()
        if order.expired_at(now):
            raise Expired(message=f"expired at {order.expires_at_ms} ms, before its "
                          f"transaction was recorded ({now} ms)")

    @staticmethod
    def of_error(exc: OrderflowError, now: int) -> Ending | None:
        """The ending an attempt's error means, if it means one."""
        if isinstance(exc, CancelWon):
            return cancelled(exc.request)
        if isinstance(exc, Expired):
            return OrderExpired(now)
        return None

    def now(self) -> int:
        return self._clock()

    async def end(self, cmd: ExecuteOrder, order: Order, ending: Ending) -> Order:
        """End ``order`` (as it stands in this run: new, or a state before ``submitted``)
        with ``ending``; the journal first, then the event, then the journal closed."""
        if order.status is None:
            order = apply(order, OrderAccepted())
        elif order.status not in BEFORE_SUBMIT:
            # every transaction of it is provably dead (the caller checked): as good as new
            order = replace(order, status=OrderStatus.PENDING)
        done = apply(order, ending)
        assert done.status is not None and done.error_code is not None
        log.info("order %s %s at %s: %s", order.order_id, done.status, order.status,
                 done.error_message)
        error = (done.error_code, done.error_message or done.error_code)
        await self._journal.advance(order.order_id, status=done.status, attempt=order.attempt,
                                    error=error)
        final = await self._status.announce(done, cmd)
        await self._journal.advance(order.order_id, status=done.status, attempt=order.attempt,
                                    terminal=True, final_event=final.to_json())
        return done


async def cancel_order(cmd: CancelOrder, journal: JournalPort,
                       run: Callable[[ExecuteOrder], Awaitable[object]]) -> str | None:
    """Handle a ``CancelOrder`` command: the journal decides it against the order's
    execution; when it wins, the order is run once more to end it ``cancelled`` (a run that
    holds the order meanwhile ends it itself, at its next journal step). Returns why the
    cancel was refused, or ``None`` (the caller keeps a refusal on the dead-letter topic)."""
    request = CancelRequest(cmd.reason or f"cancelled by {cmd.source}", cmd.requested_at_ms,
                            cmd.source)
    refusal = await journal.cancel(cmd.order_id, request)
    if refusal is not None:
        log.info("order %s: cancel refused: %s", cmd.order_id, refusal)
        return refusal
    doc = await journal.command(cmd.order_id)
    if doc is None:  # not seen yet: its claim will find the cancel and end it
        log.info("order %s: cancelled before it arrived", cmd.order_id)
        return None
    await run(decode_execute_order(orjson.dumps(doc)))
    return None
