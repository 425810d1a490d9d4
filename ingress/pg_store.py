"""The :class:`OrderStore` over PostgreSQL: reads only. The tables, their writer and these
queries belong to ``sinks/`` (``sinks/orders_read.py``); this maps rows to ingress records."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ingress.order_filters import OrderFilter, where_sql
from ingress.ports import StoreUnavailable
from ingress.records import OrderRecord, PageCursor, datetime_to_ms
from pipeline.lifecycle import OrderStatus
from pipeline.wire import StatusEvent, iso_ms
from sinks.orders_read import EVENTS_FOR, GET_ORDER, list_orders_sql

CHECK_TIMEOUT_S = 2.0

class PostgresOrderStore:
    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self._pool = pool

    @asynccontextmanager
    async def _cursor(self, *, timeout: float | None = None
                      ) -> AsyncIterator[psycopg.AsyncCursor[DictRow]]:
        try:
            async with self._pool.connection(timeout=timeout) as conn, \
                    conn.cursor(row_factory=dict_row) as cur:
                yield cur
        except (psycopg.Error, PoolTimeout) as exc:
            raise StoreUnavailable(message=f"database unavailable: {exc}") from exc

    async def get_order(self, order_id: str) -> OrderRecord | None:
        async with self._cursor() as cur:
            await cur.execute(GET_ORDER, (order_id,))
            row = await cur.fetchone()
        return _record(row) if row else None

    async def list_orders(self, limit: int, before: PageCursor | None = None,
                          where: OrderFilter | None = None) -> list[OrderRecord]:
        conds, params = where_sql(where or OrderFilter())
        if before is not None:
            params += [before.submitted_at, before.order_id]
        params.append(limit)
        sql = list_orders_sql(after_cursor=before is not None, conditions=conds)
        async with self._cursor() as cur:
            await cur.execute(sql, params)
            rows = await cur.fetchall()
        return [_record(row) for row in rows]

    async def events_for(self, order_ids: Sequence[str]) -> list[StatusEvent]:
        if not order_ids:
            return []
        async with self._cursor() as cur:
            await cur.execute(EVENTS_FOR, (list(order_ids),))
            rows = await cur.fetchall()
        return [_event(row) for row in rows]

    async def check(self) -> None:
        async with self._cursor(timeout=CHECK_TIMEOUT_S) as cur:
            await cur.execute("SELECT 1")


def _int(value: Decimal | int | None) -> int | None:
    return None if value is None else int(value)


def _record(row: dict[str, Any]) -> OrderRecord:
    price = row["executed_price"]
    return OrderRecord(
        order_id=row["order_id"],
        status=row["status"],
        attempt=row["attempt"],
        source=row["source"],
        token_in=row["token_in"],
        token_out=row["token_out"],
        amount_in=int(row["amount_in"]),
        slippage_bps=row["slippage_bps"],
        submitted_at=row["submitted_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        client_ref=row["client_ref"],
        venue=row["venue"],
        quotes=row["quotes"],
        expected_out=_int(row["expected_out"]),
        min_out=_int(row["min_out"]),
        tx_signature=row["tx_signature"],
        slot=row["slot"],
        amount_in_actual=_int(row["amount_in_actual"]),
        amount_out=_int(row["amount_out"]),
        executed_price=None if price is None else str(price),
        error_code=row["error_code"],
        error_message=row["error_message"],
        route=row.get("route"),
        order_type=row.get("order_type") or "market",
        expires_at=row.get("expires_at"),
        terms=row.get("terms"),
    )


def _event(row: dict[str, Any]) -> StatusEvent:
    summary: dict[str, Any] = {
        "tokenIn": row["token_in"],
        "tokenOut": row["token_out"],
        "amountIn": int(row["amount_in"]),
        "slippageBps": row["slippage_bps"],
        "source": row["source"],
        "submittedAt": iso_ms(datetime_to_ms(row["submitted_at"])),
    }
    if row["client_ref"] is not None:
        summary["clientRef"] = row["client_ref"]
    summary["type"] = row.get("order_type") or "market"
    if row.get("expires_at") is not None:
        summary["expiresAt"] = iso_ms(datetime_to_ms(row["expires_at"]))
    summary.update(row.get("terms") or {})
    return StatusEvent(
        event_id=row["event_id"],
        order_id=row["order_id"],
        status=OrderStatus(row["status"]),
        attempt=row["attempt"],
        ts_ms=datetime_to_ms(row["ts"]),
        order=summary,
        data=row["data"],
    )
