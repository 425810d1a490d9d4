"""The Jupiter venue client (pipeline/venues/jupiter.py) over real HTTP.

An in-process aiohttp server plays Jupiter: it answers with the recorded response shapes
under tests/fixtures/jupiter/ (each file says where its shape comes from) and records what
the client asked. The chain reads (lookup tables, blockhash) are a small double.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import BaseTestServer, TestServer
from solders.hash import Hash
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from pipeline import errors
from pipeline.errors import (
    ConfigError,
    OrderflowError,
    SlippageExceeded,
    TransactionFailed,
    VenueUnavailable,
)
from pipeline.model import Quote, Venue
from pipeline.tokens import SOL, USDC
from pipeline.txbuild import COMPUTE_BUDGET_PROGRAM, MEMO_COMPUTE_UNITS, MEMO_PROGRAM
from pipeline.venues import DEX_LABELS, JupiterConfig, JupiterVenues
from pipeline.venues.jupiter import api_version

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "jupiter"
USER = "AKnL4NNf3DGWZJS6cPknBuEGnVsV4A4m5tgebLHaRSZ9"  # the fixtures' wallet
MEMO = "orderflow:5f0c2a8e-1b7d-4c3e-9a6f-0d2e4b8c1a3f"
BLOCKHASH = Hash.new_unique()
KEY = "sk-test-0123456789"


def fixture(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return doc


def quote_body(label: str = "Raydium CP") -> dict[str, Any]:
    body: dict[str, Any] = fixture("quote_v1.json")["response"]
    body["routePlan"][0]["swapInfo"]["label"] = label
    return body


def table_bytes(addresses: Sequence[str]) -> bytes:
    """An address lookup table account as the program stores it (56-byte meta, then keys)."""
    meta = struct.pack("<IQQBB", 1, 2**64 - 1, 0, 0, 0).ljust(56, b"\0")
    return meta + b"".join(bytes(Pubkey.from_string(a)) for a in addresses)


@dataclass
class Answer:
    status: int = 200
    body: Any = None  # JSON-encoded unless bytes/str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeJupiter:
    answers: dict[str, Answer] = field(default_factory=lambda: {
        "/quote": Answer(body=quote_body()),
        "/swap-instructions": Answer(body=fixture("swap_instructions_v1.json")["response"]),
        "/build": Answer(body=fixture("build_v2.json")["response"]),
    })
    requests: list[tuple[str, str, dict[str, str], dict[str, str], Any]] = field(
        default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.requests.append((request.method, request.path, dict(request.query),
                              dict(request.headers), orjson.loads(raw) if raw else None))
        answer = self.answers["/" + request.path.rsplit("/", 1)[1]]
        body = answer.body
        if not isinstance(body, bytes | str):
            body = orjson.dumps(body)
        return web.Response(status=answer.status, body=body, headers=answer.headers,
                            content_type="application/json")


class Chain:
    """The chain reads double: lookup tables by address, a fixed blockhash."""

    def __init__(self) -> None:
        tables = fixture("swap_instructions_v1.json")["lookupTables"]
        self.tables = {Pubkey.from_string(k): table_bytes(v) for k, v in tables.items()}
        self.asked: list[list[Pubkey]] = []

    async def accounts(self, keys: Sequence[Pubkey]) -> list[bytes | None]:
        self.asked.append(list(keys))
        return [self.tables.get(k) for k in keys]

    async def latest_blockhash(self) -> tuple[Hash, int]:
        return BLOCKHASH, 4_242


@dataclass
class Client:
    venues: JupiterVenues
    server: FakeJupiter
    chain: Chain
    base: str


@pytest.fixture
async def server() -> AsyncIterator[tuple[BaseTestServer, FakeJupiter]]:
    fake = FakeJupiter()
    app = web.Application()
    for version in ("v1", "v2"):
        app.router.add_get(f"/swap/{version}/quote", fake.handle)
        app.router.add_get(f"/swap/{version}/build", fake.handle)
        app.router.add_post(f"/swap/{version}/swap-instructions", fake.handle)
    async with TestServer(app) as srv:
        yield srv, fake


@pytest.fixture
async def client(server: tuple[BaseTestServer, FakeJupiter]) -> AsyncIterator[Client]:
    srv, fake = server
    async with aiohttp.ClientSession() as session:
        base = str(srv.make_url("/swap/v1/"))  # a trailing slash is tolerated
        chain = Chain()
        yield Client(JupiterVenues(JupiterConfig(base, api_key=KEY), session, chain,
                                   taker=USER), fake, chain, base)


async def a_quote(c: Client, venue: Venue = Venue.RAYDIUM) -> Quote:
    return await c.venues.quote(venue, SOL.mint, USDC.mint, 100_000_000, 50)


def decoded(tx_bytes: bytes) -> tuple[MessageV0, list[Pubkey]]:
    tx = VersionedTransaction.from_bytes(tx_bytes)
    message = tx.message
    assert isinstance(message, MessageV0)
    return message, [message.account_keys[ix.program_id_index] for ix in message.instructions]


def test_the_api_version_comes_from_the_base_url() -> None:
    assert api_version("https://api.jup.ag/swap/v2") == "v2"
    assert api_version("https://api.jup.ag/swap/v2/") == "v2"
    assert api_version("https://api.jup.ag/swap/v1") == "v1"
    assert api_version("https://lite-api.jup.ag/swap/v1") == "v1"
    assert api_version("http://127.0.0.1:8090/swap/v1") == "v1"  # the local market
    assert api_version("https://my-node.example/jupiter") == "v1"  # self-hosted v6


def test_the_api_key_never_shows_in_the_config_repr() -> None:
    config = JupiterConfig("https://api.jup.ag/swap/v1", api_key=KEY)
    assert KEY not in repr(config) and "api.jup.ag" in repr(config)
    with pytest.raises(ConfigError):
        JupiterConfig("https://api.jup.ag/swap/v1", priority_level="urgent")


async def test_a_v1_quote_asks_one_dex_with_the_key_and_keeps_the_answer(client: Client
                                                                         ) -> None:
    for venue in (Venue.RAYDIUM, Venue.METEORA):
        client.server.answers["/quote"] = Answer(body=quote_body(DEX_LABELS[venue]))
        q = await a_quote(client, venue)
        method, path, query, headers, _ = client.server.requests[-1]
        assert (method, path) == ("GET", "/swap/v1/quote")
        assert query == {"inputMint": SOL.mint, "outputMint": USDC.mint, "amount": "100000000",
                         "slippageBps": "50", "swapMode": "ExactIn",
                         "dexes": DEX_LABELS[venue], "onlyDirectRoutes": "true"}
        assert headers["x-api-key"] == KEY
        assert (q.venue, q.in_amount, q.out_amount, q.fee_amount) == (
            venue, 100_000_000, 21_653_037, 21_000)
        assert (q.fee_mint, q.context_slot, q.price_impact_pct) == (
            SOL.mint, 123456789, "0.0012345")
        assert q.raw == client.server.answers["/quote"].body  # sent back verbatim


async def test_no_key_configured_sends_no_key_header(server: tuple[BaseTestServer, FakeJupiter]
                                                     ) -> None:
    srv, fake = server
    async with aiohttp.ClientSession() as session:
        venues = JupiterVenues(JupiterConfig(str(srv.make_url("/swap/v1"))), session, Chain())
        await venues.quote(Venue.RAYDIUM, SOL.mint, USDC.mint, 1, 50)
    assert "x-api-key" not in {k.lower() for k in fake.requests[-1][3]}


async def test_a_route_through_another_dex_is_refused(client: Client) -> None:
    client.server.answers["/quote"] = Answer(body=fixture("quote_v1.json")["response"])
    with pytest.raises(VenueUnavailable, match="Raydium CLMM"):
        await a_quote(client)  # asked dexes=Raydium CP, got a Raydium CLMM route


async def test_a_malformed_quote_is_the_venue_unavailable(client: Client) -> None:
    good = quote_body()
    for body in ({k: v for k, v in good.items() if k != "outAmount"},
                 {**good, "routePlan": []}, {**good, "inAmount": "1.5"},
                 {**good, "routePlan": [{"swapInfo": {"label": "Raydium CP",
                                                      "feeAmount": None}}]}):
        client.server.answers["/quote"] = Answer(body=body)
        with pytest.raises(VenueUnavailable, match="malformed quote"):
            await a_quote(client)


async def test_v1_swap_asks_instructions_and_builds_the_transaction_with_our_memo(
        client: Client) -> None:
    q = await a_quote(client)
    swap = await client.venues.swap_transaction(q, USER, memo=MEMO)
    method, path, _, headers, payload = client.server.requests[-1]
    assert (method, path, headers["x-api-key"]) == ("POST", "/swap/v1/swap-instructions", KEY)
    assert payload == {
        "quoteResponse": q.raw, "userPublicKey": USER, "wrapAndUnwrapSol": True,
        "dynamicComputeUnitLimit": True, "asLegacyTransaction": False,
        "prioritizationFeeLamports": {"priorityLevelWithMaxLamports": {
            "priorityLevel": "veryHigh", "maxLamports": 1_000_000}}}
    assert swap.last_valid_block_height == 4_242  # our RPC's blockhash, not the venue's
    message, programs = decoded(swap.tx_bytes)
    assert message.recent_blockhash == BLOCKHASH
    assert [str(p) for p in programs] == [
        str(COMPUTE_BUDGET_PROGRAM), str(COMPUTE_BUDGET_PROGRAM),
        "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL",
        "ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL", errors.JUPITER_V6,
        "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA", str(MEMO_PROGRAM)]
    limit = bytes(message.instructions[0].data)
    assert limit[0] == 2 and int.from_bytes(limit[1:], "little") == 200_000 + MEMO_COMPUTE_UNITS
    assert bytes(message.instructions[-1].data) == MEMO.encode()
    assert message.header.num_required_signatures == 1 and str(message.account_keys[0]) == USER
    # the route's lookup table was read once and compresses four of its accounts
    table = Pubkey.from_string(next(iter(fixture("swap_instructions_v1.json")["lookupTables"])))
    assert client.chain.asked == [[table]]
    [lookup] = message.address_table_lookups
    assert lookup.account_key == table
    assert len(lookup.writable_indexes) + len(lookup.readonly_indexes) == 4


async def test_priority_settings_are_sent_as_configured(server: tuple[BaseTestServer, FakeJupiter]
                                                        ) -> None:
    srv, fake = server
    config = JupiterConfig(str(srv.make_url("/swap/v1")), priority_level="medium",
                           max_priority_lamports=50_000, dynamic_compute_unit_limit=False)
    async with aiohttp.ClientSession() as session:
        venues = JupiterVenues(config, session, Chain())
        q = await venues.quote(Venue.RAYDIUM, SOL.mint, USDC.mint, 1, 50)
        await venues.swap_transaction(q, USER, memo=MEMO)
    payload = fake.requests[-1][4]
    assert payload["dynamicComputeUnitLimit"] is False
    assert payload["prioritizationFeeLamports"] == {"priorityLevelWithMaxLamports": {
        "priorityLevel": "medium", "maxLamports": 50_000}}


async def test_v2_one_build_is_the_quote_and_the_instructions(
        server: tuple[BaseTestServer, FakeJupiter]) -> None:
    srv, fake = server
    chain = Chain()
    async with aiohttp.ClientSession() as session:
        venues = JupiterVenues(JupiterConfig(str(srv.make_url("/swap/v2")), api_key=KEY),
                               session, chain, taker=USER)
        q = await venues.quote(Venue.METEORA, SOL.mint, USDC.mint, 100_000_000, 50)
        method, path, query, headers, _ = fake.requests[-1]
        assert (method, path, headers["x-api-key"]) == ("GET", "/swap/v2/build", KEY)
        assert query == {"inputMint": SOL.mint, "outputMint": USDC.mint, "amount": "100000000",
                         "slippageBps": "50", "dexes": "Meteora DLMM", "taker": USER}
        assert (q.in_amount, q.out_amount) == (100_000_000, 21_653_037)
        swap = await venues.swap_transaction(q, USER, memo=MEMO)
        with pytest.raises(ConfigError):  # a build is for its taker only
            await venues.swap_transaction(q, "11111111111111111111111111111111", memo=MEMO)
    assert len(fake.requests) == 1 and chain.asked == []  # no second call, tables inline
    message, programs = decoded(swap.tx_bytes)
    assert programs[-1] == MEMO_PROGRAM and message.recent_blockhash == BLOCKHASH
    assert len(message.address_table_lookups) == 1


async def test_v2_needs_the_wallet_up_front(server: tuple[BaseTestServer, FakeJupiter]) -> None:
    srv, _ = server
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ConfigError, match="taker"):
            JupiterVenues(JupiterConfig(str(srv.make_url("/swap/v2"))), session, Chain())


async def test_instructions_that_need_another_signer_are_refused(client: Client) -> None:
    body = fixture("swap_instructions_v1.json")["response"]
    body["swapInstruction"]["accounts"][2]["isSigner"] = True
    client.server.answers["/swap-instructions"] = Answer(body=body)
    with pytest.raises(TransactionFailed) as raised:
        await client.venues.swap_transaction(await a_quote(client), USER, memo=MEMO)
    assert raised.value.code == "unexpected_signer"


async def test_a_failed_simulation_by_jupiter_is_the_error_it_would_land_with(
        client: Client) -> None:
    body = fixture("swap_instructions_v1.json")["response"]
    body["simulationError"] = {"error": "custom program error: 0x1771", "errorCode": ""}
    client.server.answers["/swap-instructions"] = Answer(body=body)
    with pytest.raises(SlippageExceeded):
        await client.venues.swap_transaction(await a_quote(client), USER, memo=MEMO)


async def test_a_missing_lookup_table_is_transient(client: Client) -> None:
    client.chain.tables.clear()
    with pytest.raises(VenueUnavailable, match="lookup table"):
        await client.venues.swap_transaction(await a_quote(client), USER, memo=MEMO)


async def test_malformed_instructions_are_the_venue_unavailable(client: Client) -> None:
    q = await a_quote(client)
    good = fixture("swap_instructions_v1.json")["response"]
    for body in ({k: v for k, v in good.items() if k != "swapInstruction"},
                 {**good, "setupInstructions": [{"programId": "x", "accounts": [],
                                                 "data": ""}]},
                 {**good, "swapInstruction": {**good["swapInstruction"], "data": "!!"}}):
        client.server.answers["/swap-instructions"] = Answer(body=body)
        with pytest.raises(VenueUnavailable, match="malformed"):
            await client.venues.swap_transaction(q, USER, memo=MEMO)


@pytest.mark.parametrize("case", fixture("errors.json")["cases"],
                         ids=lambda c: f"{c['status']}-{c['code']}")
async def test_recorded_errors_map_through_the_one_table(client: Client,
                                                         case: dict[str, Any]) -> None:
    client.server.answers["/swap-instructions"] = Answer(case["status"], case["body"])
    q = await a_quote(client)
    with pytest.raises(OrderflowError) as raised:
        await client.venues.swap_transaction(q, USER, memo=MEMO)
    err = raised.value
    assert (type(err).__name__, err.code, err.retriable) == (
        case["kind"], case["code"], case["retriable"])
    assert KEY not in str(err)  # the answer is quoted, never our request


async def test_a_rate_limit_pauses_the_client_for_retry_after(client: Client) -> None:
    client.server.answers["/quote"] = Answer(429, {"message": "Too Many Requests"},
                                             {"Retry-After": "30"})
    with pytest.raises(VenueUnavailable) as raised:
        await a_quote(client)
    assert raised.value.code == "venue_rate_limited"
    asked = len(client.server.requests)
    client.server.answers["/quote"] = Answer(body=quote_body())
    with pytest.raises(VenueUnavailable, match="retry after") as again:
        await a_quote(client)
    assert again.value.code == "venue_rate_limited"
    assert len(client.server.requests) == asked  # the API was not asked again


async def test_an_unreachable_venue_is_transient() -> None:
    async with aiohttp.ClientSession() as session:
        server = TestServer(web.Application())
        await server.start_server()
        base = str(server.make_url("/swap/v1"))
        await server.close()  # nothing listens there any more
        venues = JupiterVenues(JupiterConfig(base), session, Chain())
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
        venues = JupiterVenues(JupiterConfig(str(server.make_url("")), timeout_s=0.2),
                               session, Chain())
        try:
            with pytest.raises(VenueUnavailable) as raised:
                await venues.quote(Venue.RAYDIUM, SOL.mint, USDC.mint, 1, 50)
        finally:
            release.set()
    assert (raised.value.code, raised.value.retriable) == ("venue_timeout", True)


def test_the_table_resolves_codes_then_statuses() -> None:
    api = errors.JUPITER_API
    assert type(errors.venue_api_error(api, 400, "6001", "x")) is SlippageExceeded
    assert errors.venue_api_error(api, 418, None, "x").code == "no_route"  # a 4xx
    assert errors.venue_api_error(api, 504, "COULD_NOT_FIND_ANY_ROUTE", "x").retriable
    assert errors.venue_api_error(api, 302, None, "x").retriable  # not an answer
