"""Readiness checks of the three things an order needs: broker, database, Solana RPC."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from ingress.metrics import IngressMetrics
from ingress.ports import OrderBus, OrderStore
from ingress.responses import json_response
from orderflow.settings import Settings

CHECK_TIMEOUT_S = 2.0

Check = Callable[[], Awaitable[None]]


async def rpc_health(session: aiohttp.ClientSession, url: str) -> None:
    """Solana ``getHealth``: the node answers ``"ok"`` only when it is not behind."""
    payload = {"jsonrpc": "2.0", "id": 1, "method": "getHealth"}
    async with session.post(url, json=payload) as resp:
        resp.raise_for_status()
        body = await resp.json(content_type=None)
    if not isinstance(body, dict) or body.get("result") != "ok":
        error = body.get("error") if isinstance(body, dict) else body
        raise RuntimeError(f"getHealth returned {error!r}")


async def _run_one(check: Check, timeout_s: float) -> dict[str, Any]:
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout_s):
            await check()
    except TimeoutError:
        return {"ok": False, "error": f"no answer within {timeout_s:g}s"}
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}".rstrip(": ")}
    return {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}


async def run_checks(checks: dict[str, Check | None], *, timeout_s: float = CHECK_TIMEOUT_S
                     ) -> tuple[bool, dict[str, Any]]:
    """Run the checks concurrently; a ``None`` check is reported as skipped (not configured)."""
    names = [n for n, c in checks.items() if c is not None]
    results = await asyncio.gather(*(_run_one(c, timeout_s) for c in checks.values()
                                     if c is not None))
    out: dict[str, Any] = {n: {"ok": True, "skipped": "not configured"}
                           for n, c in checks.items() if c is None}
    out.update(zip(names, results, strict=True))
    return all(r["ok"] for r in results), out


class HealthApi:
    """``GET /healthz`` (readiness of broker, database, RPC) and ``GET /metrics``."""

    def __init__(self, settings: Settings, bus: OrderBus, store: OrderStore,
                 metrics: IngressMetrics) -> None:
        self._rpc_url = settings.solana_rpc_url
        self._bus = bus
        self._store = store
        self._metrics = metrics
        self._session: aiohttp.ClientSession | None = None

    async def client_session(self, _app: web.Application) -> AsyncIterator[None]:
        """aiohttp cleanup context: one client session for RPC checks, closed at shutdown."""
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=CHECK_TIMEOUT_S))
        yield
        await self._session.close()

    async def healthz(self, _request: web.Request) -> web.Response:
        rpc: Check | None = None
        if self._rpc_url is not None and self._session is not None:
            rpc = functools.partial(rpc_health, self._session, self._rpc_url)
        ok, checks = await run_checks({"broker": self._bus.check,
                                       "database": self._store.check, "rpc": rpc})
        if ok:
            return json_response({"status": "ok", "checks": checks})
        failing = [name for name, result in checks.items() if not result["ok"]]
        return json_response({"status": "unavailable", "failing": failing, "checks": checks},
                             status=503)

    async def metrics(self, _request: web.Request) -> web.Response:
        return web.Response(body=self._metrics.exposition(),
                            headers={"Content-Type": self._metrics.content_type})
