"""What an open conditional order waits for: its condition in words, the time it has left,
and (limit orders, when this ingress can quote) how far the market is from triggering it.

The distance is the best **net** output the engine's own router finds now for the order's
amount (every venue, splits included, the route's priority fee deducted: what the trigger
engine compares) against the order's minimum output, in basis points of that minimum. It is
a view, not the trigger: the trigger engine decides on each pool change. Quotes are shared
by orders of the same pair and amount for :data:`QUOTE_TTL_S`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ingress.records import OrderRecord, datetime_to_ms
from pipeline.errors import OrderflowError
from pipeline.lifecycle import Order
from pipeline.route_choice import choose_route
from pipeline.router import Quotes
from pipeline.tokens import to_ui, token_by_mint
from pipeline.wire import iso_ms, now_ms

log = logging.getLogger(__name__)
QUOTE_TTL_S = 2.0
QUOTE_BUDGET_S = 3.0  # a slow venue leaves the distance unknown, never the page late
WAITING = ("pending", "open")  # a conditional order not yet triggered
BPS = 10_000


def _amount(amount: int, mint: str) -> dict[str, Any]:
    token = token_by_mint(mint)
    return {"amount": str(amount), "ui": None if token is None else to_ui(amount, token.decimals)}


def condition(record: OrderRecord) -> str | None:
    """The order's trigger condition in words (None for a market order)."""
    terms = record.terms or {}
    t_in, t_out = token_by_mint(record.token_in), token_by_mint(record.token_out)
    name_in = t_in.symbol if t_in else record.token_in
    name_out = t_out.symbol if t_out else record.token_out
    amount_in = to_ui(record.amount_in, t_in.decimals) if t_in else str(record.amount_in)
    if record.order_type == "limit" and "limit" in terms:
        min_out = int(terms["limit"]["minOut"])
        out = to_ui(min_out, t_out.decimals) if t_out else f"{min_out} base units"
        return (f"the best net output for {amount_in} {name_in} reaches {out} {name_out}")
    if record.order_type == "sniper" and "sniper" in terms:
        s = terms["sniper"]
        liquidity = to_ui(int(s["minQuoteLiquidity"]), t_in.decimals) if t_in else str(
            s["minQuoteLiquidity"])
        words = [f"a new Raydium CP-Swap or Meteora DLMM pool of {name_out} against {name_in} "
                 f"holding at least {liquidity} {name_in}"]
        if "maxDelaySlots" in s:
            words.append(f"seen within {s['maxDelaySlots']} slots of its creation")
        if "minOut" in s:
            words.append(f"paying at least {s['minOut']} base units of {name_out}")
        if "maxPriceImpactBps" in s:
            words.append(f"with at most {s['maxPriceImpactBps']} bps price impact")
        return ", ".join(words)
    return None


def time_left_ms(expires_at: datetime | None, now: int) -> int | None:
    return None if expires_at is None else max(0, datetime_to_ms(expires_at) - now)


class Quoter(Protocol):
    """What the distance needs of :class:`pipeline.router.Router`."""

    async def quote_all(self, order: Order) -> Quotes: ...


@dataclass(slots=True)
class _Seen:
    at: float
    net_out: int | None
    slot: int | None


class TriggerDistance:
    """Best net output now per (pair, amount), quoted by the engine's router (``None``:
    this ingress has no venues; the distance is then unknown)."""

    def __init__(self, router: Quoter | None) -> None:
        self._router = router
        self._seen: dict[tuple[str, str, int], _Seen] = {}

    async def _best(self, record: OrderRecord) -> _Seen:
        key = (record.token_in, record.token_out, record.amount_in)
        seen = self._seen.get(key)
        if seen is not None and time.monotonic() - seen.at < QUOTE_TTL_S:
            return seen
        assert self._router is not None
        order = Order(record.order_id, record.token_in, record.token_out, record.amount_in,
                      record.slippage_bps, "view", now_ms())
        net = slot = None
        try:
            async with asyncio.timeout(QUOTE_BUDGET_S):
                quotes = await self._router.quote_all(order)
            choice = choose_route(quotes.quotes, token_in=order.token_in,
                                  token_out=order.token_out, slippage_bps=order.slippage_bps)
            net, slot = choice.net_out, choice.quote.context_slot
        except (OrderflowError, TimeoutError) as exc:
            log.debug("no distance for %s: %r", record.order_id, exc)
        seen = _Seen(time.monotonic(), net, slot)
        if len(self._seen) > 1024:
            self._seen.clear()
        self._seen[key] = seen
        return seen

    async def distance(self, record: OrderRecord) -> dict[str, Any] | None:
        """``{"bestNetOut", "minOut", "toTriggerBps", "slot", "asOf"}`` of an open limit order
        when a quote could be had (``toTriggerBps`` <= 0: the market is at or past the limit,
        the trigger engine fires on its next look); else ``None``."""
        terms = record.terms or {}
        if self._router is None or record.order_type != "limit" or "limit" not in terms:
            return None
        seen = await self._best(record)
        if seen.net_out is None:
            return None
        min_out = int(terms["limit"]["minOut"])
        gap = min_out - seen.net_out
        return {"bestNetOut": _amount(seen.net_out, record.token_out),
                "minOut": _amount(min_out, record.token_out),
                "toTriggerBps": -((-gap * BPS) // min_out) if gap > 0 else (gap * BPS) // min_out,
                "slot": seen.slot, "asOf": iso_ms(now_ms())}

    async def waiting(self, record: OrderRecord) -> dict[str, Any] | None:
        """The ``waiting`` block of a conditional order not yet triggered (else ``None``)."""
        if record.order_type == "market" or record.status not in WAITING:
            return None
        return {"condition": condition(record),
                "timeLeftMs": time_left_ms(record.expires_at, now_ms()),
                "distance": await self.distance(record)}
