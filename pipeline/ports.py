"""The executor's ports: what it needs from the world, as small Protocols and records.

The executor (``pipeline/executor.py``) talks to its surroundings only through these
and the venue and chain Protocols (``pipeline/venues.py``, ``pipeline/solana_rpc.py``):
the faust wiring (``pipeline/engine.py``) implements :class:`Outbox` on Kafka topics, and
``pipeline/journal.py`` implements :class:`JournalPort` on PostgreSQL; the unit tests
implement both in memory (``tests/unit/executor_doubles.py``).

Journal statuses are the lifecycle's own :class:`~pipeline.lifecycle.OrderStatus` (one
state machine, not two); a broadcast's fate is a :class:`BroadcastOutcome`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from pipeline.errors import OrderflowError
from pipeline.lifecycle import OrderStatus
from pipeline.wire import ExecuteOrder, StatusEvent

Origin = dict[str, Any]
"""Where the message that carried the order came from: ``{topic, partition, offset}``."""


@dataclass(frozen=True, slots=True)
class RetryRequest:
    command: ExecuteOrder
    attempt: int
    due_ms: int
    delay_ms: int
    error: OrderflowError
    origin: Origin | None


@dataclass(frozen=True, slots=True)
class FailedOrder:
    command: ExecuteOrder
    code: str
    message: str
    attempts: int
    origin: Origin | None


class Outbox(Protocol):
    """Everything the executor tells the world, each call durable when it returns."""

    async def publish(self, event: StatusEvent, *, wait: bool) -> None:
        """One status event on ``order-status``; ``wait`` for the broker's ack."""
        ...

    async def schedule_retry(self, request: RetryRequest) -> None: ...

    async def dead_letter(self, failed: FailedOrder) -> None: ...


class BroadcastOutcome(StrEnum):
    """What became of a recorded transaction; ``None`` (open) until it is known."""

    LANDED = "landed"  # the swap happened (or failed on chain): never build another
    EXPIRED = "expired"  # its blockhash expired and it is provably absent
    REJECTED = "rejected"  # refused before forwarding (preflight): it can never land

    @property
    def dead(self) -> bool:
        return self is not BroadcastOutcome.LANDED


@dataclass(frozen=True, slots=True)
class CancelRequest:
    """A cancel that won in the journal (see :meth:`JournalPort.cancel`)."""

    reason: str
    requested_at_ms: int
    source: str


class CancelWon(OrderflowError):
    """:meth:`JournalPort.record_broadcast` refused: a cancel of the order won first, so
    nothing of it may be sent; the order ends ``cancelled`` (not ``failed``)."""

    default_code = "cancelled"

    def __init__(self, order_id: str, request: CancelRequest) -> None:
        super().__init__(message=f"order {order_id} was cancelled before its transaction "
                         f"({request.reason})")
        self.request = request


@dataclass(frozen=True, slots=True)
class Execution:
    order_id: str
    command: dict[str, Any]
    attempt: int
    status: OrderStatus
    terminal: bool
    retry_due_ms: int | None
    error_code: str | None
    error_message: str | None
    owner: str | None
    fresh: bool = False  # the claim created the row: no transaction can exist yet
    final_event: dict[str, Any] | None = None  # the terminal status event as published
    cancel: CancelRequest | None = None  # a cancel won: the order must end cancelled


@dataclass(frozen=True, slots=True)
class Broadcast:
    signature: str
    attempt: int
    tx: bytes
    last_valid_block_height: int
    venue: str
    expected_out: int
    min_out: int
    outcome: BroadcastOutcome | None

    @property
    def live(self) -> bool:
        """It landed or may still land: follow it, never build another."""
        return self.outcome is None or not self.outcome.dead


class JournalPort(Protocol):
    """The executor's durable memory (see ``pipeline/journal.py`` for the guarantees)."""

    async def claim(self, order_id: str, command: dict[str, Any]) -> Execution | None: ...

    async def renew(self, order_ids: Sequence[str]) -> None: ...

    async def advance(self, order_id: str, *, status: OrderStatus, attempt: int,
                      retry_due_ms: int | None = None, error: tuple[str, str] | None = None,
                      terminal: bool = False, release: bool = False,
                      final_event: dict[str, Any] | None = None) -> None: ...

    async def release(self, order_id: str) -> None: ...

    async def broadcasts(self, order_id: str) -> list[Broadcast]: ...

    async def record_broadcast(self, order_id: str, *, attempt: int, signature: str, tx: bytes,
                               last_valid_block_height: int, venue: str, expected_out: int,
                               min_out: int) -> None: ...

    async def confirm(self, order_id: str, *, attempt: int, signature: str,
                      final_event: dict[str, Any]) -> None: ...

    async def cancel(self, order_id: str, request: CancelRequest) -> str | None:
        """Decide a cancel against the order's execution: ``None`` when the cancel won (now
        or before; then no transaction of the order is ever recorded), else why it lost."""
        ...

    async def command(self, order_id: str) -> dict[str, Any] | None:
        """The order's command as first claimed, or ``None`` if it was never seen."""
        ...

    async def close_broadcast(self, signature: str, outcome: BroadcastOutcome) -> None: ...

    async def orphans(self, *, idle_s: float, limit: int = 100) -> list[dict[str, Any]]: ...
