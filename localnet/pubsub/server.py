"""The PubSub WebSocket: JSON-RPC 2.0 over one WebSocket per client, as Agave serves it on the
RPC port + 1 (the port ``@solana/web3.js`` and solana-py derive from the RPC URL).

Each connection writes through its own bounded queue, so a chain listener (which runs inside
the slot clock or ``sendTransaction``) never waits on a slow client: a client that lets
``MAX_QUEUED`` notifications pile up is disconnected (close code 1013), as a real node drops
a subscriber that cannot keep up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import orjson
from aiohttp import WSMsgType, web

from localnet.blocks import blocks_of
from localnet.chain import Chain
from localnet.pubsub.hub import Hub
from localnet.pubsub.subscriptions import (
    KINDS,
    Subscription,
    account_subscription,
    logs_subscription,
    program_subscription,
    root_subscription,
    signature_subscription,
    slot_subscription,
)
from localnet.rpc.params import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    RpcError,
    invalid_params,
    param_arg,
    param_int,
)
from localnet.txerrors import Json

log = logging.getLogger(__name__)

MAX_QUEUED = 10_000
HUB_KEY = web.AppKey("pubsub_hub", Hub)

Parser = Callable[["Connection", list[Json]], Subscription]
_PARSERS: dict[str, Parser] = {
    "accountSubscribe": account_subscription,
    "programSubscribe": program_subscription,
    "logsSubscribe": logs_subscription,
    "signatureSubscribe": signature_subscription,
    "slotSubscribe": slot_subscription,
    "rootSubscribe": root_subscription,
}
_UNSUBSCRIBE = {f"{kind}Unsubscribe": kind for kind in KINDS}


class Connection:
    """One client: its outgoing queue, drained by :meth:`write_loop`."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.queue: asyncio.Queue[str] = asyncio.Queue(MAX_QUEUED)
        self.overflowed = False

    def send(self, payload: Json) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(orjson.dumps(payload).decode())
        except asyncio.QueueFull:
            self.overflowed = True
            log.warning("pubsub client too slow: %d notifications queued, disconnecting",
                        MAX_QUEUED)
            asyncio.get_running_loop().create_task(
                self.ws.close(code=1013, message=b"notification queue overflow"))

    def notify(self, method: str, subscription: int, result: Json) -> None:
        self.send({"jsonrpc": "2.0", "method": method,
                   "params": {"result": result, "subscription": subscription}})

    async def write_loop(self) -> None:
        while True:
            text = await self.queue.get()
            await self.ws.send_str(text)


class PubSub:
    """The JSON-RPC methods of the WebSocket, over one :class:`Hub`."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=1 << 20)
        await ws.prepare(request)
        conn = Connection(ws)
        writer = asyncio.create_task(conn.write_loop(), name="pubsub-writer")
        try:
            async for msg in ws:
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    self.on_message(conn, msg.data)
        finally:
            self.hub.drop(conn)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        return ws

    def on_message(self, conn: Connection, data: str | bytes) -> None:
        """One frame: a call or a batch; answers are queued before any notification it causes."""
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            conn.send(_error(None, RpcError(PARSE_ERROR, "Parse error")))
            return
        calls = payload if isinstance(payload, list) else [payload]
        if not calls:
            conn.send(_error(None, RpcError(INVALID_REQUEST, "Invalid request")))
            return
        answers: list[Json] = []
        created: list[Subscription] = []
        for call in calls:
            answer = self.call(conn, call, created)
            if answer is not None:
                answers.append(answer)
        if answers:
            conn.send(answers if isinstance(payload, list) else answers[0])
        for sub in created:
            self.hub.catch_up(sub)

    def call(self, conn: Connection, req: Json, created: list[Subscription]) -> Json:
        if not (isinstance(req, dict) and req.get("jsonrpc") == "2.0"
                and isinstance(req.get("method"), str)):
            rid = req.get("id") if isinstance(req, dict) else None
            return _error(rid, RpcError(INVALID_REQUEST, "Invalid request"))
        rid = req.get("id")
        method = str(req["method"])
        params = req.get("params")
        try:
            if params is None:
                params = []
            if not isinstance(params, list):
                raise invalid_params("Invalid params: expected an array of parameters.")
            result = self._run(conn, method, params, created)
        except RpcError as e:
            return None if "id" not in req else _error(rid, e)
        except Exception:
            log.exception("pubsub %s failed", method)
            return _error(rid, RpcError(INTERNAL_ERROR, "Internal error"))
        return None if "id" not in req else {"jsonrpc": "2.0", "result": result, "id": rid}

    def _run(self, conn: Connection, method: str, params: list[Json],
             created: list[Subscription]) -> Json:
        parser = _PARSERS.get(method)
        if parser is not None:
            sub = parser(conn, params)
            created.append(sub)
            return self.hub.add(sub)
        kind = _UNSUBSCRIBE.get(method)
        if kind is None:
            raise RpcError(METHOD_NOT_FOUND, "Method not found")
        sub_id = param_int(param_arg(params, 0, "subscription"), "subscription")
        if not self.hub.remove(conn, kind, sub_id):
            raise invalid_params("Invalid subscription id.")
        return True


def _error(rid: Json, err: RpcError) -> dict[str, Json]:
    return {"jsonrpc": "2.0", "error": err.to_json(), "id": rid}


def build_pubsub_app(chain: Chain) -> web.Application:
    """An aiohttp app serving Solana's PubSub WebSocket at ``GET /`` for ``chain``.

    It registers listeners on ``chain`` (removed at cleanup); the chain's clock is run by
    its owner, as for :func:`localnet.rpc.build_rpc_app`.
    """
    app = web.Application()
    blocks_of(chain)  # the RPC's getBlock then knows every block a notification named
    hub = Hub(chain)
    app[HUB_KEY] = hub
    app.router.add_get("/", PubSub(hub).handle)

    async def close_hub(app: web.Application) -> None:
        hub.close()

    app.on_cleanup.append(close_hub)
    return app
