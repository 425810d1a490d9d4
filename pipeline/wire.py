"""Frozen wire schemas of the two public topics, separate from the domain types.

``orders`` carries :class:`ExecuteOrder` and :class:`CancelOrder` commands (JSON,
``schemaVersion`` 1: market orders only, ``pipeline/contracts/orders.v1.schema.json``;
2: order types, expiry, cancel, ``orders.v2.schema.json``, its additions read in
``pipeline/wire_terms.py``). A command is written in the lowest version that can say it,
so a v1 producer's order reads back byte-for-byte as v1. ``order-status`` carries
:class:`StatusEvent` (``order-status.v1.schema.json``; v2 for what v1 cannot say: the
states of conditional orders, expiry and cancel). Amounts are JSON integers in base units.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any, TypeGuard

import orjson
from jsonschema import Draft202012Validator, validators

from pipeline.errors import InvalidOrder
from pipeline.lifecycle import Order, OrderStatus, rank
from pipeline.model import LimitTerms, OrderType, Quote, SniperTerms
from pipeline.route_record import route_to_json
from pipeline.tokens import resolve_token
from pipeline.wire_terms import (
    DEFAULT_MARKET_TTL_MS,
    Terms,
    new_status_data,
    new_token_mint,
    precheck,
    status_version,
    terms_from_json,
    terms_summary,
    timestamp_field,
)

ORDERS_SCHEMA_VERSION = 1
ORDERS_SCHEMA_VERSION_2 = 2
STATUS_SCHEMA_VERSION = 1
STATUS_SCHEMA_VERSION_2 = 2
SUPPORTED_ORDER_VERSIONS = frozenset({ORDERS_SCHEMA_VERSION, ORDERS_SCHEMA_VERSION_2})
SUPPORTED_STATUS_VERSIONS = frozenset({STATUS_SCHEMA_VERSION, STATUS_SCHEMA_VERSION_2})
MAX_MESSAGE_BYTES = 16 * 1024
MAX_PRICE_IMPACT_BPS = 10_000


@cache
def contract(name: str) -> dict[str, Any]:
    text = resources.files("pipeline.contracts").joinpath(name).read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def is_json_integer(value: object) -> TypeGuard[int]:
    """A JSON integer as written: ``1`` but not ``1.0`` (orjson reads that as a float, and JSON
    Schema counts an integral float as an integer) and not ``true`` (bool is an int in Python).
    Amounts are exact base units; a float anywhere near them is a producer bug to refuse."""
    return isinstance(value, int) and not isinstance(value, bool)


# Draft 2020-12 with "integer" meaning a JSON integer literal (see is_json_integer).
_StrictValidator = validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: is_json_integer(value)))


@cache
def _orders_validator(version: int = ORDERS_SCHEMA_VERSION) -> Any:
    return _StrictValidator(contract(f"orders.v{version}.schema.json"))


def now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


def iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


def parse_iso_ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class ExecuteOrder:
    """Command on topic ``orders``: execute one swap, now (market) or on a condition."""

    order_id: str
    token_in: str  # mint
    token_out: str  # mint
    amount_in: int
    slippage_bps: int
    submitted_at_ms: int
    source: str = "kafka"
    client_ref: str | None = None
    # The order's price-impact bound in bps (1..10000); None = the engine's configured default.
    max_price_impact_bps: int | None = None
    # v2 (see pipeline/wire_terms.py); the defaults are a v1 market order.
    order_type: OrderType = OrderType.MARKET
    expires_at_ms: int | None = None  # None: a market order's default from submission
    limit: LimitTerms | None = None
    sniper: SniperTerms | None = None

    @property
    def terms(self) -> Terms:
        return Terms(self.order_type, self.expires_at_ms, self.limit, self.sniper)

    def to_json(self) -> dict[str, Any]:
        terms = self.terms
        out: dict[str, Any] = {
            "schemaVersion": ORDERS_SCHEMA_VERSION if terms.v1 else ORDERS_SCHEMA_VERSION_2,
            "orderId": self.order_id,
            "type": self.order_type.value,
            "tokenIn": self.token_in,
            "tokenOut": self.token_out,
            "amountIn": self.amount_in,
            "slippageBps": self.slippage_bps,
            "submittedAt": iso_ms(self.submitted_at_ms),
            "source": self.source,
        }
        if self.client_ref is not None:
            out["clientRef"] = self.client_ref
        if self.max_price_impact_bps is not None:
            out["maxPriceImpactBps"] = self.max_price_impact_bps
        out.update(terms.to_json())
        return out

    def encode(self) -> bytes:
        return orjson.dumps(self.to_json())

    def to_order(self, *, market_ttl_ms: int = DEFAULT_MARKET_TTL_MS) -> Order:
        """The engine's order; a market order without an expiry gets ``market_ttl_ms``."""
        return Order(
            order_id=self.order_id,
            token_in=self.token_in,
            token_out=self.token_out,
            amount_in=self.amount_in,
            slippage_bps=self.slippage_bps,
            source=self.source,
            submitted_at_ms=self.submitted_at_ms,
            type=self.order_type,
            expires_at_ms=self.terms.expiry_ms(self.submitted_at_ms, market_ttl_ms),
            limit=self.limit,
            sniper=self.sniper,
        )


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """Command on topic ``orders`` (v2): cancel the order if it has sent nothing yet."""

    order_id: str
    requested_at_ms: int
    source: str = "kafka"
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schemaVersion": ORDERS_SCHEMA_VERSION_2,
                               "command": "CancelOrder", "orderId": self.order_id,
                               "requestedAt": iso_ms(self.requested_at_ms),
                               "source": self.source}
        if self.reason is not None:
            out["reason"] = self.reason
        return out

    def encode(self) -> bytes:
        return orjson.dumps(self.to_json())


def _field_of(error: Any) -> str | None:
    path = list(error.absolute_path)
    if path:
        return str(path[0])
    if error.validator == "required":
        return str(error.message.split("'")[1])
    if error.validator == "additionalProperties":
        return None
    return None


def decode_execute_order(raw: bytes | str, *, record_ts_ms: int | None = None) -> ExecuteOrder:
    """Decode an ``orders`` message that must be an :class:`ExecuteOrder` (a retry, a
    journal row); :class:`InvalidOrder` says precisely why not."""
    command = decode_orders_message(raw, record_ts_ms=record_ts_ms)
    if not isinstance(command, ExecuteOrder):
        raise InvalidOrder("invalid_message", "expected an ExecuteOrder, got a CancelOrder",
                           field="command")
    return command


def decode_orders_message(raw: bytes | str, *, record_ts_ms: int | None = None
                          ) -> ExecuteOrder | CancelOrder:
    """Validate and decode one ``orders`` message of any supported version;
    :class:`InvalidOrder` says precisely why not (the caller dead-letters it)."""
    if isinstance(raw, str):
        raw = raw.encode()
    if len(raw) > MAX_MESSAGE_BYTES:
        raise InvalidOrder("message_too_large",
                           f"message is {len(raw)} bytes, max {MAX_MESSAGE_BYTES}")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidOrder("malformed_json", f"message is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidOrder("invalid_message", "message must be a JSON object")
    version = doc.get("schemaVersion")
    if not is_json_integer(version) or version not in SUPPORTED_ORDER_VERSIONS:
        raise InvalidOrder(
            "unsupported_schema_version",
            f"schemaVersion {version!r} is not supported (supported: "
            f"{sorted(SUPPORTED_ORDER_VERSIONS)})",
            field="schemaVersion",
        )
    precheck(doc, version)
    errors = sorted(_orders_validator(version).iter_errors(doc),
                    key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        raise InvalidOrder("invalid_message", err.message, field=_field_of(err))
    default_ts = record_ts_ms if record_ts_ms is not None else now_ms()
    if doc.get("command") == "CancelOrder":
        return CancelOrder(doc["orderId"], timestamp_field(doc, "requestedAt", default_ts),
                           doc.get("source", "kafka"), doc.get("reason"))
    submitted = timestamp_field(doc, "submittedAt", default_ts)
    terms = terms_from_json(doc, submitted) if version == ORDERS_SCHEMA_VERSION_2 else Terms()
    token_in = resolve_token(doc["tokenIn"], field="tokenIn").mint
    if terms.order_type is OrderType.SNIPER:  # a token that does not exist yet
        token_out = new_token_mint(doc["tokenOut"])
    else:
        token_out = resolve_token(doc["tokenOut"], field="tokenOut").mint
    if token_in == token_out:
        raise InvalidOrder("same_token", "tokenIn and tokenOut must differ", field="tokenOut")
    return ExecuteOrder(
        order_id=doc["orderId"],
        token_in=token_in,
        token_out=token_out,
        amount_in=doc["amountIn"],
        slippage_bps=doc.get("slippageBps", 50),
        submitted_at_ms=submitted,
        source=doc.get("source", "kafka"),
        client_ref=doc.get("clientRef"),
        max_price_impact_bps=doc.get("maxPriceImpactBps"),
        order_type=terms.order_type,
        expires_at_ms=terms.expires_at_ms,
        limit=terms.limit,
        sniper=terms.sniper,
    )



def quote_to_json(q: Quote) -> dict[str, Any]:
    return {
        "venue": q.venue.value,
        "inAmount": q.in_amount,
        "outAmount": q.out_amount,
        "feeAmount": q.fee_amount,
        "feeMint": q.fee_mint,
        "priceImpactPct": q.price_impact_pct,
        "ammKey": q.amm_key,
        "contextSlot": q.context_slot,
    }


def _route(order: Order) -> dict[str, Any]:
    """``data.route`` (pipeline/route_record.py) when the order's route is known."""
    return {"route": route_to_json(order.route)} if order.route else {}


def status_data(order: Order) -> dict[str, Any]:
    """What is true at this status, and nothing that is not yet."""
    added = new_status_data(order)
    if added is not None:
        return added
    match order.status:
        case OrderStatus.ROUTING:
            return {
                "quotes": [quote_to_json(q) for q in order.quotes],
                "quoteErrors": dict(order.quote_errors),
            }
        case OrderStatus.BUILDING:
            assert order.venue is not None
            return {"venue": order.venue.value, "expectedOut": order.expected_out,
                    "minOut": order.min_out, **_route(order)}
        case OrderStatus.SUBMITTED:
            return {"signature": order.signature,
                    "lastValidBlockHeight": order.last_valid_block_height}
        case OrderStatus.CONFIRMED:
            # venue is None only for a swap found on chain without a journal record of it
            return {"venue": order.venue.value if order.venue else None,
                    "signature": order.signature,
                    "slot": order.slot, "amountIn": order.amount_in_actual,
                    "amountOut": order.amount_out, "executedPrice": order.executed_price,
                    **_route(order)}
        case OrderStatus.FAILED:
            return {"code": order.error_code, "message": order.error_message, "retriable": False,
                    "attempts": order.attempt}
        case OrderStatus.PENDING if order.attempt > 1:
            return {"retry": {"previousAttempt": order.attempt - 1, "code": order.error_code,
                              "message": order.error_message,
                              "dueAt": iso_ms(order.retry_due_ms or 0)}}
    return {}


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """Event on topic ``order-status``: one true status of one order."""

    event_id: str
    order_id: str
    status: OrderStatus
    attempt: int
    ts_ms: int
    order: dict[str, Any]
    data: dict[str, Any]

    @property
    def rank(self) -> int:
        return rank(self.status, self.attempt)

    @classmethod
    def of(cls, order: Order, *, ts_ms: int | None = None, client_ref: str | None = None
           ) -> StatusEvent:
        assert order.status is not None
        summary: dict[str, Any] = {
            "tokenIn": order.token_in,
            "tokenOut": order.token_out,
            "amountIn": order.amount_in,
            "slippageBps": order.slippage_bps,
            "source": order.source,
            "submittedAt": iso_ms(order.submitted_at_ms),
            **terms_summary(order),
        }
        if client_ref is not None:
            summary["clientRef"] = client_ref
        return cls(
            event_id=f"{order.order_id}:{order.attempt}:{order.status.value}",
            order_id=order.order_id,
            status=order.status,
            attempt=order.attempt,
            ts_ms=ts_ms if ts_ms is not None else now_ms(),
            order=summary,
            data=status_data(order),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "schemaVersion": status_version(self.status, self.order.get("type", "market")),
            "eventId": self.event_id,
            "orderId": self.order_id,
            "status": self.status.value,
            "attempt": self.attempt,
            "ts": iso_ms(self.ts_ms),
            "order": self.order,
            "data": self.data,
        }

    def encode(self) -> bytes:
        return orjson.dumps(self.to_json())

    @classmethod
    def decode(cls, raw: bytes | str) -> StatusEvent:
        return cls.from_json(orjson.loads(raw))

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> StatusEvent:
        if doc.get("schemaVersion") not in SUPPORTED_STATUS_VERSIONS:
            raise InvalidOrder("unsupported_schema_version",
                               f"status schemaVersion {doc.get('schemaVersion')!r}")
        return cls(
            event_id=doc["eventId"],
            order_id=doc["orderId"],
            status=OrderStatus(doc["status"]),
            attempt=int(doc["attempt"]),
            ts_ms=parse_iso_ms(doc["ts"]),
            order=doc["order"],
            data=doc["data"],
        )


@dataclass(frozen=True, slots=True)
class RetryMessage:
    """Message on an ``orders-retry-<delay>`` topic: run attempt ``attempt`` at ``due_ms``."""

    command: ExecuteOrder
    attempt: int
    due_ms: int
    origin: dict[str, Any] | None
    error: dict[str, str]

    def encode(self) -> bytes:
        return orjson.dumps({
            "schemaVersion": 1, "command": self.command.to_json(), "attempt": self.attempt,
            "dueAt": iso_ms(self.due_ms), "dueAtMs": self.due_ms, "origin": self.origin,
            "error": self.error,
        })

    @classmethod
    def decode(cls, raw: bytes) -> RetryMessage:
        try:
            doc = orjson.loads(raw)
            command = decode_execute_order(orjson.dumps(doc["command"]))
            return cls(command, int(doc["attempt"]), int(doc["dueAtMs"]), doc.get("origin"),
                       dict(doc.get("error") or {}))
        except InvalidOrder:
            raise
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise InvalidOrder("invalid_retry_message", f"unreadable retry message: {exc!r}"
                               ) from None
