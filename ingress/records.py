"""Plain values the read store hands to the HTTP layer: one order row and a paging cursor."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from pipeline.errors import InvalidOrder

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CURSOR = re.compile(r"[A-Za-z0-9_-]+")
_ONE_MS = timedelta(milliseconds=1)


def datetime_to_ms(value: datetime) -> int:
    """Exact milliseconds since the epoch (float ``timestamp()`` can lose the last one)."""
    return (value - EPOCH) // _ONE_MS


def ms_to_datetime(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """One row of ``orders``: the sink's current view of an order, amounts in base units."""

    order_id: str
    status: str
    attempt: int
    source: str
    token_in: str  # mint
    token_out: str  # mint
    amount_in: int
    slippage_bps: int
    submitted_at: datetime
    created_at: datetime
    updated_at: datetime
    client_ref: str | None = None
    venue: str | None = None
    quotes: list[dict[str, Any]] | None = None
    expected_out: int | None = None
    min_out: int | None = None
    tx_signature: str | None = None
    slot: int | None = None
    amount_in_actual: int | None = None
    amount_out: int | None = None
    executed_price: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    route: dict[str, Any] | None = None  # status events' data.route (route_record.py)
    order_type: str = "market"  # market | limit | sniper
    expires_at: datetime | None = None  # None: an order persisted before expiries existed
    terms: dict[str, Any] | None = None  # orders v2 ``limit`` / ``sniper`` (base units)

    @property
    def cursor(self) -> PageCursor:
        return PageCursor(self.submitted_at, self.order_id)


@dataclass(frozen=True, slots=True)
class PageCursor:
    """Position in the newest-first order listing; opaque to clients so it can change."""

    submitted_at: datetime
    order_id: str

    def encode(self) -> str:
        raw = orjson.dumps([self.submitted_at.isoformat(), self.order_id])
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> PageCursor:
        # base64 decoding skips characters outside its alphabet; the API's cursor is
        # exactly base64url without padding (the OpenAPI pattern), so refuse the rest
        if not CURSOR.fullmatch(text):
            raise InvalidOrder("invalid_cursor", "before is not a cursor returned by this API",
                               field="before")
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            stamp, order_id = orjson.loads(raw)
            submitted_at = datetime.fromisoformat(stamp)
        except (binascii.Error, orjson.JSONDecodeError, ValueError, TypeError):
            raise InvalidOrder("invalid_cursor", "before is not a cursor returned by this API",
                               field="before") from None
        if not isinstance(order_id, str) or submitted_at.tzinfo is None:
            raise InvalidOrder("invalid_cursor", "before is not a cursor returned by this API",
                               field="before")
        return cls(submitted_at, order_id)
