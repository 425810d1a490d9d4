"""The Jupiter venue: the aggregator's Swap API, with the transaction built here.

A venue is a DEX label passed through Jupiter's ``dexes`` filter (the labels of its
``/program-id-to-label``: ``Raydium CP`` for CP-Swap, ``Meteora DLMM``), so "Raydium vs
Meteora" is two quotes of the same endpoint. The local market serves the same v1 shape.

Why the engine builds the transaction: Jupiter's ``/swap`` returns a finished transaction
without our memo ``orderflow:<orderId>``, and the engine signs nothing without it (recovery
finds an order's transaction by it). So the client asks for the *instructions* and puts
them in :mod:`pipeline.txbuild`'s envelope with the memo, its own blockhash, and the
lookup tables the route needs.

Which API the configured base URL speaks (:func:`api_version`, from the URL's path):

* ``.../swap/v2`` -> v2 (current): one ``GET /build?taker=`` answers the quote *and* the
  instructions, lookup tables inline (``addressesByLookupTableAddress``); the quote is the
  build, so :class:`JupiterVenues` needs the wallet (``taker``). Jupiter sets the compute
  budget and priority fee of a v2 build itself (``/build`` documents no
  ``prioritizationFeeLamports``): our priority settings apply to v1 only.
* anything else (``.../swap/v1``, a self-hosted v6, the local market) -> v1 (legacy):
  ``GET /quote`` then ``POST /swap-instructions`` with ``prioritizationFeeLamports``
  (``priorityLevelWithMaxLamports``: a level and a cap in lamports),
  ``dynamicComputeUnitLimit`` and ``asLegacyTransaction=false``; lookup tables fetched
  with one ``getMultipleAccounts``.

Round trips per order: v1, one quote per venue + one ``/swap-instructions`` + one
``getLatestBlockhash`` (+ one ``getMultipleAccounts`` when the route uses lookup tables);
v2, one build per venue + one ``getLatestBlockhash``.

The API key (``x-api-key``) is sent when configured and never logged: the config's repr
hides it and error messages carry the answer, never the request. Errors map through
:data:`pipeline.errors.VENUE_API_ERRORS`; a 429 also pauses this client until its
``Retry-After`` has passed, so a rate-limited key is not hammered by the retries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import aiohttp
import orjson
from solders.hash import Hash
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from pipeline.errors import (
    JUPITER_API,
    ConfigError,
    NoRoute,
    TransactionFailed,
    VenueUnavailable,
    chain_error,
    venue_api_error,
)
from pipeline.model import Quote, Venue
from pipeline.txbuild import aggregator_instructions, aggregator_message
from pipeline.venues.base import SwapTransaction
from pipeline.venues.jupiter_wire import (
    aggregator_swap,
    foreign_signers,
    lookup_table_account,
    lookup_table_addresses,
    lookup_tables_inline,
    parse_quote,
)

# The real aggregator's labels (its /program-id-to-label); the local market uses the same.
DEX_LABELS: dict[Venue, str] = {Venue.RAYDIUM: "Raydium CP", Venue.METEORA: "Meteora DLMM"}
PRIORITY_LEVELS = ("medium", "high", "veryHigh")
DEFAULT_RETRY_AFTER_S = 1.0
MAX_RETRY_AFTER_S = 60.0

ApiVersion = Literal["v1", "v2"]


def api_version(base_url: str) -> ApiVersion:
    """v2 when the base URL's path ends in ``/v2`` (``https://api.jup.ag/swap/v2``), else
    v1 (``/swap/v1``, a self-hosted ``/v6``, the local market)."""
    return "v2" if urlsplit(base_url).path.rstrip("/").endswith("/v2") else "v1"


@dataclass(frozen=True, slots=True)
class JupiterConfig:
    base_url: str
    api_key: str | None = field(default=None, repr=False)  # x-api-key; never in a log line
    priority_level: str = "veryHigh"  # v1 prioritizationFeeLamports.priorityLevelWithMaxLamports
    max_priority_lamports: int = 1_000_000  # its cap: 0.001 SOL per swap
    dynamic_compute_unit_limit: bool = True  # v1: Jupiter simulates for the CU limit
    timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if self.priority_level not in PRIORITY_LEVELS:
            raise ConfigError(message=f"priority level {self.priority_level!r} is not one of "
                                      f"{', '.join(PRIORITY_LEVELS)}")
        if self.max_priority_lamports < 0:
            raise ConfigError(message="the priority fee cap cannot be negative")

    @property
    def version(self) -> ApiVersion:
        return api_version(self.base_url)


class ChainReads(Protocol):
    """What building a Jupiter transaction reads from the chain (``RpcAccounts`` has it)."""

    async def accounts(self, keys: Sequence[Pubkey]) -> list[bytes | None]: ...

    async def latest_blockhash(self) -> tuple[Hash, int]: ...


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
    """:class:`~pipeline.venues.base.Venues` over Jupiter's Swap API (v1 or v2)."""

    def __init__(self, config: JupiterConfig, session: aiohttp.ClientSession,
                 chain: ChainReads, *, taker: str | None = None) -> None:
        if config.version == "v2" and taker is None:
            raise ConfigError(message="Jupiter v2 /build needs the wallet (taker) up front")
        self._config = config
        self._base = config.base_url.rstrip("/")
        self._session = session
        self._chain = chain
        self._taker = taker
        self._timeout = aiohttp.ClientTimeout(total=config.timeout_s)
        self._headers = {"x-api-key": config.api_key} if config.api_key else {}
        self._paused_until = 0.0  # loop time: a 429's Retry-After

    async def quote(self, venue: Venue, input_mint: str, output_mint: str, amount: int,
                    slippage_bps: int) -> Quote:
        params = {"inputMint": input_mint, "outputMint": output_mint, "amount": str(amount),
                  "slippageBps": str(slippage_bps), "dexes": DEX_LABELS[venue]}
        if self._config.version == "v2":
            assert self._taker is not None
            body = await self._call(venue, "GET", "/build", params={**params,
                                                                     "taker": self._taker})
        else:
            body = await self._call(venue, "GET", "/quote", params={
                **params, "swapMode": "ExactIn", "onlyDirectRoutes": "true"})
        return parse_quote(venue, body, DEX_LABELS[venue])

    async def swap_transaction(self, quote: Quote, user_public_key: str, *,
                               memo: str | None = None,
                               priority_fee_micro_lamports: int | None = None
                               ) -> SwapTransaction:
        """The quote's swap with our memo, unsigned: Jupiter's instructions in the
        :mod:`pipeline.txbuild` envelope, on a blockhash read from our RPC; with an
        order's own priority fee, at that compute-unit price (asked of v1 as
        ``computeUnitPriceMicroLamports`` and set in the envelope whatever came back)."""
        user = Pubkey.from_string(user_public_key)
        if self._config.version == "v2":
            if user_public_key != self._taker:
                raise ConfigError(message="a v2 build is for its taker's wallet only")
            doc = quote.raw  # the build is the quote
            tables = lookup_tables_inline(quote.venue, doc)
        else:
            doc = await self._call(quote.venue, "POST", "/swap-instructions", data=orjson.dumps(
                self._swap_request(quote, user_public_key, priority_fee_micro_lamports)),
                headers={"Content-Type": "application/json"})
            keys = lookup_table_addresses(quote.venue, doc)
            datas = await self._chain.accounts(keys) if keys else []
            tables = [lookup_table_account(k, d) for k, d in zip(keys, datas, strict=True)]
        if doc.get("simulationError"):
            raise chain_error(str(doc["simulationError"]),
                              f"{quote.venue}: Jupiter's simulation of the swap failed")
        swap = aggregator_swap(quote.venue, doc)
        others = foreign_signers(aggregator_instructions(swap, memo), user)
        if others:
            raise TransactionFailed("unexpected_signer", f"{quote.venue}'s instructions need "
                                    f"signers besides our wallet: {sorted(map(str, others))}")
        blockhash, last_valid = await self._chain.latest_blockhash()
        try:
            message = aggregator_message(user, swap, memo, lookup_tables=tables,
                                         blockhash=blockhash,
                                         cu_price=priority_fee_micro_lamports)
        except Exception as exc:  # solders' CompileError: e.g. an index past 256 accounts
            raise NoRoute(message=f"{quote.venue}'s route does not fit a transaction: "
                                  f"{exc}") from None
        unsigned = VersionedTransaction.populate(
            message, [Signature.default()] * message.header.num_required_signatures)
        return SwapTransaction(bytes(unsigned), last_valid)

    def _swap_request(self, quote: Quote, user_public_key: str,
                      cu_price: int | None = None) -> dict[str, object]:
        c = self._config
        fee: dict[str, object] = (
            {"computeUnitPriceMicroLamports": cu_price} if cu_price is not None else
            {"prioritizationFeeLamports": {"priorityLevelWithMaxLamports": {
                "priorityLevel": c.priority_level, "maxLamports": c.max_priority_lamports}}})
        return {
            "quoteResponse": quote.raw,
            "userPublicKey": user_public_key,
            "wrapAndUnwrapSol": True,
            "dynamicComputeUnitLimit": c.dynamic_compute_unit_limit,
            "asLegacyTransaction": False,
            **fee,
        }

    async def _call(self, venue: Venue, method: str, path: str, **kwargs: Any
                    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        wait = self._paused_until - loop.time()
        if wait > 0:
            raise VenueUnavailable("venue_rate_limited",
                                   f"{venue}: Jupiter rate-limited us; retry after {wait:.1f}s")
        headers = {**self._headers, **kwargs.pop("headers", {})}
        try:
            async with self._session.request(method, f"{self._base}{path}", headers=headers,
                                             timeout=self._timeout, **kwargs) as resp:
                body = await resp.read()
                status = resp.status
                retry_after = resp.headers.get("Retry-After")
        except TimeoutError:
            raise VenueUnavailable("venue_timeout", f"{venue} {path} timed out") from None
        except aiohttp.ClientError as exc:
            raise VenueUnavailable(
                message=f"{venue} {path}: {type(exc).__name__}: {exc}") from None
        doc = _json_object(body)
        if status == 200:
            return doc
        if status == 429:
            self._paused_until = loop.time() + _seconds(retry_after)
        error = str(doc.get("error") or doc.get("message") or f"HTTP {status}")
        code = doc.get("errorCode", doc.get("code"))
        raise venue_api_error(JUPITER_API, status, None if code is None else str(code),
                              f"{venue} {path}: {error}")


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        return {"error": body[:200].decode(errors="replace")}
    return doc if isinstance(doc, dict) else {"error": str(doc)[:200]}


def _seconds(retry_after: str | None) -> float:
    """A ``Retry-After`` in seconds (an HTTP date or nonsense counts as the default)."""
    try:
        value = float(retry_after) if retry_after else DEFAULT_RETRY_AFTER_S
    except ValueError:
        value = DEFAULT_RETRY_AFTER_S
    return min(max(value, 0.0), MAX_RETRY_AFTER_S)


__all__ = ["DEX_LABELS", "ChainReads", "JupiterConfig", "JupiterVenues", "api_version",
           "check_enforced_min_out", "parse_quote"]
