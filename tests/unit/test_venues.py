"""The venue client ``JupiterVenues`` (pipeline/venues.py) over real HTTP.

An in-process aiohttp server answers ``/quote`` and ``/swap`` in the Jupiter Swap API v1
shape; each test scripts its answers and reads back what the client asked.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from pipeline.errors import (
    InsufficientFunds,
    NoRoute,
    OrderflowError,
    SlippageExceeded,
    VenueUnavailable,
)
from pipeline.model import Quote, Venue
from pipeline.tokens import SOL, USDC
from pipeline.venues import DEX_LABELS, JupiterVenues, SwapTransaction

POOL = "8sLbNZoA1cfnvMJLPfp98ZLAnFSYCFApfJKMbiXNLwxj"


def quote_body(out_amount: int = 151_234_567, *, in_amount: int = 1_000_000_000,
               fees: tuple[int, ...] = (2_500_000,)) -> dict[str, Any]:
    return {
        "inputMint": SOL.mint, "outputMint": USDC.mint,
        "inAmount": str(in_amount), "outAmount": str(out_amount),
        "otherAmountThreshold": str(out_amount * 995 // 1000), "swapMode": "ExactIn",
        "slippageBps": 50, "priceImpactPct": "0.0012", "contextSlot": 4242,
        "routePlan": [{"percent": 100, "swapInfo": {
            "ammKey": POOL, "label": "Raydium CP", "inputMint": SOL.mint,
            "outputMint": USDC.mint, "inAmount": str(in_amount), "outAmount": str(out_amount),
            "feeAmount": str(fee), "feeMint": SOL.mint}} for fee in fees],
    }


@dataclass
class Answer:
    status: int = 200
    body: Any = None  # JSON-encoded unless bytes


@dataclass
class FakeJupiter:
    """What the server answers next, per path, and every request it received."""

    quote: Answer = field(default_factory=lambda: Answer(body=quote_body()))
    swap: Answer = field(default_factory=lambda: Answer(body={
        "swapTransaction": base64.b64encode(b"unsigned-tx-bytes").decode(),
        "lastValidBlockHeight": 987_654}))
    requests: list[tuple[str, str, dict[str, str], Any]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.requests.append((request.method, request.path, dict(request.query),
                              orjson.loads(raw) if raw else None))
        answer = self.quote if request.path.endswith("/quote") else self.swap
        body = answer.body if isinstance(answer.body, bytes) else orjson.dumps(answer.body)
        return web.Response(status=answer.status, body=body, content_type="application/json")


@dataclass
class Client:
    venues: JupiterVenues
    server: FakeJupiter
    base: str


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    fake = FakeJupiter()
    app = web.Application()
    app.router.add_get("/swap/v1/quote", fake.handle)
    app.router.add_post("/swap/v1/swap", fake.handle)
    async with TestServer(app) as server, aiohttp.ClientSession() as session:
        base = str(server.make_url("/swap/v1/"))  # a trailing slash is tolerated
        yield Client(JupiterVenues(base, session, timeout_s=5.0), fake, base)


async def a_quote(c: Client, venue: Venue = Venue.RAYDIUM) -> Quote:
    return await c.venues.quote(venue, SOL.mint, USDC.mint, 1_000_000_000, 50)


async def test_a_quote_is_asked_for_one_dex_and_parsed(client: Client) -> None:
    client.server.quote.body = quote_body(fees=(2_500_000, 500_000))
    for venue in (Venue.RAYDIUM, Venue.METEORA):
        q = await a_quote(client, venue)
        method, path, query, _ = client.server.requests[-1]
        assert (method, path) == ("GET", "/swap/v1/quote")
        assert query == {"inputMint": SOL.mint, "outputMint": USDC.mint,
                         "amount": "1000000000", "slippageBps": "50", "swapMode": "ExactIn",
                         "dexes": DEX_LABELS[venue], "onlyDirectRoutes": "true"}
        assert (q.venue, q.in_amount, q.out_amount) == (venue, 1_000_000_000, 151_234_567)
        assert q.fee_amount == 3_000_000  # summed over the route's steps
        assert (q.fee_mint, q.amm_key, q.context_slot) == (SOL.mint, POOL, 4242)
        assert q.price_impact_pct == "0.0012"
        assert q.raw == client.server.quote.body  # kept whole: /swap gets it back verbatim


async def test_a_malformed_quote_is_the_venue_unavailable(client: Client) -> None:
    broken: list[Any] = [
        {k: v for k, v in quote_body().items() if k != "outAmount"},
        {**quote_body(), "routePlan": []},
        {**quote_body(), "inAmount": "1.5"},
        {**quote_body(), "routePlan": [{"swapInfo": {"feeAmount": None}}]},
    ]
    for body in broken:
        client.server.quote.body = body
        with pytest.raises(VenueUnavailable) as raised:
            await a_quote(client)
        assert raised.value.code == "venue_unavailable" and "malformed quote" in str(raised.value)


async def test_swap_sends_the_quote_back_with_the_memo(client: Client) -> None:
    q = await a_quote(client)
    tx = await client.venues.swap_transaction(q, "Wa11et1111111111111111111111111111111111111",
                                              memo="orderflow:o-1")
    assert tx == SwapTransaction(b"unsigned-tx-bytes", 987_654)
    method, path, _, payload = client.server.requests[-1]
    assert (method, path) == ("POST", "/swap/v1/swap")
    assert payload == {"quoteResponse": client.server.quote.body,
                       "userPublicKey": "Wa11et1111111111111111111111111111111111111",
                       "wrapAndUnwrapSol": True, "memo": "orderflow:o-1"}

    await client.venues.swap_transaction(q, "Wa11et1111111111111111111111111111111111111")
    assert "memo" not in client.server.requests[-1][3]  # no memo asked, none sent


async def test_a_malformed_swap_is_the_venue_unavailable(client: Client) -> None:
    q = await a_quote(client)
    for body in ({"lastValidBlockHeight": 1}, {"swapTransaction": "!!not base64!!",
                                               "lastValidBlockHeight": 1},
                 {"swapTransaction": "AAAA", "lastValidBlockHeight": "soon"}):
        client.server.swap.body = body
        with pytest.raises(VenueUnavailable, match="malformed swap"):
            await client.venues.swap_transaction(q, "W")


@pytest.mark.parametrize("status", [429, 500, 502, 503])
async def test_overload_and_server_errors_are_transient(client: Client, status: int) -> None:
    client.server.quote = Answer(status, {"error": "slow down"})
    with pytest.raises(VenueUnavailable) as raised:
        await a_quote(client)
    assert raised.value.retriable and raised.value.code == "venue_unavailable"
    assert str(status) in raised.value.message and "slow down" in raised.value.message
    # even when the body says slippage: a 5xx/429 is the venue's trouble, not the order's
    client.server.swap = Answer(status, {"error": "slippage", "errorCode": "6001"})
    client.server.quote = Answer(body=quote_body())
    with pytest.raises(VenueUnavailable):
        await client.venues.swap_transaction(await a_quote(client), "W")


async def test_a_server_error_that_is_not_json_is_still_transient(client: Client) -> None:
    client.server.quote = Answer(502, b"<html>Bad Gateway</html>")
    with pytest.raises(VenueUnavailable, match="Bad Gateway"):
        await a_quote(client)


@pytest.mark.parametrize(("body", "error", "code"), [
    ({"error": "Slippage tolerance exceeded", "errorCode": "6001"}, SlippageExceeded,
     "slippage_exceeded"),
    ({"error": "custom program error", "errorCode": 6001}, SlippageExceeded,
     "slippage_exceeded"),
    ({"error": "not enough SOL", "errorCode": "1"}, InsufficientFunds, "insufficient_funds"),
    ({"error": "would exceed slippage"}, SlippageExceeded, "slippage_exceeded"),
    ({"error": "No routes found", "errorCode": "COULD_NOT_FIND_ANY_ROUTE"}, NoRoute,
     "no_route"),
    ({"error": "program failed", "errorCode": "4242"}, NoRoute, "no_route"),
    ({}, NoRoute, "no_route"),
])
async def test_client_errors_map_to_permanent_failures(
        client: Client, body: dict[str, Any], error: type[OrderflowError], code: str) -> None:
    client.server.swap = Answer(400, body)
    with pytest.raises(OrderflowError) as raised:
        await client.venues.swap_transaction(await a_quote(client), "W")
    assert type(raised.value) is error
    assert raised.value.code == code and not raised.value.retriable


async def test_an_unreachable_venue_is_transient() -> None:
    async with aiohttp.ClientSession() as session:
        server = TestServer(web.Application())
        await server.start_server()
        base = str(server.make_url("/swap/v1"))
        await server.close()  # nothing listens there any more
        venues = JupiterVenues(base, session)
        with pytest.raises(VenueUnavailable) as raised:
            await venues.quote(Venue.METEORA, SOL.mint, USDC.mint, 1, 50)
    assert raised.value.code == "venue_unavailable"


async def test_a_slow_venue_times_out_as_venue_timeout() -> None:
    """The server really is slow: it answers only once the test is over."""
    release = asyncio.Event()

    async def stall(_request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response(quote_body())

    app = web.Application()
    app.router.add_get("/quote", stall)
    async with TestServer(app) as server, aiohttp.ClientSession() as session:
        venues = JupiterVenues(str(server.make_url("")), session, timeout_s=0.2)
        try:
            with pytest.raises(VenueUnavailable) as raised:
                await venues.quote(Venue.RAYDIUM, SOL.mint, USDC.mint, 1, 50)
        finally:
            release.set()
    assert (raised.value.code, raised.value.retriable) == ("venue_timeout", True)
