"""Heals the read model from the journal: what the API says converges to what happened.

The journal (``executions``) is written before anything is published and keeps each
terminal order's final status event exactly as published (``final_event``, same
``eventId``). If that event never reached ``orders`` (the status topic lost it, a sink
crashed between write and ack on a non-durable database, a bug), the order would read
``submitted`` forever although its swap landed. This sweep finds terminal journal rows
whose ``orders`` row is missing or at another status and re-publishes their final event
on ``order-status``, so the sink, the ingress's cache and every WebSocket see it.

Each sweep reads only journal rows updated since the previous sweep (minus a margin);
the first sweep after start looks back ``first_lookback_s``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from psycopg_pool import AsyncConnectionPool

from pipeline.wire import StatusEvent

log = logging.getLogger(__name__)

_DIVERGED = """
SELECT e.final_event, e.updated_at
  FROM executions e LEFT JOIN orders o ON o.order_id = e.order_id
 WHERE e.terminal AND e.final_event IS NOT NULL
   AND e.updated_at >= %(since)s AND e.updated_at < now() - %(settle)s::interval
   AND (o.order_id IS NULL OR o.status <> e.status)
 ORDER BY e.updated_at
 LIMIT %(limit)s
"""

_NOW = "SELECT now()"


class ReadModelReconciler:
    """One sweep at a time; call :meth:`sweep` periodically (the sinks role does)."""

    def __init__(self, pool: AsyncConnectionPool, publish: Callable[[StatusEvent],
                                                                     Awaitable[None]], *,
                 settle_s: float = 10.0, first_lookback_s: float = 86_400.0,
                 limit: int = 500) -> None:
        self._pool = pool
        self._publish = publish
        self._settle = f"{settle_s} seconds"
        self._margin = timedelta(seconds=settle_s * 2)
        self._first_lookback = timedelta(seconds=first_lookback_s)
        self._limit = limit
        self._since: datetime | None = None

    async def sweep(self) -> int:
        """Re-publish the final event of every diverged order; return how many."""
        async with self._pool.connection() as conn:
            row = await (await conn.execute(_NOW)).fetchone()
            assert row is not None
            now: datetime = row[0]
            since = self._since if self._since is not None else now - self._first_lookback
            cur = await conn.execute(_DIVERGED, {"since": since, "settle": self._settle,
                                                 "limit": self._limit})
            rows: list[tuple[dict[str, Any], datetime]] = await cur.fetchall()
        for final_event, _ in rows:
            event = StatusEvent.from_json(final_event)
            log.warning("read model of order %s is behind its journal (%s); re-publishing %s",
                        event.order_id, event.status, event.event_id)
            await self._publish(event)
        # Next time, start where this sweep's evidence ends: rows still settling (updated
        # within ``settle``) or beyond the page are looked at again.
        if len(rows) == self._limit:
            self._since = rows[-1][1]
        else:
            self._since = now - self._margin
        return len(rows)
