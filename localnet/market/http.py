"""The market's HTTP API, a Jupiter Swap API v1 lookalike under ``/swap/v1``: quote,
swap-instructions (what the engine uses), swap (a finished transaction, for older
clients and the bench), pools, the localnet-only faucet and ``POST /admin/pools`` (launch a
new token and its pools, :mod:`localnet.market.launch`); venue fault switches around
``quote`` and both swap endpoints (the ``swap`` fault point)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
from aiohttp import web

from localnet import admin
from localnet.faults import VenueFaults, add_admin_routes
from localnet.market.errors import MarketError, bad_request, parse_amount
from localnet.market.launch import launch, parse_launch
from localnet.market.market import Market

PREFIX = "/swap/v1"

MARKET_KEY = web.AppKey("market", Market)
VENUE_FAULTS_KEY = web.AppKey("venue_faults", VenueFaults)
_FAULTED_ENDPOINTS = {f"{PREFIX}/quote": "quote", f"{PREFIX}/swap": "swap",
                     f"{PREFIX}/swap-instructions": "swap"}


def _json(doc: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(doc), status=status, content_type="application/json")


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except MarketError as exc:
        return _json(exc.to_json(), exc.status)


@web.middleware
async def _faults(request: web.Request, handler: Any) -> web.StreamResponse:
    """Venue fault switches (see :mod:`localnet.faults`) around ``quote`` and ``swap``."""
    faults = request.app[VENUE_FAULTS_KEY]
    endpoint = _FAULTED_ENDPOINTS.get(request.path)
    if endpoint is None or not faults.active:
        response: web.StreamResponse = await handler(request)
        return response
    plan = faults.plan([endpoint])
    if plan.empty:
        response = await handler(request)
        return response

    async def execute() -> web.StreamResponse:
        response: web.StreamResponse = await handler(request)
        return response

    return await faults.run(request, plan, execute)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        doc = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise bad_request("body must be JSON") from None
    if not isinstance(doc, dict):
        raise bad_request("body must be a JSON object")
    return doc


async def _quote(request: web.Request) -> web.Response:
    q = request.query
    for name in ("inputMint", "outputMint", "amount"):
        if name not in q:
            raise bad_request(f"missing query parameter {name}")
    dexes = [d.strip() for d in q["dexes"].split(",") if d.strip()] if "dexes" in q else None
    if q.get("swapMode", "ExactIn") != "ExactIn":
        raise bad_request("only swapMode=ExactIn is supported")
    slippage = q.get("slippageBps", "50")
    if not slippage.isdigit():
        raise bad_request("slippageBps must be an integer")
    doc = request.app[MARKET_KEY].quote(
        q["inputMint"], q["outputMint"], parse_amount(q["amount"], "amount"), int(slippage), dexes
    )
    return _json(doc)


async def _swap(request: web.Request) -> web.Response:
    body = await _body(request)
    wrap = body.get("wrapAndUnwrapSol", True)
    if not isinstance(wrap, bool):
        raise bad_request("wrapAndUnwrapSol must be a boolean")
    doc = request.app[MARKET_KEY].swap(
        body.get("quoteResponse"), body.get("userPublicKey"), wrap, body.get("memo")
    )
    return _json(doc)


async def _swap_instructions(request: web.Request) -> web.Response:
    body = await _body(request)
    wrap = body.get("wrapAndUnwrapSol", True)
    if not isinstance(wrap, bool):
        raise bad_request("wrapAndUnwrapSol must be a boolean")
    if body.get("asLegacyTransaction"):
        raise bad_request("asLegacyTransaction is not supported")
    doc = request.app[MARKET_KEY].swap_instructions(
        body.get("quoteResponse"), body.get("userPublicKey"), wrap)
    return _json(doc)


async def _pools(request: web.Request) -> web.Response:
    return _json(request.app[MARKET_KEY].pools_json())


async def _launch(request: web.Request) -> web.Response:
    """``POST /admin/pools``: a new token and its pool(s) (:mod:`localnet.market.launch`)."""
    market = request.app[MARKET_KEY]
    body = parse_launch(await _body(request), market.tokens,
                        {t.symbol for t in market.tokens.values()})
    return _json(launch(market, body), 201)


async def _faucet(request: web.Request) -> web.Response:
    body = await _body(request)
    return _json(
        request.app[MARKET_KEY].faucet(body.get("owner"), body.get("mint"), body.get("amount"))
    )


def build_market_app(
    market: Market,
    *,
    run_drift: bool = True,
    faults: VenueFaults | None = None,
    admin_token: str | None = None,
) -> web.Application:
    """The HTTP API under ``/swap/v1``: quote, swap, pools, and the localnet-only faucet;
    ``POST /admin/pools`` launches a token and its pools.

    With ``run_drift`` (and ``market.drift_bps > 0``) the app runs :meth:`Market.run_drift`
    while it is up. The chain's clock is the server's business, not the market's.
    ``faults`` (default: all off) switch faults on ``quote``/``swap``, managed at
    ``/admin/faults`` (see :mod:`localnet.faults`). The faucet and ``/admin/*`` need
    ``admin_token`` from a loopback client (see :mod:`localnet.admin`; a random token,
    at ``app[admin.ADMIN_TOKEN_KEY]``, when None).
    """
    app = web.Application(middlewares=[_faults, _errors])
    admin.guard(app, admin_token, frozenset({f"{PREFIX}/faucet"}))
    app[MARKET_KEY] = market
    if faults is None:
        faults = VenueFaults()
    app[VENUE_FAULTS_KEY] = faults
    add_admin_routes(app, faults)
    app.router.add_get(f"{PREFIX}/quote", _quote)
    app.router.add_post(f"{PREFIX}/swap", _swap)
    app.router.add_post(f"{PREFIX}/swap-instructions", _swap_instructions)
    app.router.add_get(f"{PREFIX}/pools", _pools)
    app.router.add_post(f"{PREFIX}/faucet", _faucet)
    app.router.add_post("/admin/pools", _launch)
    if run_drift and market.drift_bps > 0:

        async def drift(app: web.Application) -> AsyncIterator[None]:
            task = asyncio.create_task(market.run_drift(), name="market-drift")
            yield
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

        app.cleanup_ctx.append(drift)
    return app
