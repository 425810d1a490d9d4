"""The Jupiter Swap API v1 venue client (also spoken by the local market).

One client serves the local market and the real Jupiter API: a venue is a DEX
label passed through Jupiter's ``dexes`` filter, so "Raydium vs Meteora" is two
quotes of the same endpoint.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

from pipeline.errors import (
    JUPITER_V6,
    NoRoute,
    SlippageExceeded,
    TransactionFailed,
    VenueUnavailable,
    program_error,
)
from pipeline.model import Quote, Venue
from pipeline.venues.base import SwapTransaction

# The real aggregator's labels (its /program-id-to-label); the local market uses the same.
DEX_LABELS: dict[Venue, str] = {Venue.RAYDIUM: "Raydium CP", Venue.METEORA: "Meteora DLMM"}


def parse_quote(venue: Venue, body: dict[str, Any]) -> Quote:
    """Turn a Jupiter quote response into a :class:`Quote` (amounts are decimal strings there)."""
    try:
        plan = body["routePlan"]
        fee = sum(int(step["swapInfo"]["feeAmount"]) for step in plan)
        first = plan[0]["swapInfo"]
        return Quote(
            venue=venue,
            in_amount=int(body["inAmount"]),
            out_amount=int(body["outAmount"]),
            fee_amount=fee,
            fee_mint=str(first.get("feeMint", "")),
            price_impact_pct=str(body.get("priceImpactPct", "0")),
            amm_key=str(first.get("ammKey", "")),
            context_slot=int(body.get("contextSlot", 0)),
            raw=body,
        )
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise VenueUnavailable(message=f"{venue} returned a malformed quote: {exc!r}") from None


def check_enforced_min_out(quote: Quote, min_out: int) -> None:
    """The venue's transaction must enforce at least our own minimum output: Jupiter's
    ``otherAmountThreshold`` is the minimum its swap instruction will accept."""
    threshold = quote.raw.get("otherAmountThreshold")
    if threshold is not None and int(str(threshold)) < min_out:
        raise TransactionFailed(
            "unsafe_quote",
            f"{quote.venue} quote's otherAmountThreshold {threshold} is below our minOut "
            f"{min_out}")


class JupiterVenues:
    """HTTP client for ``{base}/quote`` and ``{base}/swap``."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession, *,
                 timeout_s: float = 5.0) -> None:
        self._base = base_url.rstrip("/")
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def _call(self, venue: Venue, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        url = f"{self._base}{path}"
        try:
            async with self._session.request(method, url, timeout=self._timeout,
                                             **kwargs) as resp:
                body = await resp.read()
                status = resp.status
        except TimeoutError:
            raise VenueUnavailable("venue_timeout", f"{venue} {path} timed out") from None
        except aiohttp.ClientError as exc:
            raise VenueUnavailable(message=f"{venue} {path}: {exc!r}") from None
        try:
            doc = orjson.loads(body) if body else {}
        except orjson.JSONDecodeError:
            doc = {"error": body[:200].decode(errors="replace")}
        if not isinstance(doc, dict):
            doc = {"error": str(doc)[:200]}
        if status == 429 or status >= 500:
            raise VenueUnavailable(message=f"{venue} {path} answered {status}: {doc.get('error')}")
        if status >= 400:
            code = str(doc.get("errorCode", ""))
            message = str(doc.get("error") or doc.get("message") or f"HTTP {status}")
            kind = program_error(int(code), JUPITER_V6) if code.isdigit() else None
            if kind is not None:
                raise kind(message=f"{venue}: {message} ({code})")
            if "slippage" in message.lower():
                raise SlippageExceeded(message=f"{venue}: {message}")
            raise NoRoute(message=f"{venue}: {message} ({code or status})")
        return doc

    async def quote(self, venue: Venue, input_mint: str, output_mint: str, amount: int,
                    slippage_bps: int) -> Quote:
        params = {
            "inputMint": input_mint,
            "outputMint": output_mint,
            "amount": str(amount),
            "slippageBps": str(slippage_bps),
            "swapMode": "ExactIn",
            "dexes": DEX_LABELS[venue],
            "onlyDirectRoutes": "true",
        }
        return parse_quote(venue, await self._call(venue, "GET", "/quote", params=params))

    async def swap_transaction(self, quote: Quote, user_public_key: str, *,
                               memo: str | None = None) -> SwapTransaction:
        import base64

        payload: dict[str, object] = {"quoteResponse": quote.raw,
                                      "userPublicKey": user_public_key, "wrapAndUnwrapSol": True}
        if memo is not None:
            payload["memo"] = memo  # the local market's extension of Jupiter's /swap
        doc = await self._call(quote.venue, "POST", "/swap", data=orjson.dumps(payload),
                               headers={"Content-Type": "application/json"})
        try:
            return SwapTransaction(base64.b64decode(doc["swapTransaction"]),
                                   int(doc["lastValidBlockHeight"]))
        except (KeyError, ValueError, TypeError) as exc:
            raise VenueUnavailable(
                message=f"{quote.venue} returned a malformed swap: {exc!r}") from None
