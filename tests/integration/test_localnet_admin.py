"""The localnet's admin endpoints (``/admin/faults``, ``/admin/clock``) and the market's
faucet refuse what a foreign web page can send: a cross-origin ``text/plain`` POST, any
request without the bearer token, and any peer that is not on loopback.

Both servers run in-process on real sockets; requests are real HTTP from aiohttp.
"""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp import web
from solders.keypair import Keypair

from localnet.chain import Chain
from localnet.market import Market, build_market_app
from localnet.rpc import build_rpc_app
from tests.helpers import free_port

EVIL = "https://evil.example"
FAULTS_BODY: dict[str, object] = {"errors": [{"kind": "http503", "rate": 1.0}]}


@dataclass
class Servers:
    chain: Chain
    rpc_app: web.Application
    venue_app: web.Application
    rpc: str
    venue: str
    http: aiohttp.ClientSession


async def _serve(app: web.Application, host: str = "127.0.0.1") -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port(host)
    await web.TCPSite(runner, host, port).start()
    return runner, f"http://{host}:{port}"


@pytest.fixture
async def servers() -> AsyncIterator[Servers]:
    """Both apps built as a server entrypoint that sets no token would build them."""
    chain = Chain(slot_ms=50)
    market = Market(chain, seed=2, drift_bps=0)
    rpc_app, venue_app = build_rpc_app(chain), build_market_app(market, run_drift=False)
    rpc_runner, rpc = await _serve(rpc_app)
    venue_runner, venue = await _serve(venue_app)
    http = aiohttp.ClientSession()
    try:
        yield Servers(chain, rpc_app, venue_app, rpc, venue, http)
    finally:
        await http.close()
        await venue_runner.cleanup()
        await rpc_runner.cleanup()
        market.close()


def _targets(s: Servers, owner: str) -> list[tuple[str, dict[str, object]]]:
    return [
        (f"{s.rpc}/admin/faults", FAULTS_BODY),
        (f"{s.venue}/admin/faults", FAULTS_BODY),
        (f"{s.rpc}/admin/clock", {"advance": 5}),
        (f"{s.venue}/swap/v1/faucet", {"owner": owner}),
    ]


async def _post(s: Servers, url: str, body: bytes, headers: dict[str, str]) -> int:
    async with s.http.post(url, data=body, headers=headers) as resp:
        await resp.read()
        return resp.status


async def _nothing_changed(s: Servers, owner: Keypair, slot: int) -> None:
    assert s.chain.slot == slot
    assert s.chain.get_balance(owner.pubkey()) == 0
    async with s.http.get(f"{s.rpc}/health") as resp:  # no fault was switched on
        assert resp.status == 200
    async with s.http.get(f"{s.venue}/swap/v1/pools") as resp:
        assert resp.status == 200


async def test_cross_origin_text_plain_post_is_refused(servers: Servers) -> None:
    """What a page on another site can send without a CORS preflight: refused, no effect."""
    owner = Keypair()
    slot = servers.chain.slot
    headers = {"Content-Type": "text/plain", "Origin": EVIL}
    for url, body in _targets(servers, str(owner.pubkey())):
        status = await _post(servers, url, orjson.dumps(body), headers)
        assert status in (401, 415), (url, status)
    await _nothing_changed(servers, owner, slot)


async def test_json_post_without_token_is_401(servers: Servers) -> None:
    owner = Keypair()
    slot = servers.chain.slot
    for url, body in _targets(servers, str(owner.pubkey())):
        for headers in ({"Content-Type": "application/json"},
                        {"Content-Type": "application/json", "Authorization": "Bearer wrong"},
                        {"Content-Type": "application/json", "Authorization": "Basic eDp5"}):
            assert await _post(servers, url, orjson.dumps(body), headers) == 401, (url, headers)
    for url in (f"{servers.rpc}/admin/faults", f"{servers.rpc}/admin/clock"):
        async with servers.http.get(url) as resp:
            assert resp.status == 401
    async with servers.http.delete(f"{servers.venue}/admin/faults") as resp:
        assert resp.status == 401
    await _nothing_changed(servers, owner, slot)


async def test_with_the_token_admin_and_faucet_work(servers: Servers) -> None:
    from localnet.admin import ADMIN_TOKEN_KEY, auth_headers

    owner = Keypair()
    rpc_headers = auth_headers(servers.rpc_app[ADMIN_TOKEN_KEY])
    venue_headers = auth_headers(servers.venue_app[ADMIN_TOKEN_KEY])
    # the token is right but the body is text/plain: still refused
    text = {**venue_headers, "Content-Type": "text/plain"}
    assert await _post(servers, f"{servers.venue}/swap/v1/faucet",
                       orjson.dumps({"owner": str(owner.pubkey())}), text) == 415
    slot = servers.chain.slot
    async with servers.http.post(f"{servers.rpc}/admin/clock", json={"advance": 3},
                                 headers=rpc_headers) as resp:
        assert resp.status == 200
        assert (await resp.json())["slot"] == slot + 3
    async with servers.http.post(f"{servers.venue}/swap/v1/faucet",
                                 json={"owner": str(owner.pubkey())},
                                 headers=venue_headers) as resp:
        assert resp.status == 200, await resp.text()
    assert servers.chain.get_balance(owner.pubkey()) == 100 * 10**9
    async with servers.http.post(f"{servers.rpc}/admin/faults", json=FAULTS_BODY,
                                 headers=rpc_headers) as resp:
        assert resp.status == 200
    async with servers.http.post(servers.rpc, json={"jsonrpc": "2.0", "id": 1,
                                                    "method": "getSlot"}) as resp:
        assert resp.status == 503  # the fault is on
    async with servers.http.delete(f"{servers.rpc}/admin/faults",
                                   headers=rpc_headers) as resp:
        assert resp.status == 200
    # the token of one app is not the other's when each generated its own
    assert rpc_headers != venue_headers


def _non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("10.255.255.255", 1))  # no packet is sent: picks the route's source
            address: str = sock.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


async def test_admin_answers_loopback_peers_only() -> None:
    from localnet.admin import auth_headers

    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to connect from")
    chain = Chain(slot_ms=50)
    runner, base = await _serve(build_rpc_app(chain, admin_token="t0ken"), address)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/admin/clock", json={"advance": 1},
                                 headers=auth_headers("t0ken")) as resp:
                assert resp.status == 403
            async with http.get(f"{base}/health") as resp:  # the rest still answers
                assert resp.status == 200
    finally:
        await runner.cleanup()
    assert chain.slot == 0


def test_generated_token_file_is_private_and_read_back(tmp_path: Path) -> None:
    from localnet.admin import TOKEN_ENV, read_token, resolve_token

    token, path = resolve_token(None, tmp_path)
    assert path is not None and path.parent == tmp_path
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_text() == token and len(token) >= 32
    assert read_token(tmp_path, env={}) == token
    assert read_token(tmp_path, env={TOKEN_ENV: "configured"}) == "configured"
    again, _ = resolve_token(None, tmp_path)  # a restart makes a new one
    assert again != token and read_token(tmp_path, env={}) == again
    assert resolve_token("configured", tmp_path) == ("configured", None)
