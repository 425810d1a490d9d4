"""Idempotent, monotonic persistence of status events.

``order_events`` is keyed by the deterministic ``event_id``, so a redelivered
event inserts nothing. ``orders`` is upserted only when the event's rank is
higher than the row's, so a late older event never moves an order backwards;
fields an event does not carry keep their earlier values.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from pipeline.lifecycle import OrderStatus
from pipeline.wire import StatusEvent, parse_iso_ms

_INSERT_EVENT = """
INSERT INTO order_events (event_id, order_id, status, attempt, rank, ts, data)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (event_id) DO NOTHING
"""

_UPSERT_ORDER = """
INSERT INTO orders (order_id, status, rank, attempt, source, token_in, token_out, amount_in,
    slippage_bps, client_ref, venue, quotes, expected_out, min_out, tx_signature, slot,
    amount_in_actual, amount_out, executed_price, error_code, error_message, submitted_at,
    updated_at, route, order_type, expires_at, terms)
VALUES (%(order_id)s, %(status)s, %(rank)s, %(attempt)s, %(source)s, %(token_in)s, %(token_out)s,
    %(amount_in)s, %(slippage_bps)s, %(client_ref)s, %(venue)s, %(quotes)s, %(expected_out)s,
    %(min_out)s, %(tx_signature)s, %(slot)s, %(amount_in_actual)s, %(amount_out)s,
    %(executed_price)s, %(error_code)s, %(error_message)s, %(submitted_at)s, %(updated_at)s,
    %(route)s, %(order_type)s, %(expires_at)s, %(terms)s)
ON CONFLICT (order_id) DO UPDATE SET
    status = EXCLUDED.status,
    rank = EXCLUDED.rank,
    attempt = EXCLUDED.attempt,
    venue = COALESCE(EXCLUDED.venue, orders.venue),
    quotes = COALESCE(EXCLUDED.quotes, orders.quotes),
    expected_out = COALESCE(EXCLUDED.expected_out, orders.expected_out),
    min_out = COALESCE(EXCLUDED.min_out, orders.min_out),
    tx_signature = COALESCE(EXCLUDED.tx_signature, orders.tx_signature),
    slot = COALESCE(EXCLUDED.slot, orders.slot),
    amount_in_actual = COALESCE(EXCLUDED.amount_in_actual, orders.amount_in_actual),
    amount_out = COALESCE(EXCLUDED.amount_out, orders.amount_out),
    executed_price = COALESCE(EXCLUDED.executed_price, orders.executed_price),
    error_code = COALESCE(EXCLUDED.error_code, orders.error_code),
    error_message = COALESCE(EXCLUDED.error_message, orders.error_message),
    route = COALESCE(EXCLUDED.route, orders.route),
    expires_at = COALESCE(EXCLUDED.expires_at, orders.expires_at),
    terms = COALESCE(EXCLUDED.terms, orders.terms),
    updated_at = EXCLUDED.updated_at
WHERE orders.rank < EXCLUDED.rank
"""


def _ts(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _terms(summary: dict[str, Any]) -> Jsonb | None:
    """A conditional order's terms as on the wire (orders v2 ``limit`` / ``sniper``)."""
    terms = {k: summary[k] for k in ("limit", "sniper") if isinstance(summary.get(k), dict)}
    return Jsonb(terms) if terms else None


def order_row(ev: StatusEvent) -> dict[str, Any]:
    """The ``orders`` columns this event makes true. Events from before order types
    (no ``type`` in the summary) are market orders; their expiry is unknown (NULL)."""
    d = ev.data
    o = ev.order
    row: dict[str, Any] = {
        "order_id": ev.order_id, "status": ev.status.value, "rank": ev.rank,
        "attempt": ev.attempt, "source": o["source"], "token_in": o["tokenIn"],
        "token_out": o["tokenOut"], "amount_in": o["amountIn"],
        "slippage_bps": o["slippageBps"], "client_ref": o.get("clientRef"),
        "submitted_at": _ts(parse_iso_ms(o["submittedAt"])), "updated_at": _ts(ev.ts_ms),
        "venue": d.get("venue"), "quotes": None, "expected_out": d.get("expectedOut"),
        "min_out": d.get("minOut"), "tx_signature": d.get("signature"), "slot": d.get("slot"),
        "amount_in_actual": None, "amount_out": None, "executed_price": None,
        "error_code": None, "error_message": None,
        "route": Jsonb(d["route"]) if isinstance(d.get("route"), dict) else None,
        "order_type": o.get("type", "market"),
        "expires_at": _ts(parse_iso_ms(o["expiresAt"])) if "expiresAt" in o else None,
        "terms": _terms(o),
    }
    if ev.status is OrderStatus.ROUTING:
        row["quotes"] = Jsonb(d.get("quotes", []))
    elif ev.status is OrderStatus.CONFIRMED:
        row["amount_in_actual"] = d["amountIn"]
        row["amount_out"] = d["amountOut"]
        row["executed_price"] = Decimal(d["executedPrice"])
    elif ev.status is OrderStatus.FAILED or ev.status is OrderStatus.EXPIRED:
        row["error_code"] = d.get("code")
        row["error_message"] = d.get("message")
    elif ev.status is OrderStatus.CANCELLED:
        row["error_code"] = d.get("code")
        row["error_message"] = d.get("reason")
    return row


class PostgresStatusStore:
    """Writes batches of status events in one transaction."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def write(self, events: Sequence[StatusEvent]) -> None:
        if not events:
            return
        event_rows = [
            (e.event_id, e.order_id, e.status.value, e.attempt, e.rank, _ts(e.ts_ms),
             Jsonb(e.data, dumps=lambda obj: orjson.dumps(obj).decode()))
            for e in events
        ]
        ordered = sorted(events, key=lambda e: (e.order_id, e.rank))
        async with self._pool.connection() as conn, conn.transaction():
            async with conn.cursor() as cur:
                await cur.executemany(_INSERT_EVENT, event_rows)
                await cur.executemany(_UPSERT_ORDER, [order_row(e) for e in ordered])
