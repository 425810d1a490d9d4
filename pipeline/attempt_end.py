"""How one attempt of an order ends: every error in it becomes :class:`AttemptEnded`,
carrying the order as it stood, except the ones that are not the order's fault (a lost
lease, an unavailable journal or broker), which pass through to the caller."""

from __future__ import annotations

import logging

from pipeline.errors import EngineUnavailable, LeaseLost, OrderflowError
from pipeline.lifecycle import Order

log = logging.getLogger(__name__)


class AttemptEnded(Exception):
    """Carries the order as it stood when an attempt ended, with the reason."""

    def __init__(self, order: Order, error: OrderflowError) -> None:
        super().__init__(error.message)
        self.order = order
        self.error = error


class ending_attempt:
    """Turn any error in its block into :class:`AttemptEnded` with the order as it stood
    (``at.order`` follows the block's progress); lease loss and an unavailable journal or
    broker pass through untouched: they are not the order's fault."""

    def __init__(self, order: Order) -> None:
        self.order = order

    async def __aenter__(self) -> ending_attempt:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: object) -> bool:
        if exc is None or isinstance(exc, LeaseLost | EngineUnavailable | AttemptEnded):
            return False
        if not isinstance(exc, Exception):
            return False  # cancellation and the like
        raise AttemptEnded(self.order, as_order_error(exc)) from exc


def as_order_error(exc: BaseException) -> OrderflowError:
    if isinstance(exc, OrderflowError):
        return exc
    log.error("unexpected error during an attempt", exc_info=exc)
    return OrderflowError("internal_error", f"{type(exc).__name__}: {exc}")
