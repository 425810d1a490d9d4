"""Bearer API keys, scopes and per-key rate limits (ingress/auth.py) on the real routes,
with an in-memory key store double."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import WSServerHandshakeError
from aiohttp.test_utils import TestClient, TestServer

from ingress.api_keys import ApiKey, NewKey, StoredKey, new_key, parse_token, verify
from ingress.app import RUNNER_OPTIONS, build_app
from ingress.auth import Auth, TokenBucket, is_loopback
from ingress.hub import StatusHub
from pipeline.errors import InvalidOrder
from tests.unit.test_ingress_fakes import FakeBus, FakeStore, ingress_config

ORDER = {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "1.5"}


class MemoryKeys:
    """:class:`ingress.api_keys.ApiKeyStore` in memory."""

    def __init__(self) -> None:
        self.rows: dict[str, StoredKey] = {}
        self.orders: dict[str, str] = {}
        self.finds = 0

    async def find(self, key_id: str) -> StoredKey | None:
        self.finds += 1
        return self.rows.get(key_id)

    async def create(self, new: NewKey) -> None:
        if any(r.key.name == new.key.name and r.key.revoked_at is None
               for r in self.rows.values()):
            raise InvalidOrder("key_name_taken", "taken", field="name")
        self.rows[new.key.key_id] = StoredKey(new.key, new.secret_hash)

    async def list_keys(self) -> list[ApiKey]:
        return [r.key for r in self.rows.values()]

    async def revoke(self, name_or_id: str) -> ApiKey | None:
        for key_id, row in self.rows.items():
            if name_or_id in (key_id, row.key.name) and row.key.revoked_at is None:
                key = dataclasses.replace(row.key, revoked_at=datetime.now(UTC))
                self.rows[key_id] = StoredKey(key, row.secret_hash)
                return key
        return None

    async def record_order(self, order_id: str, key_id: str) -> None:
        self.orders.setdefault(order_id, key_id)

    async def owned(self, key_id: str, order_ids: Sequence[str]) -> set[str]:
        return {o for o in order_ids if self.orders.get(o) == key_id}


async def make_key(store: MemoryKeys, name: str, scope: str, **limits: Any) -> str:
    new = new_key(name, scope, **limits)
    await store.create(new)
    return new.token


@pytest.fixture
def store() -> MemoryKeys:
    return MemoryKeys()


async def serve(store: MemoryKeys, host: str) -> AsyncIterator[TestClient[Any, Any]]:
    app = build_app(ingress_config(host=host), producer=FakeBus(), store=FakeStore(),
                    hub=StatusHub(), api_keys=store)
    server = TestServer(app)
    await server.start_server(**RUNNER_OPTIONS)
    async with TestClient(server) as client:
        yield client


@pytest.fixture
async def public(store: MemoryKeys) -> AsyncIterator[TestClient[Any, Any]]:
    """An ingress configured to listen beyond loopback: keys are required."""
    async for client in serve(store, "0.0.0.0"):
        yield client


@pytest.fixture
async def local(store: MemoryKeys) -> AsyncIterator[TestClient[Any, Any]]:
    async for client in serve(store, "127.0.0.1"):
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_tokens_are_shown_once_and_stored_as_a_hash() -> None:
    new = new_key("bot1", "trade")
    parsed = parse_token(new.token)
    assert parsed is not None and parsed[0] == new.key.key_id
    assert parsed[1].encode() not in new.secret_hash and len(new.secret_hash) == 32
    stored = StoredKey(new.key, new.secret_hash)
    assert verify(stored, parsed[1]) == new.key
    assert verify(stored, parsed[1][:-1] + ("A" if parsed[1][-1] != "A" else "B")) is None
    assert verify(None, parsed[1]) is None
    revoked = StoredKey(dataclasses.replace(new.key, revoked_at=datetime.now(UTC)),
                        new.secret_hash)
    assert verify(revoked, parsed[1]) is None
    assert new_key("bot1", "trade").token != new.token


@pytest.mark.parametrize(("name", "scope", "code"), [
    ("", "read", "invalid_key_name"), ("bad name", "read", "invalid_key_name"),
    ("bot", "admin", "invalid_scope")])
def test_bad_names_and_scopes_are_refused(name: str, scope: str, code: str) -> None:
    with pytest.raises(InvalidOrder) as info:
        new_key(name, scope)
    assert info.value.code == code


def test_loopback_hosts() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "::1", "localhost", "127.0.0.2"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "10.0.0.5", "example.com"]))


def test_token_bucket_refills_at_its_rate() -> None:
    bucket = TokenBucket(2.0, 3, 3.0, 0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)
    assert bucket.take(0.5) == 0.0  # one token back after 1/rate
    assert bucket.take(10.0) == 0.0 and bucket.tokens == pytest.approx(2.0)  # capped at burst


async def test_beyond_loopback_a_key_is_required(public: TestClient[Any, Any],
                                                 store: MemoryKeys) -> None:
    async with public.get("/api/orders") as resp:
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"] == 'Bearer realm="orderflow"'
        assert (await resp.json())["error"]["code"] == "unauthorized"
    token = await make_key(store, "reader", "read")
    async with public.get("/api/orders", headers=bearer(token)) as resp:
        assert resp.status == 200
    for path in ("/healthz", "/api/openapi.json"):  # not API calls
        async with public.get(path) as resp:
            assert resp.status in (200, 503), path


async def test_on_loopback_a_key_is_optional_but_checked_when_sent(
        local: TestClient[Any, Any], store: MemoryKeys) -> None:
    async with local.get("/api/orders") as resp:
        assert resp.status == 200
    token = await make_key(store, "reader", "read")
    async with local.get("/api/orders", headers=bearer(token[:-2] + "xx")) as resp:
        assert (resp.status, (await resp.json())["error"]["code"]) == (401, "invalid_api_key")
    async with local.get("/api/orders", headers={"Authorization": "Basic dTpw"}) as resp:
        assert (resp.status, (await resp.json())["error"]["code"]) == (
            401, "invalid_authorization")


async def test_a_read_key_cannot_submit_and_a_trade_key_can(public: TestClient[Any, Any],
                                                            store: MemoryKeys) -> None:
    reader = await make_key(store, "reader", "read")
    trader = await make_key(store, "trader", "trade")
    async with public.post("/api/orders/execute", json=ORDER, headers=bearer(reader)) as resp:
        assert (resp.status, (await resp.json())["error"]["code"]) == (
            403, "insufficient_scope")
    async with public.post("/api/orders/execute", json=ORDER, headers=bearer(trader)) as resp:
        assert resp.status == 202


async def test_each_key_has_its_own_token_bucket(public: TestClient[Any, Any],
                                                 store: MemoryKeys) -> None:
    slow = await make_key(store, "slow", "read", rate_per_s=0.2, burst=2)
    other = await make_key(store, "other", "read")
    statuses = []
    for _ in range(3):
        async with public.get("/api/orders", headers=bearer(slow)) as resp:
            statuses.append(resp.status)
            last = resp
            body = await resp.json()
    assert statuses == [200, 200, 429]
    assert body["error"]["code"] == "rate_limited"
    assert last.headers["Retry-After"] == "5"  # 1 token at 0.2/s
    async with public.get("/api/orders", headers=bearer(other)) as resp:
        assert resp.status == 200


async def test_a_revoked_key_stops_working_once_the_cache_expires(store: MemoryKeys) -> None:
    now = [0.0]
    auth = Auth(store, required=True, clock=lambda: now[0])
    token = await make_key(store, "bot", "trade")
    assert isinstance(await auth.authenticate(f"Bearer {token}"), ApiKey)
    await store.revoke("bot")
    assert isinstance(await auth.authenticate(f"Bearer {token}"), ApiKey)  # cached
    assert store.finds == 1
    now[0] = 6.0
    refused = await auth.authenticate(f"Bearer {token}")
    assert not isinstance(refused, ApiKey) and refused is not None and refused.status == 401


async def test_websockets_authenticate_with_the_same_header(public: TestClient[Any, Any],
                                                            store: MemoryKeys) -> None:
    with pytest.raises(WSServerHandshakeError) as info:
        await public.ws_connect("/api/orders/ws")
    assert info.value.status == 401
    reader = await make_key(store, "reader", "read")
    ws = await public.ws_connect("/api/orders/ws", headers=bearer(reader))
    await ws.close()
    with pytest.raises(WSServerHandshakeError) as info:  # submitting needs 'trade'
        await public.ws_connect("/api/orders/execute", headers=bearer(reader))
    assert info.value.status == 403
