"""The HTTP / WebSocket spelling of an order's type, expiry and limit or sniper terms.

Clients give a limit as ``limitPrice`` (UI units of tokenOut per UI unit of tokenIn, the
way traders say "160 USDC per SOL") or as ``minAmountOut`` (base units, exact); the
``orders`` topic carries only the exact minimum output (``pipeline/wire_terms.py``), so a
price that does not come to a whole number of base units for the amount is refused, never
rounded. A sniper's ``minQuoteLiquidity`` is in UI units of tokenIn; its ``minAmountOut``
is in base units of the new token (its decimals are unknown before it launches).
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any

from pipeline.errors import InvalidOrder
from pipeline.model import LimitTerms, OrderType, SniperTerms
from pipeline.tokens import U64_MAX, Token, to_base_units, to_ui, token_by_mint
from pipeline.wire import is_json_integer
from pipeline.wire_terms import Terms, limit_min_out

ORDER_TYPES = tuple(t.value for t in OrderType)
TERM_FIELDS = ("expiresAt", "limitPrice", "minAmountOut", "sniper")
SNIPER_FIELDS = frozenset({"minQuoteLiquidity", "minAmountOut", "maxPriceImpactBps",
                           "maxDelaySlots", "priorityFeeMicroLamports"})
ZERO = re.compile(r"\s*(0+\.?0*|\.0+)\s*")
MAX_EXPIRY_MS = 366 * 24 * 3600 * 1000  # an order waits at most a year


def parse_terms(doc: dict[str, Any], order_type: OrderType, *, token_in: Token,
                token_out: Token | None, amount_in: int, submitted_at_ms: int) -> Terms:
    """The terms of a request whose tokens and amount are already valid; ``token_out`` is
    ``None`` for a sniper's new token (not in the registry)."""
    expires = _expires_at(doc, submitted_at_ms) if "expiresAt" in doc else None
    if order_type.conditional and expires is None:
        raise InvalidOrder("missing_field", f"a {order_type.value} order needs expiresAt "
                           "(when to give up waiting)", field="expiresAt")
    for name, kind in (("limitPrice", OrderType.LIMIT), ("sniper", OrderType.SNIPER)):
        if name in doc and order_type is not kind:
            raise InvalidOrder("invalid_field", f"{name} belongs to a {kind.value} order, "
                               f"not a {order_type.value} one", field=name)
    if "minAmountOut" in doc and order_type is not OrderType.LIMIT:
        raise InvalidOrder("invalid_field", "minAmountOut belongs to a limit order (a "
                           "sniper's goes inside its sniper object)", field="minAmountOut")
    limit = sniper = None
    if order_type is OrderType.LIMIT:
        assert token_out is not None
        limit = LimitTerms(_limit_min_out(doc, token_in, token_out, amount_in))
    elif order_type is OrderType.SNIPER:
        sniper = _sniper(doc.get("sniper"), token_in)
    return Terms(order_type, expires, limit, sniper)


def _expires_at(doc: dict[str, Any], submitted_at_ms: int) -> int:
    raw = doc["expiresAt"]
    bad = InvalidOrder("invalid_expires_at", "expiresAt must be an RFC 3339 time with a zone, "
                       "such as 2030-01-31T12:00:00Z", field="expiresAt")
    if not isinstance(raw, str):
        raise bad
    try:
        at = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise bad from None
    if at.tzinfo is None:
        raise bad
    ms = int(at.timestamp() * 1000)
    if ms <= submitted_at_ms:
        raise InvalidOrder("invalid_expires_at", "expiresAt is not in the future",
                           field="expiresAt")
    if ms - submitted_at_ms > MAX_EXPIRY_MS:
        raise InvalidOrder("invalid_expires_at", "expiresAt is more than a year away",
                           field="expiresAt")
    return ms


def _base_units_integer(value: object, field: str, *, low: int = 1) -> int:
    """An exact amount in base units: a JSON integer, or a string of digits (a u64 does not
    fit a JavaScript number)."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20:
        value = int(value)
    if not is_json_integer(value) or not low <= value <= U64_MAX:
        raise InvalidOrder("invalid_amount", f"{field} must be an integer number of base "
                           f"units, {low}..{U64_MAX} (a JSON integer or a digit string)",
                           field=field)
    return value


def _limit_min_out(doc: dict[str, Any], token_in: Token, token_out: Token,
                   amount_in: int) -> int:
    given = [name for name in ("limitPrice", "minAmountOut") if name in doc]
    if len(given) != 1:
        raise InvalidOrder("missing_field" if not given else "invalid_field",
                           "a limit order takes exactly one of limitPrice (UI units of "
                           "tokenOut per tokenIn) or minAmountOut (base units)",
                           field="limitPrice")
    if given[0] == "minAmountOut":
        return _base_units_integer(doc["minAmountOut"], "minAmountOut")
    price = doc["limitPrice"]
    if not isinstance(price, str):
        raise InvalidOrder("invalid_limit_price", "limitPrice must be a decimal string such "
                           "as \"160.5\"", field="limitPrice")
    return limit_min_out(amount_in, price, token_in.decimals, token_out.decimals)


def _small_int(value: object, field: str, low: int, high: int) -> int:
    if not is_json_integer(value) or not low <= value <= high:
        raise InvalidOrder("invalid_field", f"sniper.{field} must be an integer "
                           f"{low}..{high}", field=f"sniper.{field}")
    return value


def _sniper(raw: object, token_in: Token) -> SniperTerms:
    if not isinstance(raw, dict):
        raise InvalidOrder("missing_field", "a sniper order needs its sniper object "
                           "(at least minQuoteLiquidity)", field="sniper")
    unknown = sorted(set(raw) - SNIPER_FIELDS)
    if unknown:
        raise InvalidOrder("unknown_field", f"unknown field sniper.{unknown[0]} (allowed: "
                           f"{', '.join(sorted(SNIPER_FIELDS))})", field=f"sniper.{unknown[0]}")
    if "minQuoteLiquidity" not in raw:
        raise InvalidOrder("missing_field", "sniper.minQuoteLiquidity is required (UI units "
                           "of tokenIn the new pool must hold)", field="sniper.minQuoteLiquidity")
    liquidity = raw["minQuoteLiquidity"]
    if isinstance(liquidity, str) and ZERO.fullmatch(liquidity):
        min_liquidity = 0  # no liquidity guard (to_base_units refuses a zero amount)
    else:
        min_liquidity = to_base_units(liquidity, token_in.decimals,
                                      field="sniper.minQuoteLiquidity")
    return SniperTerms(
        min_quote_liquidity=min_liquidity,
        min_out=(_base_units_integer(raw["minAmountOut"], "sniper.minAmountOut")
                 if "minAmountOut" in raw else None),
        max_price_impact_bps=(_small_int(raw["maxPriceImpactBps"], "maxPriceImpactBps", 1,
                                         10_000) if "maxPriceImpactBps" in raw else None),
        max_delay_slots=(_small_int(raw["maxDelaySlots"], "maxDelaySlots", 0, 1_000_000)
                         if "maxDelaySlots" in raw else None),
        priority_fee_micro_lamports=(
            _small_int(raw["priorityFeeMicroLamports"], "priorityFeeMicroLamports", 0,
                       100_000_000) if "priorityFeeMicroLamports" in raw else None),
    )



def terms_view(terms: dict[str, Any] | None, token_in: str, amount_in: int, token_out: str
               ) -> dict[str, Any] | None:
    """The wire terms (``limit``/``sniper`` of orders v2, base units) as the API shows them:
    amounts as integer strings, with UI strings and the limit price where the tokens are
    known."""
    if not terms:
        return None
    t_in, t_out = token_by_mint(token_in), token_by_mint(token_out)
    out: dict[str, Any] = {}
    if "limit" in terms:
        min_out = int(terms["limit"]["minOut"])
        limit: dict[str, Any] = {"minAmountOut": str(min_out), "minAmountOutUi": None,
                                 "limitPrice": None}
        if t_in is not None and t_out is not None:
            limit["minAmountOutUi"] = to_ui(min_out, t_out.decimals)
            limit["limitPrice"] = format(
                (Decimal(min_out) / 10**t_out.decimals) / (Decimal(amount_in) / 10**t_in.decimals),
                "f")
        out["limit"] = limit
    if "sniper" in terms:
        s = dict(terms["sniper"])
        sniper: dict[str, Any] = {"minQuoteLiquidity": str(s.pop("minQuoteLiquidity"))}
        if t_in is not None:
            sniper["minQuoteLiquidityUi"] = to_ui(int(sniper["minQuoteLiquidity"]), t_in.decimals)
        if "minOut" in s:
            sniper["minAmountOut"] = str(s.pop("minOut"))
        out["sniper"] = {**sniper, **s}
    return out or None
