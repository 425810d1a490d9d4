"""HTTP and JSON-RPC helpers, and the localnet faucet."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from orderflow.bench.specs import JSON_HEADERS
from orderflow.settings import Settings

if TYPE_CHECKING:
    import aiohttp


class RpcCallError(Exception):
    pass


async def rpc_call(session: aiohttp.ClientSession, url: str, method: str,
                   params: list[Any]) -> Any:
    import orjson

    body = orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    async with session.post(url, data=body, headers=JSON_HEADERS) as resp:
        doc = orjson.loads(await resp.read())
    if "error" in doc:
        raise RpcCallError(f"{method}: {doc['error']}")
    return doc["result"]


async def rpc_batch(session: aiohttp.ClientSession, url: str,
                    calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
    """A JSON-RPC batch: per call its result, or its error object."""
    import orjson

    body = orjson.dumps([{"jsonrpc": "2.0", "id": i, "method": m, "params": p}
                         for i, (m, p) in enumerate(calls)])
    async with session.post(url, data=body, headers=JSON_HEADERS) as resp:
        doc = orjson.loads(await resp.read())
    if not isinstance(doc, list):
        raise RpcCallError(f"batch: {str(doc)[:200]}")
    by_id = {r.get("id"): r.get("result", r.get("error")) for r in doc}
    return [by_id.get(i) for i in range(len(calls))]


async def post_json(session: aiohttp.ClientSession, url: str, body: dict[str, Any],
                    headers: dict[str, str] | None = None) -> Any:
    import orjson

    async with session.post(url, data=orjson.dumps(body), headers=headers or JSON_HEADERS) as resp:
        raw = await resp.read()
        if resp.status >= 400:
            raise RpcCallError(f"POST {url} answered {resp.status}: {raw[:300]!r}")
    return orjson.loads(raw)


async def wait_http(session: aiohttp.ClientSession, url: str, timeout: float, what: str,
                    alive: Callable[[], str | None] = lambda: None) -> None:
    import aiohttp

    end = time.monotonic() + timeout
    while True:
        dead = alive()
        if dead:
            raise RuntimeError(f"{what}: {dead}")
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                if resp.status == 200:
                    return
        except (aiohttp.ClientError, TimeoutError):
            pass
        if time.monotonic() > end:
            raise RuntimeError(f"{what} did not answer 200 at {url} within {timeout:.0f}s")
        await asyncio.sleep(0.1)


async def faucet(session: aiohttp.ClientSession, venue: str, owner: str, mint: str | None = None,
                 amount: int | None = None) -> Any:
    body: dict[str, Any] = {"owner": owner}
    if mint is not None:
        body["mint"] = mint
    if amount is not None:
        body["amount"] = amount
    # the faucet needs the localnet admin token: from the environment, else the file the
    # localnet wrote in the data dir (see localnet/admin.py)
    from localnet.admin import auth_headers, read_token

    token = read_token(Settings.from_env(os.environ).data_dir)
    return await post_json(session, f"{venue}/faucet", body, auth_headers(token))
