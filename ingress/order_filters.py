"""``GET /api/orders`` filters: each one applied, or the request refused with a 400 that
names it; a parameter this route does not know is refused too, never ignored.

``status`` and ``type`` take one value or a comma-separated list; ``venue`` one venue;
``token`` a symbol or mint on either side of the order; ``from`` / ``to`` bound
``submittedAt`` (ISO 8601 with a zone, or milliseconds since the epoch; ``from`` inclusive,
``to`` exclusive). ``owner`` is not a parameter: it is the API key's id when the request
carries one (a key sees only its own orders).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from pipeline.errors import InvalidOrder
from pipeline.lifecycle import OrderStatus
from pipeline.model import OrderType, Venue
from pipeline.tokens import resolve_token

PAGE_PARAMS = frozenset({"limit", "before"})
FILTER_PARAMS = frozenset({"status", "type", "venue", "token", "from", "to"})


@dataclass(frozen=True, slots=True)
class OrderFilter:
    statuses: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    venue: str | None = None
    token: str | None = None  # a mint
    submitted_from: datetime | None = None
    submitted_to: datetime | None = None
    owner: str | None = None  # an API key id


def _choices(raw: str, field: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    values = tuple(v.strip() for v in raw.split(","))
    bad = [v for v in values if v not in allowed]
    if not raw or bad:
        raise InvalidOrder(f"invalid_{field}", f"{field} must be one or more of "
                           f"{', '.join(allowed)} (comma-separated)", field=field)
    return values


def _instant(raw: str, field: str) -> datetime:
    try:
        if raw.isascii() and raw.isdigit():
            return datetime.fromtimestamp(int(raw) / 1000, UTC)
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        value = None
    if value is None or value.tzinfo is None:
        raise InvalidOrder("invalid_time", f"{field} must be an ISO 8601 time with a zone "
                           "(2026-01-31T12:00:00Z) or milliseconds since the epoch",
                           field=field)
    return value


def parse_filter(query: Mapping[str, str], *, owner: str | None = None) -> OrderFilter:
    unknown = sorted(set(query) - FILTER_PARAMS - PAGE_PARAMS)
    if unknown:
        allowed = ", ".join(sorted(FILTER_PARAMS | PAGE_PARAMS))
        raise InvalidOrder("unknown_parameter", f"unknown query parameter {unknown[0]!r} "
                           f"(allowed: {allowed})", field=unknown[0])
    statuses = _choices(query["status"], "status", tuple(s.value for s in OrderStatus)) \
        if "status" in query else ()
    types = _choices(query["type"], "type", tuple(t.value for t in OrderType)) \
        if "type" in query else ()
    venue = _choices(query["venue"], "venue", tuple(v.value for v in Venue))[0] \
        if "venue" in query else None
    if venue is not None and "," in query["venue"]:
        raise InvalidOrder("invalid_venue", "venue takes one venue", field="venue")
    token = resolve_token(query["token"], field="token").mint if "token" in query else None
    start = _instant(query["from"], "from") if "from" in query else None
    end = _instant(query["to"], "to") if "to" in query else None
    if start is not None and end is not None and end <= start:
        raise InvalidOrder("invalid_time", "to must be after from", field="to")
    return OrderFilter(statuses, types, venue, token, start, end, owner)


def where_sql(f: OrderFilter) -> tuple[list[str], list[object]]:
    """SQL conditions over ``orders`` and their parameters (psycopg ``%s``)."""
    conds: list[str] = []
    params: list[object] = []
    if f.statuses:
        conds.append("status = ANY(%s)")
        params.append(list(f.statuses))
    if f.types:
        conds.append("order_type = ANY(%s)")
        params.append(list(f.types))
    if f.venue is not None:
        conds.append("venue = %s")
        params.append(f.venue)
    if f.token is not None:
        conds.append("(token_in = %s OR token_out = %s)")
        params += [f.token, f.token]
    if f.submitted_from is not None:
        conds.append("submitted_at >= %s")
        params.append(f.submitted_from)
    if f.submitted_to is not None:
        conds.append("submitted_at < %s")
        params.append(f.submitted_to)
    if f.owner is not None:
        conds.append("order_id IN (SELECT order_id FROM api_key_orders WHERE key_id = %s)")
        params.append(f.owner)
    return conds, params
