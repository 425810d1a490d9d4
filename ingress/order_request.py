"""Turn a client's order JSON into an :class:`ExecuteOrder`, or say exactly which field is wrong.

Clients speak UI units and symbols (``"1.5"`` SOL); the ``orders`` topic speaks
base units and mints, so the conversion happens here, once, exactly.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from ingress.idempotency import WS_KEY_FIELD, parse_key
from ingress.order_terms import ORDER_TYPES, TERM_FIELDS, parse_terms
from pipeline.errors import InvalidOrder
from pipeline.model import OrderType
from pipeline.tokens import resolve_token, to_base_units
from pipeline.wire import MAX_PRICE_IMPACT_BPS, ExecuteOrder, is_json_integer
from pipeline.wire_terms import new_token_mint

DEFAULT_SLIPPAGE_BPS = 50
MAX_SLIPPAGE_BPS = 5000
MAX_CLIENT_REF_CHARS = 128
REQUIRED_FIELDS = ("tokenIn", "tokenOut", "amount")
OPTIONAL_FIELDS = ("type", "slippageBps", "clientRef", "maxPriceImpactBps", *TERM_FIELDS)
ALLOWED_FIELDS = frozenset(REQUIRED_FIELDS + OPTIONAL_FIELDS)


class UnsupportedOrderType(InvalidOrder):
    """A well-formed request for an order type this engine does not execute (HTTP 422):
    the request is understood, the engine just cannot do it, unlike a malformed field."""

    default_code = "unsupported_order_type"


def parse_order_request(body: bytes | str, *, source: str, submitted_at_ms: int) -> ExecuteOrder:
    """Validate in field order (tokens before amount: the amount's precision depends on tokenIn)."""
    return order_from_document(_json_object(body), source=source,
                               submitted_at_ms=submitted_at_ms)


def parse_order_message(body: bytes | str, *, source: str, submitted_at_ms: int
                        ) -> tuple[ExecuteOrder, str | None]:
    """An order message that may also carry ``"idempotencyKey"`` (the WebSocket submit)."""
    doc = _json_object(body)
    key = parse_key(doc.pop(WS_KEY_FIELD), field=WS_KEY_FIELD) if WS_KEY_FIELD in doc else None
    return order_from_document(doc, source=source, submitted_at_ms=submitted_at_ms), key


def _json_object(body: bytes | str) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidOrder("malformed_json", f"body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidOrder("invalid_body", "body must be a JSON object")
    return doc


def order_from_document(doc: dict[str, Any], *, source: str, submitted_at_ms: int
                        ) -> ExecuteOrder:
    unknown = sorted(set(doc) - ALLOWED_FIELDS)
    if unknown:
        allowed = ", ".join(sorted(ALLOWED_FIELDS))
        raise InvalidOrder("unknown_field", f"unknown field {unknown[0]!r} (allowed: {allowed})",
                           field=unknown[0])
    for name in REQUIRED_FIELDS:
        if name not in doc:
            raise InvalidOrder("missing_field", f"{name} is required", field=name)
    if "type" in doc and doc["type"] not in ORDER_TYPES:
        raise UnsupportedOrderType(message=f"order type {doc['type']!r} is not supported; "
                                   f"supported: {', '.join(ORDER_TYPES)}", field="type")
    order_type = OrderType(doc.get("type", "market"))
    token_in = resolve_token(doc["tokenIn"], field="tokenIn")
    if order_type is OrderType.SNIPER:  # the token it buys does not exist yet: any mint
        token_out, mint_out = None, new_token_mint(doc["tokenOut"])
    else:
        token_out = resolve_token(doc["tokenOut"], field="tokenOut")
        mint_out = token_out.mint
    if token_in.mint == mint_out:
        raise InvalidOrder("same_token", "tokenIn and tokenOut must differ", field="tokenOut")
    amount_in = to_base_units(doc["amount"], token_in.decimals, field="amount")
    terms = parse_terms(doc, order_type, token_in=token_in, token_out=token_out,
                        amount_in=amount_in, submitted_at_ms=submitted_at_ms)
    return ExecuteOrder(
        order_id=str(uuid.uuid4()),
        token_in=token_in.mint,
        token_out=mint_out,
        amount_in=amount_in,
        slippage_bps=_slippage(doc.get("slippageBps", DEFAULT_SLIPPAGE_BPS)),
        submitted_at_ms=submitted_at_ms,
        source=source,
        client_ref=_client_ref(doc.get("clientRef")),
        max_price_impact_bps=(_max_price_impact(doc["maxPriceImpactBps"])
                              if "maxPriceImpactBps" in doc else None),
        order_type=terms.order_type,
        expires_at_ms=terms.expires_at_ms,
        limit=terms.limit,
        sniper=terms.sniper,
    )


def _max_price_impact(value: object) -> int:
    if is_json_integer(value) and 1 <= value <= MAX_PRICE_IMPACT_BPS:
        return value
    raise InvalidOrder("invalid_max_price_impact", "maxPriceImpactBps must be an integer "
                       f"number of basis points, 1..{MAX_PRICE_IMPACT_BPS}",
                       field="maxPriceImpactBps")


def _slippage(value: object) -> int:
    # bool is an int subclass; `true` is not a slippage.
    if not is_json_integer(value):
        raise InvalidOrder("invalid_slippage", "slippageBps must be an integer number of basis "
                           f"points, 0..{MAX_SLIPPAGE_BPS}", field="slippageBps")
    if not 0 <= value <= MAX_SLIPPAGE_BPS:
        raise InvalidOrder("invalid_slippage",
                           f"slippageBps {value} is outside 0..{MAX_SLIPPAGE_BPS}",
                           field="slippageBps")
    return value


def _client_ref(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_CLIENT_REF_CHARS:
        raise InvalidOrder("invalid_client_ref", "clientRef must be a string of at most "
                           f"{MAX_CLIENT_REF_CHARS} characters", field="clientRef")
    return value
