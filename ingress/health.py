"""Readiness: an order accepted now will move.

``/healthz`` checks the broker, the database, the Solana RPC and that workers are there
to execute (role ``executor``) and persist (role ``sinks``): at least one non-stopping
worker of each role whose heartbeat is at most :data:`WORKER_STALE_S` old. The answer
is cached for :data:`CACHE_S` (load balancers and dashboards poll it; concurrent polls
share one round of checks).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from ingress.metrics import IngressMetrics
from ingress.ports import OrderBus, OrderStore, WorkerRegistry
from ingress.responses import json_response

CHECK_TIMEOUT_S = 2.0
CACHE_S = 1.0
WORKER_STALE_S = 10.0
REQUIRED_ROLES = ("executor", "sinks")

Check = Callable[[], Awaitable[dict[str, Any] | None]]


async def rpc_health(session: aiohttp.ClientSession, url: str) -> None:
    """Solana ``getHealth``: the node answers ``"ok"`` only when it is not behind."""
    payload = {"jsonrpc": "2.0", "id": 1, "method": "getHealth"}
    async with session.post(url, json=payload) as resp:
        resp.raise_for_status()
        body = await resp.json(content_type=None)
    if not isinstance(body, dict) or body.get("result") != "ok":
        error = body.get("error") if isinstance(body, dict) else body
        raise RuntimeError(f"getHealth returned {error!r}")


class NotReady(Exception):
    """A check that answered, with details, but says no."""

    def __init__(self, message: str, details: dict[str, Any]) -> None:
        super().__init__(message)
        self.details = details


async def workers_present(registry: WorkerRegistry) -> dict[str, Any]:
    """Live workers by role; :class:`NotReady` naming the roles nobody serves."""
    beats = await registry.beats()
    live = {role: sorted(b.worker_id for b in beats if role in b.roles and not b.stopping
                         and b.age_s <= WORKER_STALE_S) for role in REQUIRED_ROLES}
    missing = [role for role, ids in live.items() if not ids]
    if missing:
        raise NotReady(f"no live {' or '.join(missing)} worker (a non-stopping heartbeat "
                       f"within {WORKER_STALE_S:g}s)", live)
    return live


async def _run_one(check: Check, timeout_s: float) -> dict[str, Any]:
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout_s):
            details = await check()
    except TimeoutError:
        return {"ok": False, "error": f"no answer within {timeout_s:g}s"}
    except NotReady as exc:
        return {"ok": False, "error": str(exc), **exc.details}
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}".rstrip(": ")}
    return {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1), **(details or {})}


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
    """``GET /healthz`` (readiness of broker, database, RPC, workers) and ``GET /metrics``.

    ``rpc_url`` None skips the RPC check, ``workers`` None (tests of other routes) the
    worker check: each is reported as not configured.
    """

    def __init__(self, rpc_url: str | None, bus: OrderBus, store: OrderStore,
                 metrics: IngressMetrics, workers: WorkerRegistry | None = None) -> None:
        self._rpc_url = rpc_url
        self._bus = bus
        self._store = store
        self._workers = workers
        self._metrics = metrics
        self._session: aiohttp.ClientSession | None = None
        self._answer: asyncio.Future[tuple[int, dict[str, Any]]] | None = None
        self._answered_at = 0.0

    async def client_session(self, _app: web.Application) -> AsyncIterator[None]:
        """aiohttp cleanup context: one client session for RPC checks, closed at shutdown."""
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=CHECK_TIMEOUT_S))
        yield
        await self._session.close()

    async def healthz(self, _request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        answer = self._answer
        if answer is None or (answer.done() and loop.time() - self._answered_at > CACHE_S):
            self._answered_at = loop.time()
            answer = self._answer = asyncio.ensure_future(self._check())
        status, body = await asyncio.shield(answer)
        return json_response(body, status=status)

    async def _check(self) -> tuple[int, dict[str, Any]]:
        rpc: Check | None = None
        if self._rpc_url is not None and self._session is not None:
            rpc = functools.partial(rpc_health, self._session, self._rpc_url)
        workers: Check | None = None
        if self._workers is not None:
            workers = functools.partial(workers_present, self._workers)
        ok, checks = await run_checks({"broker": self._bus.check,
                                       "database": self._store.check, "rpc": rpc,
                                       "workers": workers})
        self._answered_at = asyncio.get_running_loop().time()
        if ok:
            return 200, {"status": "ok", "checks": checks}
        failing = [name for name, result in checks.items() if not result["ok"]]
        return 503, {"status": "unavailable", "failing": failing, "checks": checks}

    async def metrics(self, _request: web.Request) -> web.Response:
        return web.Response(body=self._metrics.exposition(),
                            headers={"Content-Type": self._metrics.content_type})
