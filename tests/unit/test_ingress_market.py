"""``GET /api/quote``, ``/api/markets`` and ``/api/wallet`` on the engine's real router over
venue doubles with exact CP-Swap curves: the quote shown is the engine's own decision."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from ingress.app import RUNNER_OPTIONS, build_app
from ingress.hub import StatusHub
from ingress.market_api import MarketApi, pair_state
from ingress.quote_view import SIGNATURE_FEE_LAMPORTS
from pipeline.errors import NoRoute
from pipeline.guards import PriceLimits
from pipeline.metrics import EngineMetrics
from pipeline.model import Quote, Venue
from pipeline.router import Router
from pipeline.tokens import SOL, USDC, USDT
from pipeline.venue_set import VenueSet
from pipeline.venues import SwapTransaction
from pipeline.wire import ExecuteOrder
from tests.unit.test_ingress_fakes import FakeBus, FakeStore, ingress_config
from tests.unit.test_ingress_openapi import validate_response
from tests.unit.test_route_choice import CpCurve

WALLET = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM"


class CurveVenues:
    """Both venues quote SOL -> USDC on an exact CP-Swap pool each; other pairs have none."""

    def __init__(self, pools: dict[Venue, CpCurve], impact: str = "0.001") -> None:
        self.pools = pools
        self.impact = impact
        self.asked: list[tuple[Venue, str, str, int, int]] = []

    async def quote(self, venue: Venue, input_mint: str, output_mint: str, amount: int,
                    slippage_bps: int) -> Quote:
        self.asked.append((venue, input_mint, output_mint, amount, slippage_bps))
        if (input_mint, output_mint) != (SOL.mint, USDC.mint):
            raise NoRoute(message="no pool for this pair")
        q = self.pools[venue].quote(amount, slippage_bps)
        return Quote(q.venue, q.in_amount, q.out_amount, q.fee_amount, q.fee_mint, self.impact,
                     q.amm_key, q.context_slot, raw=q.raw, cost_lamports=q.cost_lamports,
                     curve=q.curve)

    async def swap_transaction(self, quote: Quote, user_public_key: str, *,
                               memo: str | None = None,
                               priority_fee_micro_lamports: int | None = None
                               ) -> SwapTransaction:
        raise AssertionError("a quote never builds a swap")


class Balances:
    def __init__(self, held: dict[str, int]) -> None:
        self.held = held

    async def token_balance(self, owner: str, mint: str) -> int:
        assert owner == WALLET
        return self.held.get(mint, 0)


def router(venues: CurveVenues) -> Router:
    return Router(venues, enabled=(Venue.RAYDIUM, Venue.METEORA), limits=PriceLimits(),
                  metrics=EngineMetrics(CollectorRegistry()))


def venues(cost: int = 0, impact: str = "0.001") -> CurveVenues:
    return CurveVenues({
        Venue.RAYDIUM: CpCurve(Venue.RAYDIUM, 10**14, 15 * 10**12, cost=cost),
        Venue.METEORA: CpCurve(Venue.METEORA, 8 * 10**13, 12 * 10**12, cost=cost)},
        impact=impact)


@pytest.fixture
def market_venues() -> CurveVenues:
    return venues(cost=10_000)


async def client_for(market: MarketApi) -> AsyncIterator[TestClient[Any, Any]]:
    app = build_app(ingress_config(), producer=FakeBus(), store=FakeStore(), hub=StatusHub(),
                    market=market)
    server = TestServer(app)
    await server.start_server(**RUNNER_OPTIONS)
    async with TestClient(server) as client:
        yield client


@pytest.fixture
async def client(market_venues: CurveVenues) -> AsyncIterator[TestClient[Any, Any]]:
    market = MarketApi(router(market_venues), VenueSet(kind="onchain"),
                       balances=Balances({SOL.mint: 2_500_000_000, USDC.mint: 7_000_001}),
                       wallet=WALLET)
    async for c in client_for(market):
        yield c


async def get(client: TestClient[Any, Any], url: str) -> tuple[int, Any]:
    """The answer, checked against the OpenAPI document's schema for it."""
    async with client.get(url) as resp:
        doc = await resp.json()
    validate_response(url.split("?")[0], "get", resp.status, doc)
    return resp.status, doc


async def engine_route(v: CurveVenues, amount: int, slippage: int) -> Any:
    """What the executor's router decides for the same order."""
    cmd = ExecuteOrder(order_id="engine-view-1", token_in=SOL.mint, token_out=USDC.mint,
                       amount_in=amount, slippage_bps=slippage, submitted_at_ms=1)
    r = router(v)
    order = cmd.to_order()
    return r.choose(order, (await r.quote_all(order)).quotes, max_price_impact_bps=None)


async def test_a_quote_is_the_route_the_engine_would_take(
        client: TestClient[Any, Any], market_venues: CurveVenues) -> None:
    status, doc = await get(client, "/api/quote?tokenIn=SOL&tokenOut=USDC&amount=2.5"
                                    "&slippageBps=30")
    assert status == 200, doc
    expected = await engine_route(venues(cost=10_000), 2_500_000_000, 30)
    route = doc["route"]
    assert (doc["amountIn"], doc["amountInUi"], doc["slippageBps"]) == ("2500000000", "2.5", 30)
    assert route["expectedOut"] == str(expected.best.out_amount)
    assert route["minOut"] == str(expected.min_out)
    assert route["venue"] == expected.best.venue.value
    assert [(leg["venue"], leg["amountIn"], leg["minOut"]) for leg in route["legs"]] == [
        (leg.venue.value, str(leg.amount_in), str(leg.min_out)) for leg in expected.legs]
    assert {q["venue"] for q in doc["quotes"]} == {"raydium", "meteora"}
    assert all(isinstance(q["amountOut"], str) for q in doc["quotes"])
    assert route["fees"]["networkLamports"] == str(SIGNATURE_FEE_LAMPORTS)
    assert route["fees"]["priority"] == {"lamports": str(expected.best.cost_lamports),
                                         "setBy": "engine", "maxLamports": None}
    assert doc["refused"] is None
    assert market_venues.asked[0][3:] == (2_500_000_000, 30)


async def test_a_large_order_shows_its_split_and_both_legs(client: TestClient[Any, Any]
                                                           ) -> None:
    _, doc = await get(client, "/api/quote?tokenIn=SOL&tokenOut=USDC&amount=100")
    route = doc["route"]
    expected = await engine_route(venues(cost=10_000), 100 * 10**9, 50)
    assert route["split"] is True and len(expected.legs) == 2
    assert sum(leg["fractionBps"] for leg in route["legs"]) == 10_000
    assert sum(int(leg["amountIn"]) for leg in route["legs"]) == 100 * 10**9
    assert sum(int(leg["minOut"]) for leg in route["legs"]) == int(route["minOut"])
    assert route["fees"]["priority"]["lamports"] == "20000"  # both legs
    single = max(int(q["netOut"]) for q in doc["quotes"])
    assert int(route["netOut"]) > single
    assert route["marginBps"] == (int(route["netOut"]) - single) * 10_000 // single


async def test_rates_are_decimal_strings_both_ways_with_units(client: TestClient[Any, Any]
                                                              ) -> None:
    _, doc = await get(client, "/api/quote?tokenIn=SOL&tokenOut=USDC&amount=1")
    rate = doc["route"]["rate"]
    out = int(doc["route"]["expectedOut"])
    assert rate["unit"] == "USDC per SOL" and rate["inverseUnit"] == "SOL per USDC"
    assert rate["outPerIn"].startswith(str(out // 10**6)[:3])
    assert "e" not in rate["outPerIn"].lower() and "e" not in rate["inPerOut"].lower()


async def test_a_quote_the_guards_refuse_says_why_and_still_shows_the_route() -> None:
    market = MarketApi(router(venues(cost=10_000, impact="0.2")), VenueSet(kind="onchain"),
                       balances=None, wallet=None)
    async for c in client_for(market):
        status, doc = await get(c, "/api/quote?tokenIn=SOL&tokenOut=USDC&amount=1")
        assert status == 200
        assert doc["refused"]["code"] == "price_impact_too_high"
        assert doc["route"] is not None and doc["route"]["priceImpactPct"] == "0.2"
        status, doc = await get(c, "/api/quote?tokenIn=SOL&tokenOut=USDC&amount=1"
                                   "&maxPriceImpactBps=2500")
        assert doc["refused"] is None


async def test_no_venue_can_quote_is_a_refusal_with_each_venues_error(
        client: TestClient[Any, Any]) -> None:
    status, doc = await get(client, "/api/quote?tokenIn=USDC&tokenOut=USDT&amount=5")
    assert status == 200
    assert doc["route"] is None and doc["quotes"] == []
    assert doc["refused"]["code"] == "no_route"
    assert {e["venue"] for e in doc["quoteErrors"]} == {"raydium", "meteora"}


@pytest.mark.parametrize(("query", "code", "field"), [
    ("tokenIn=SOL&tokenOut=USDC", "missing_field", "amount"),
    ("tokenIn=SOL&tokenOut=USDC&amount=", "invalid_amount", "amount"),
    ("tokenIn=SOL&tokenOut=USDC&amount=1.5e3", "invalid_amount", "amount"),
    ("tokenIn=SOL&tokenOut=USDC&amount=1&slippageBps=-1", "invalid_slippageBps", "slippageBps"),
    ("tokenIn=SOL&tokenOut=USDC&amount=1&slippageBps=6000", "invalid_slippage", "slippageBps"),
    ("tokenIn=SOL&tokenOut=SOL&amount=1", "same_token", "tokenOut"),
    ("tokenIn=DOGE&tokenOut=USDC&amount=1", "unknown_token", "tokenIn"),
    ("tokenIn=SOL&tokenOut=USDC&amount=1&venue=raydium", "unknown_parameter", "venue"),
])
async def test_bad_quote_parameters_are_400_with_the_field(
        client: TestClient[Any, Any], market_venues: CurveVenues, query: str, code: str,
        field: str) -> None:
    status, doc = await get(client, f"/api/quote?{query}")
    assert (status, doc["error"]["code"], doc["error"]["field"]) == (400, code, field)
    assert market_venues.asked == []


async def test_wallet_lists_every_token_in_base_units_and_ui(client: TestClient[Any, Any]
                                                             ) -> None:
    status, doc = await get(client, "/api/wallet")
    assert status == 200
    assert doc["address"] == WALLET
    assert doc["balances"] == [
        {"symbol": "SOL", "mint": SOL.mint, "decimals": 9, "amount": "2500000000",
         "ui": "2.5"},
        {"symbol": "USDC", "mint": USDC.mint, "decimals": 6, "amount": "7000001",
         "ui": "7.000001"},
        {"symbol": "USDT", "mint": USDT.mint, "decimals": 6, "amount": "0", "ui": "0"}]


async def test_markets_show_each_venues_pool_and_price(client: TestClient[Any, Any]) -> None:
    status, doc = await get(client, "/api/markets")
    assert status == 200
    sol_usdc = next(p for p in doc["pairs"] if (p["base"], p["quote"]) == ("SOL", "USDC"))
    assert sol_usdc["referenceIn"] == {"amount": "1000000000", "ui": "1"}
    assert {p["venue"] for p in sol_usdc["pools"]} == {"raydium", "meteora"}
    ray = next(p for p in sol_usdc["pools"] if p["venue"] == "raydium")
    assert ray["pool"] == "raydium-pool" and ray["price"]["unit"] == "USDC per SOL"
    usdc_usdt = next(p for p in doc["pairs"] if p["base"] == "USDC")
    # no venue has a USDC/USDT pool: a state, not two raw no_route errors with mints
    assert (usdc_usdt["state"], usdc_usdt["pools"], usdc_usdt["errors"]) == (
        "no_pool", [], [])
    assert sorted(usdc_usdt["noPool"]) == ["meteora", "raydium"]
    assert (sol_usdc["state"], sol_usdc["noPool"]) == ("ok", [])
    validate_response("/api/markets", "get", status, doc)
    status, doc = await get(client, "/api/markets?pair=SOL")
    assert (status, doc["error"]["code"]) == (400, "unknown_parameter")


async def test_without_venues_the_market_routes_say_so() -> None:
    market = MarketApi(None, VenueSet(), balances=None, wallet=None)
    async for c in client_for(market):
        for url in ("/api/quote?tokenIn=SOL&tokenOut=USDC&amount=1", "/api/wallet",
                    "/api/markets"):
            status, doc = await get(c, url)
            assert (status, doc["error"]["code"]) == (503, "not_configured"), url


def test_a_failing_venue_is_unavailable_not_a_missing_pool() -> None:
    errors = (("raydium", "venue_unavailable: rpc timed out"),
              ("meteora", "no_route: no meteora pool can swap 1 of A for B"))
    assert pair_state([], errors) == {
        "state": "unavailable", "noPool": ["meteora"],
        "errors": [{"venue": "raydium", "error": "venue_unavailable: rpc timed out"}]}
