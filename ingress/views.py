"""JSON shapes of orders for the API: base units as integers, plus UI strings for people."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ingress.order_terms import terms_view
from ingress.records import OrderRecord, datetime_to_ms
from pipeline.tokens import to_ui, token_by_mint
from pipeline.wire import StatusEvent, iso_ms


def token_view(mint: str) -> dict[str, Any]:
    token = token_by_mint(mint)
    if token is None:
        return {"symbol": None, "mint": mint, "decimals": None}
    return {"symbol": token.symbol, "mint": token.mint, "decimals": token.decimals}


def _ui(amount: int | None, mint: str) -> str | None:
    token = token_by_mint(mint)
    if amount is None or token is None:
        return None
    return to_ui(amount, token.decimals)


def _iso(value: datetime) -> str:
    return iso_ms(datetime_to_ms(value))


def order_summary(order: OrderRecord) -> dict[str, Any]:
    """Everything but quotes and history (the listing shape).

    ``amountIn`` / ``amountOut`` are what the confirmed transaction moved;
    before confirmation ``amountIn`` is the requested amount (always in
    ``amountInRequested``) and ``amountOut`` is null.
    """
    error = None
    if order.error_code is not None:
        error = {"code": order.error_code, "message": order.error_message}
    amount_in = order.amount_in_actual if order.amount_in_actual is not None else order.amount_in
    return {
        "orderId": order.order_id,
        "status": order.status,
        "source": order.source,
        "clientRef": order.client_ref,
        "tokenIn": token_view(order.token_in),
        "tokenOut": token_view(order.token_out),
        "amountIn": amount_in,
        "amountInUi": _ui(amount_in, order.token_in),
        "amountInRequested": order.amount_in,
        "amountOut": order.amount_out,
        "amountOutUi": _ui(order.amount_out, order.token_out),
        "expectedOut": order.expected_out,
        "minOut": order.min_out,
        "slippageBps": order.slippage_bps,
        "venue": order.venue,  # the larger leg's; ``route`` has both legs of a split
        "route": order.route,
        "executedPrice": order.executed_price,
        "txHash": order.tx_signature,
        "slot": order.slot,
        "attempts": order.attempt,
        "error": error,
        "type": order.order_type,
        "expiresAt": None if order.expires_at is None else _iso(order.expires_at),
        "terms": terms_view(order.terms, order.token_in, order.amount_in, order.token_out),
        "submittedAt": _iso(order.submitted_at),
        "createdAt": _iso(order.created_at),
        "updatedAt": _iso(order.updated_at),
    }


def event_view(event: StatusEvent) -> dict[str, Any]:
    return {"eventId": event.event_id, "status": event.status.value, "attempt": event.attempt,
            "ts": iso_ms(event.ts_ms), "data": event.data}


def order_detail(order: OrderRecord, events: list[StatusEvent]) -> dict[str, Any]:
    ordered = sorted(events, key=lambda e: (e.rank, e.ts_ms))
    return {**order_summary(order), "quotes": order.quotes or [],
            "events": [event_view(e) for e in ordered]}
