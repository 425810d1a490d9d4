"""API keys on the real PostgreSQL: the store (hashed, one live name, revocation, which key
submitted which order) and ``orderflow keys`` against it, then a real ingress listening
beyond loopback that requires them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from ingress.api_keys import new_key, parse_token, verify
from ingress.pg_api_keys import PostgresApiKeyStore
from pipeline.errors import InvalidOrder
from tests.integration.test_ingress_kafka import schema_dsn, topics

pytestmark = pytest.mark.integration
topics = topics  # the module-scoped fixture, shared
SCHEMA = "api_keys_it"


@pytest.fixture(scope="module")
async def dsn(database_url: str) -> str:
    return await schema_dsn(database_url, SCHEMA)


@pytest.fixture
async def store(dsn: str) -> AsyncIterator[PostgresApiKeyStore]:
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        dsn, min_size=1, max_size=2, open=False, kwargs={"autocommit": True})
    await pool.open(wait=True, timeout=10)
    try:
        yield PostgresApiKeyStore(pool)
    finally:
        await pool.close()


async def test_keys_are_stored_hashed_found_listed_and_revoked(
        store: PostgresApiKeyStore, dsn: str) -> None:
    new = new_key("it-bot", "trade", rate_per_s=5, burst=7)
    await store.create(new)
    key_id, secret = parse_token(new.token) or ("", "")
    stored = await store.find(key_id)
    assert stored is not None and verify(stored, secret) == stored.key
    assert (stored.key.name, stored.key.scope, stored.key.rate_per_s, stored.key.burst) == (
        "it-bot", "trade", 5.0, 7)
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        row = await (await conn.execute(
            "SELECT secret_hash::text || name || scope FROM api_keys WHERE key_id = %s",
            (key_id,))).fetchone()
    assert row is not None and secret not in row[0] and new.token not in row[0]
    with pytest.raises(InvalidOrder) as info:
        await store.create(new_key("it-bot", "read"))
    assert info.value.code == "key_name_taken"
    assert "it-bot" in [k.name for k in await store.list_keys()]
    revoked = await store.revoke("it-bot")
    assert revoked is not None and revoked.revoked_at is not None
    assert verify(await store.find(key_id), secret) is None
    assert await store.revoke("it-bot") is None
    await store.create(new_key("it-bot", "read"))  # the name is free again


async def test_a_key_owns_the_orders_it_submitted(store: PostgresApiKeyStore) -> None:
    a, b = new_key("owner-a", "trade"), new_key("owner-b", "trade")
    await store.create(a)
    await store.create(b)
    await store.record_order("order-owned-1", a.key.key_id)
    await store.record_order("order-owned-1", b.key.key_id)  # the first owner stays
    await store.record_order("order-owned-2", b.key.key_id)
    ids = ["order-owned-1", "order-owned-2", "order-other"]
    assert await store.owned(a.key.key_id, ids) == {"order-owned-1"}
    assert await store.owned(b.key.key_id, ids) == {"order-owned-2"}


def test_the_keys_command_creates_lists_and_revokes(dsn: str, tmp_path: Any) -> None:
    env = {**os.environ, "ORDERFLOW_DATABASE_URL": dsn, "ORDERFLOW_DATA_DIR": str(tmp_path)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "orderflow.cli", "keys", *args],
                              env=env, capture_output=True, text=True, timeout=60)

    created = run("create", "--name", "cli-bot", "--scope", "read")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert parse_token(token) is not None
    listed = run("list")
    assert "cli-bot" in listed.stdout and token not in listed.stdout
    assert run("revoke", "cli-bot").returncode == 0
    assert "revoked" in run("list").stdout
    missing = run("revoke", "no-such-key")
    assert missing.returncode == 1 and "no live key" in missing.stdout


async def test_an_ingress_beyond_loopback_requires_a_key(dsn: str, topics: str,
                                                         store: PostgresApiKeyStore) -> None:
    from ingress.app import running_ingress
    from ingress.config import IngressConfig
    from tests.helpers import free_port

    new = new_key("it-remote", "read", rate_per_s=0.5, burst=1)
    await store.create(new)
    port = free_port()
    config = IngressConfig(bootstrap=topics, database_url=dsn, host="0.0.0.0", port=port)
    async with running_ingress(config), aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{port}/api/orders"
        async with http.get(url) as resp:
            assert resp.status == 401
        auth = {"Authorization": f"Bearer {new.token}"}
        async with http.get(url, headers=auth) as resp:
            assert resp.status == 200
        async with http.get(url, headers=auth) as resp:
            assert resp.status == 429 and resp.headers["Retry-After"] == "2"
        await _websocket_with_the_key_as_a_subprotocol(http, port, store)


async def _websocket_with_the_key_as_a_subprotocol(http: aiohttp.ClientSession, port: int,
                                                   store: PostgresApiKeyStore) -> None:
    """The page's way (a browser sets no header on a WebSocket): ``orderflow`` and
    ``bearer.<key>`` offered, ``orderflow`` answered; the key follows only its own orders,
    looked up in the real api_key_orders."""
    page, other = new_key("it-page", "read"), new_key("it-other", "trade")
    await store.create(page)
    await store.create(other)
    await store.record_order("order-it-page-1", page.key.key_id)
    await store.record_order("order-it-other-1", other.key.key_id)
    ws_url = f"http://127.0.0.1:{port}/api/orders/ws"
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await http.ws_connect(ws_url)
    assert info.value.status == 401
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await http.ws_connect(f"{ws_url}?access_token={page.token}")  # never from the URL
    assert info.value.status == 401
    async with http.ws_connect(ws_url, protocols=("orderflow", f"bearer.{page.token}")) as ws:
        assert ws.protocol == "orderflow"
        subscribed = await ws.receive_json(timeout=10)
        assert (subscribed["type"], subscribed["all"]) == ("subscribed", True)
        await ws.send_json({"action": "subscribe", "orderId": "order-it-other-1"})
        refused = await ws.receive_json(timeout=10)
        assert (refused["type"], refused["error"]["code"]) == ("error", "order_not_found")
        await ws.send_json({"action": "subscribe", "orderId": "order-it-page-1"})
        assert (await ws.receive_json(timeout=10))["type"] == "subscribed"


async def test_order_filters_and_ownership_in_sql(dsn: str, store: PostgresApiKeyStore) -> None:
    """The same filters the unit tests check on the double, run as SQL on the real table."""
    from datetime import UTC, datetime, timedelta

    from ingress.order_filters import OrderFilter
    from ingress.pg_store import PostgresOrderStore
    from pipeline.tokens import SOL, USDC, USDT

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [("sqlf-1", "confirmed", "raydium", SOL.mint, USDC.mint, "market", 0),
            ("sqlf-2", "failed", "meteora", SOL.mint, USDC.mint, "market", 1),
            ("sqlf-3", "open", None, USDT.mint, USDC.mint, "limit", 2)]
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        for oid, status, venue, tin, tout, kind, sec in rows:
            await conn.execute(
                "INSERT INTO orders (order_id, status, rank, source, token_in, token_out,"
                " amount_in, slippage_bps, venue, submitted_at, updated_at, order_type)"
                " VALUES (%s, %s, 1, 'http', %s, %s, 1000, 50, %s, %s, now(), %s)",
                (oid, status, tin, tout, venue, t0 + timedelta(seconds=sec), kind))
    owner = new_key("sql-owner", "read")
    await store.create(owner)
    await store.record_order("sqlf-2", owner.key.key_id)
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        dsn, min_size=1, max_size=1, open=False, kwargs={"autocommit": True})
    await pool.open(wait=True, timeout=10)
    try:
        orders = PostgresOrderStore(pool)

        async def ids(**f: Any) -> list[str]:
            found = await orders.list_orders(10, None, OrderFilter(**f))
            return [r.order_id for r in found if r.order_id.startswith("sqlf-")]

        assert await ids(statuses=("failed", "open")) == ["sqlf-3", "sqlf-2"]
        assert await ids(types=("limit",)) == ["sqlf-3"]
        assert await ids(venue="raydium") == ["sqlf-1"]
        assert await ids(token=USDT.mint) == ["sqlf-3"]
        assert await ids(submitted_from=t0 + timedelta(seconds=1),
                         submitted_to=t0 + timedelta(seconds=2)) == ["sqlf-2"]
        assert await ids(owner=owner.key.key_id) == ["sqlf-2"]
        assert await ids(owner=owner.key.key_id, statuses=("confirmed",)) == []
        where = OrderFilter(token=SOL.mint)  # a filter and a cursor: the parameters' order
        first = next(r for r in await orders.list_orders(50, None, where)
                 if r.order_id.startswith("sqlf-"))
        after = await orders.list_orders(10, first.cursor, where)
        assert [r.order_id for r in after if r.order_id.startswith("sqlf-")] == ["sqlf-1"]
    finally:
        await pool.close()
