"""The read queries over ``orders`` and ``order_events``, next to their writer
(``sinks/postgres.py``) and migrations: one package owns these tables and their shape.
The ingress runs them (``ingress/pg_store.py``) and maps the rows to its own records."""

from __future__ import annotations

from collections.abc import Sequence

ORDER_COLUMNS = """order_id, status, attempt, source, token_in, token_out, amount_in,
    slippage_bps, client_ref, venue, quotes, expected_out, min_out, tx_signature, slot,
    amount_in_actual, amount_out, executed_price, error_code, error_message, submitted_at,
    created_at, updated_at, route, order_type, expires_at, terms"""

GET_ORDER = f"SELECT {ORDER_COLUMNS} FROM orders WHERE order_id = %s"


def list_orders_sql(*, after_cursor: bool, conditions: Sequence[str] = ()) -> str:
    """Newest first, keyset-paged on ``(submitted_at, order_id)``: parameters are the
    ``conditions``' own, then ``[limit]``, or ``[submitted_at, order_id, limit]`` with a
    cursor."""
    conds = [*conditions, *(["(submitted_at, order_id) < (%s, %s)"] if after_cursor else [])]
    where = f"WHERE {' AND '.join(conds)}" if conds else ""
    return (f"SELECT {ORDER_COLUMNS} FROM orders {where} "
            "ORDER BY submitted_at DESC, order_id DESC LIMIT %s")


# The order summary every status event carries comes from the orders row.
EVENTS_FOR = """
SELECT e.event_id, e.order_id, e.status, e.attempt, e.ts, e.data,
       o.token_in, o.token_out, o.amount_in, o.slippage_bps, o.source, o.submitted_at,
       o.client_ref, o.order_type, o.expires_at, o.terms
FROM order_events e JOIN orders o USING (order_id)
WHERE e.order_id = ANY(%s)
ORDER BY e.order_id, e.rank, e.ts
"""
