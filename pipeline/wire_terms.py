"""The v2 additions of the ``orders`` contract: order type, expiry, limit and sniper terms.

Kept out of ``pipeline/wire.py`` so the wire module only says *which* version a message
is; this one reads and writes what v2 adds (``orders.v2.schema.json``), checks what a
JSON Schema says badly (a type with the other type's terms, an expiry before the order),
and converts a limit price in UI units to the exact minimum output it means.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from solders.pubkey import Pubkey

from pipeline.errors import InvalidOrder
from pipeline.lifecycle import Order, OrderStatus
from pipeline.model import LimitTerms, OrderType, SniperTerms
from pipeline.tokens import U64_MAX

DEFAULT_MARKET_TTL_MS = 60_000
"""A market order without ``expiresAt`` expires this long after it was submitted (the
engine's configured value overrides it): an order left on the topic for hours must not
execute at that day's price."""

_SNIPER_FIELDS = (("minQuoteLiquidity", "min_quote_liquidity"), ("minOut", "min_out"),
                  ("maxPriceImpactBps", "max_price_impact_bps"),
                  ("maxDelaySlots", "max_delay_slots"),
                  ("priorityFeeMicroLamports", "priority_fee_micro_lamports"))


def _iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def _parse_iso_ms(text: str, field: str) -> int:
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        raise InvalidOrder("invalid_message", f"{field} is not an RFC 3339 timestamp",
                           field=field) from None


def timestamp_field(doc: dict[str, Any], field: str, default_ms: int) -> int:
    """An optional RFC 3339 field of a schema-valid document, in ms."""
    return _parse_iso_ms(doc[field], field) if field in doc else default_ms


@dataclass(frozen=True, slots=True)
class Terms:
    """What v2 adds to an ``ExecuteOrder``; the defaults are exactly a v1 market order."""

    order_type: OrderType = OrderType.MARKET
    expires_at_ms: int | None = None
    limit: LimitTerms | None = None
    sniper: SniperTerms | None = None

    @property
    def v1(self) -> bool:
        """Whether version 1 of the contract can say it (then it is written as v1)."""
        return self == Terms()

    def to_json(self) -> dict[str, Any]:
        """The v2 keys of these terms (empty for a v1 market order)."""
        out: dict[str, Any] = {}
        if self.expires_at_ms is not None:
            out["expiresAt"] = _iso_ms(self.expires_at_ms)
        if self.limit is not None:
            out["limit"] = {"minOut": self.limit.min_out}
        if self.sniper is not None:
            out["sniper"] = {key: getattr(self.sniper, attr) for key, attr in _SNIPER_FIELDS
                             if getattr(self.sniper, attr) is not None}
        return out

    def expiry_ms(self, submitted_at_ms: int, default_ttl_ms: int) -> int:
        """The order's expiry: its own, else (market orders) the default after submission."""
        if self.expires_at_ms is not None:
            return self.expires_at_ms
        return submitted_at_ms + default_ttl_ms


def precheck(doc: dict[str, Any], version: int) -> None:
    """Refuse, in words, what the schema would refuse with a dump of the whole object or a
    misleading missing field: an unknown command, a cancel in v1, a type with missing or
    foreign terms."""
    command = doc.get("command", "ExecuteOrder")
    if command not in ("ExecuteOrder", "CancelOrder"):
        raise InvalidOrder("invalid_message",
                           f"command {command!r} is not ExecuteOrder or CancelOrder",
                           field="command")
    if "command" in doc and version < 2:
        raise InvalidOrder("invalid_message", f"{command} needs schemaVersion 2",
                           field="schemaVersion")
    if command == "CancelOrder" or version < 2:
        return
    kind = doc.get("type", "market")
    if kind not in ("market", "limit", "sniper"):
        return  # the schema names the allowed values
    for terms in ("limit", "sniper"):
        if terms in doc and terms != kind:
            raise InvalidOrder("invalid_message",
                               f"a {kind} order takes no {terms!r} terms", field=terms)
        if terms == kind and terms not in doc:
            raise InvalidOrder("invalid_message", f"a {kind} order needs its {terms!r} terms",
                               field=terms)
    if kind != "market" and "expiresAt" not in doc:
        raise InvalidOrder("invalid_message", f"a {kind} order needs expiresAt",
                           field="expiresAt")


def terms_from_json(doc: dict[str, Any], submitted_at_ms: int) -> Terms:
    """The terms of a schema-valid v2 document."""
    expires = None
    if "expiresAt" in doc:
        expires = _parse_iso_ms(doc["expiresAt"], "expiresAt")
        if expires <= submitted_at_ms:
            raise InvalidOrder("invalid_message", "expiresAt must be after submittedAt",
                               field="expiresAt")
    limit = None
    if "limit" in doc:
        limit = LimitTerms(doc["limit"]["minOut"])
    sniper = None
    if "sniper" in doc:
        given = doc["sniper"]
        sniper = SniperTerms(**{attr: given[key] for key, attr in _SNIPER_FIELDS
                                if key in given})
    return Terms(OrderType(doc.get("type", "market")), expires, limit, sniper)


def new_token_mint(value: str, *, field: str = "tokenOut") -> str:
    """A sniper's token is not in any registry (it does not exist yet): any valid mint."""
    try:
        return str(Pubkey.from_string(value))
    except ValueError:
        raise InvalidOrder("invalid_mint", f"{field} {value!r} is not a base58 mint address",
                           field=field) from None


def limit_min_out(amount_in: int, limit_price: str, decimals_in: int, decimals_out: int,
                  *, field: str = "limitPrice") -> int:
    """The exact minimum output that ``limit_price`` (UI units of output per UI unit of
    input, a plain decimal string) means for ``amount_in`` base units; refuses a price that
    does not come to a whole number of base units (the limit would have to be rounded,
    and which way is the trader's choice, not ours)."""
    text = limit_price.strip() if isinstance(limit_price, str) else ""
    if not text or any(c not in "0123456789." for c in text) or text.count(".") > 1:
        raise InvalidOrder("invalid_limit_price",
                           f"{field} must be a plain decimal string such as \"160.5\"",
                           field=field)
    try:
        price = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the characters are checked above
        raise InvalidOrder("invalid_limit_price", f"{field} is not a number",
                           field=field) from None
    sign, digits, exponent = price.as_tuple()
    assert isinstance(exponent, int) and sign == 0
    numerator: int = int("".join(map(str, digits)) or "0") * amount_in * pow(10, decimals_out)
    denominator: int = pow(10, decimals_in + max(0, -exponent))
    numerator *= pow(10, max(0, exponent))
    min_out, rest = divmod(numerator, denominator)
    if numerator == 0:
        raise InvalidOrder("invalid_limit_price", f"{field} must be greater than zero",
                           field=field)
    if rest:
        raise InvalidOrder(
            "inexact_limit_price",
            f"{field} {limit_price} for this amount is {Fraction(numerator, denominator)} base "
            "units of the output, not a whole number; give a price exact for the amount",
            field=field)
    if min_out > U64_MAX:
        raise InvalidOrder("invalid_limit_price", f"{field} is too large", field=field)
    return min_out


# ---- status events (order-status v2: what v1 cannot say) ----

V2_STATUSES = frozenset({OrderStatus.OPEN, OrderStatus.TRIGGERED, OrderStatus.EXPIRED,
                         OrderStatus.CANCELLED})


def status_version(status: OrderStatus, order_type: str) -> int:
    """v1 for what v1 said (a market order's old states), so v1 consumers see no change."""
    return 2 if status in V2_STATUSES or order_type != OrderType.MARKET.value else 1


def terms_summary(order: Order) -> dict[str, Any]:
    """The order's type, expiry and terms for a status event's ``order`` summary."""
    terms = Terms(order.type, order.expires_at_ms, order.limit, order.sniper).to_json()
    return {"type": order.type.value, **terms}


def new_status_data(order: Order) -> dict[str, Any] | None:
    """The ``data`` of the states v2 adds (None for the others)."""
    match order.status:
        case OrderStatus.OPEN:
            return {"expiresAt": _iso_ms(order.expires_at_ms or 0)}
        case OrderStatus.TRIGGERED:
            t = order.trigger
            assert t is not None
            found = {"slot": t.slot, "observedOut": t.observed_out, "pool": t.pool,
                     "poolSlot": t.pool_slot}
            return {k: v for k, v in found.items() if v is not None}
        case OrderStatus.EXPIRED:
            return {"code": "expired", "message": order.error_message,
                    "expiresAt": _iso_ms(order.expires_at_ms or 0),
                    "expiredAt": _iso_ms(order.ended_at_ms or 0)}
        case OrderStatus.CANCELLED:
            return {"code": "cancelled", "reason": order.error_message,
                    "requestedAt": _iso_ms(order.ended_at_ms or 0)}
    return None
