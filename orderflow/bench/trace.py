"""The edge trace (``--trace``): recording proxies in front of the venue and the RPC."""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from orderflow.bench.specs import JSON_HEADERS, STAGES
from orderflow.bench.stats import summarize, union_length

if TYPE_CHECKING:
    import aiohttp
    from aiohttp import web

    from orderflow.bench.analysis import OrderTimes


class EdgeTrace:
    """Recording reverse proxies in front of the venue and the RPC (``--trace``)."""

    def __init__(self, venue_upstream: str, rpc_upstream: str) -> None:
        # venue_upstream: http://h:p (the market's root); rpc_upstream: http://h:p
        self.venue_upstream = venue_upstream.rstrip("/")
        self.rpc_upstream = rpc_upstream.rstrip("/")
        self.calls: dict[tuple[str, int], list[tuple[float, float]]] = {}  # (mint, amount)
        self.sig_calls: dict[str, list[tuple[float, float]]] = {}
        self.sent_at: dict[str, float] = {}
        self.confirmed_seen: dict[str, float] = {}
        self.requests = 0
        self._session: aiohttp.ClientSession | None = None
        self._runners: list[web.AppRunner] = []
        self.venue_url = ""
        self.rpc_url = ""

    async def start(self, host: str = "127.0.0.1") -> None:
        import aiohttp
        from aiohttp import web

        from orderflow.embedded import free_port

        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512))
        for kind in ("venue", "rpc"):
            app = web.Application(client_max_size=16 * 1024 * 1024)
            handler = self._venue if kind == "venue" else self._rpc
            app.router.add_route("*", "/{tail:.*}", handler)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            port = free_port(host)
            await web.TCPSite(runner, host, port).start()
            self._runners.append(runner)
            if kind == "venue":
                self.venue_url = f"http://{host}:{port}/swap/v1"
            else:
                self.rpc_url = f"http://{host}:{port}"

    async def stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request, upstream: str
                       ) -> tuple[bytes, float, float, bytes, web.Response]:
        from aiohttp import web

        body = await request.read()
        assert self._session is not None
        t0 = time.time()
        async with self._session.request(request.method, upstream + request.path_qs, data=body,
                                         headers=JSON_HEADERS if body else None) as resp:
            raw = await resp.read()
            status, ctype = resp.status, resp.content_type
        t1 = time.time()
        self.requests += 1
        return body, t0, t1, raw, web.Response(body=raw, status=status, content_type=ctype)

    async def _venue(self, request: web.Request) -> web.StreamResponse:
        import orjson

        body, t0, t1, _raw, response = await self._forward(request, self.venue_upstream)
        try:
            if request.path.endswith("/quote"):
                key = (request.query["inputMint"], int(request.query["amount"]))
            elif request.path.endswith("/swap"):
                q = orjson.loads(body)["quoteResponse"]
                key = (str(q["inputMint"]), int(q["inAmount"]))
            else:
                return response
        except (KeyError, ValueError, TypeError):
            return response
        self.calls.setdefault(key, []).append((t0, t1))
        return response

    async def _rpc(self, request: web.Request) -> web.StreamResponse:
        import orjson
        from solders.signature import Signature

        body, t0, t1, raw, response = await self._forward(request, self.rpc_upstream)
        try:
            req = orjson.loads(body) if body else None
            if not isinstance(req, dict):
                return response
            method, params = req.get("method"), req.get("params") or []
            if method == "sendTransaction":
                tx = base64.b64decode(params[0])
                sig = str(Signature.from_bytes(tx[1:65]))  # one-byte signature count first
                self.sig_calls.setdefault(sig, []).append((t0, t1))
                self.sent_at.setdefault(sig, t1)
            elif method == "getTransaction":
                self.sig_calls.setdefault(str(params[0]), []).append((t0, t1))
            elif method == "getSignatureStatuses":
                values = orjson.loads(raw)["result"]["value"]
                for sig, st in zip(params[0], values, strict=False):
                    if st is not None and (st.get("err") is not None or st.get(
                            "confirmationStatus") in ("confirmed", "finalized")):
                        self.confirmed_seen.setdefault(sig, t1)
        except (KeyError, ValueError, TypeError, IndexError):
            pass
        return response

    def waits(self, o: OrderTimes) -> list[tuple[float, float]] | None:
        sig = o.signature
        if sig is None or sig not in self.sent_at or sig not in self.confirmed_seen:
            return None
        intervals = list(self.calls.get((o.sub.spec.token_in, o.sub.spec.amount), []))
        intervals += self.sig_calls.get(sig, [])
        intervals.append((self.sent_at[sig], self.confirmed_seen[sig]))
        return intervals

    def overhead(self, confirmed: Sequence[OrderTimes]) -> dict[str, Any]:
        total: list[float] = []
        worker: list[float] = []
        external: list[float] = []
        per_stage: dict[str, list[float]] = {s: [] for s in STAGES}
        for o in confirmed:
            waits = self.waits(o)
            if waits is None or o.retried or o.confirmed_ts is None:
                continue
            end = o.confirmed_ts + 0.001  # ts is in whole ms: count the whole last ms
            ext_total = union_length(waits, o.sub.sent, end)
            total.append(max(0.0, (end - o.sub.sent - ext_total) * 1000))
            external.append(ext_total * 1000)
            if o.worker_pending is not None:
                ext_worker = union_length(waits, o.worker_pending, end)
                worker.append(max(0.0, (end - o.worker_pending - ext_worker) * 1000))
            m = o.marks
            bounds = [o.sub.sent, m.get("pending"), m.get("routing"), m.get("building"),
                      m.get("submitted"), m.get("confirmed")]
            for name, a, b in zip(STAGES, bounds, bounds[1:], strict=False):
                if a is not None and b is not None:
                    b += 0.001 if name == "submitted_to_confirmed" else 0.0
                    own = (b - a) - union_length(waits, a, b)
                    per_stage[name].append(max(0.0, own * 1000))
        return {
            "method": "edge trace: latency minus the union of the order's venue calls (2 "
                      "quotes, swap), sendTransaction, getTransaction and [send answered, "
                      "first status poll that saw it confirmed]; event ts have 1 ms "
                      "resolution",
            "total": summarize(total),
            "worker": summarize(worker),
            "waiting_on_venue_or_chain": summarize(external),
            "by_stage": {k: summarize(v) for k, v in per_stage.items()},
            "proxied_requests": self.requests,
        }
