"""Hints that a sent transaction reached its commitment, pushed by the cluster's PubSub.

The batched status poll (:class:`pipeline.solana_rpc.ConfirmationWatcher`) stays the only
judge of what landed: a ``signatureNotification`` only makes the watcher ask the chain about
that signature at once instead of at its next round. So a lost, late or wrong notification
costs latency, never correctness, and while the WebSocket is down the watcher polls as it
always did. One WebSocket per worker carries every subscription (Solana's RPC nodes bound
connections per client, not subscriptions per connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import orjson

from pipeline.tasks import spawn

log = logging.getLogger(__name__)

Hint = Callable[[str], None]
Changed = Callable[[], None]


def pubsub_url(rpc_url: str) -> str:
    """The PubSub URL Solana's clients derive from an RPC URL (``@solana/web3.js``
    ``makeWebsocketUrl``): ws(s) scheme, and the port + 1 when the URL names a port."""
    parts = urlsplit(rpc_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    netloc = parts.netloc
    if parts.port is not None:
        netloc = netloc[: netloc.rindex(":")] + f":{parts.port + 1}"
    return urlunsplit(parts._replace(scheme=scheme, netloc=netloc))


class SignatureFeed(Protocol):
    """Subscriptions to signatures; see the module docstring for what a hint means."""

    @property
    def live(self) -> bool:
        """Connected: hints will come (the watcher may then poll less often)."""
        ...

    def start(self, on_hint: Hint, on_change: Changed) -> None:
        """Begin; ``on_hint(signature)`` per notification, ``on_change()`` when ``live``
        flips."""
        ...

    def watch(self, signature: str) -> None: ...

    def unwatch(self, signature: str) -> None: ...

    async def stop(self) -> None: ...


class WsSignatureFeed:
    """:class:`SignatureFeed` over one aiohttp WebSocket, reconnecting with back-off and
    subscribing again to every watched signature after each reconnect."""

    def __init__(self, url: str, *, commitment: str, max_backoff_s: float = 5.0) -> None:
        self.url = url
        self._commitment = commitment
        self._max_backoff_s = max_backoff_s
        self._watched: set[str] = set()
        self._by_request: dict[int, str] = {}  # subscribe request id → signature
        self._by_sub: dict[int, str] = {}  # subscription id → signature
        self._sub_of: dict[str, int] = {}
        self._out: asyncio.Queue[str] = asyncio.Queue()
        self._next_id = 0
        self._live = False
        self._task: asyncio.Task[None] | None = None
        self._on_hint: Hint = lambda sig: None
        self._on_change: Changed = lambda: None
        self.notifications = 0  # counted for tests and logs
        self.connects = 0

    @property
    def live(self) -> bool:
        return self._live

    def start(self, on_hint: Hint, on_change: Changed) -> None:
        self._on_hint, self._on_change = on_hint, on_change
        if self._task is None:
            self._task = spawn(self._run(), name="signature-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self._set_live(False)

    def watch(self, signature: str) -> None:
        if signature not in self._watched:
            self._watched.add(signature)
            if self._live:
                self._subscribe(signature)

    def unwatch(self, signature: str) -> None:
        self._watched.discard(signature)
        sub = self._sub_of.pop(signature, None)
        if sub is not None:
            self._by_sub.pop(sub, None)
            if self._live:
                self._request("signatureUnsubscribe", [sub])

    # ---- the connection ----

    def _request(self, method: str, params: list[Any]) -> int:
        self._next_id += 1
        self._out.put_nowait(orjson.dumps({"jsonrpc": "2.0", "id": self._next_id,
                                           "method": method, "params": params}).decode())
        return self._next_id

    def _subscribe(self, signature: str) -> None:
        rid = self._request("signatureSubscribe",
                            [signature, {"commitment": self._commitment}])
        self._by_request[rid] = signature

    def _set_live(self, live: bool) -> None:
        if live != self._live:
            self._live = live
            self._on_change()

    async def _run(self) -> None:
        delay = 0.1
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=5.0)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                try:
                    async with session.ws_connect(self.url, heartbeat=10.0,
                                                  max_msg_size=0) as ws:
                        delay = 0.1
                        await self._serve(ws)
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    log.debug("signature feed %s: %s", self.url, exc)
                if self._live:
                    log.warning("signature feed %s lost; polling until it is back", self.url)
                self._reset()
                self._set_live(False)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_backoff_s)

    def _reset(self) -> None:
        self._by_request.clear()
        self._by_sub.clear()
        self._sub_of.clear()
        self._out = asyncio.Queue()

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.connects += 1
        self._reset()
        for signature in self._watched:
            self._subscribe(signature)
        self._set_live(True)
        log.info("signature feed connected to %s (%d signatures)", self.url,
                 len(self._watched))
        writer = spawn(self._write(ws, self._out), name="signature-feed-writer")
        try:
            async for msg in ws:
                if msg.type is aiohttp.WSMsgType.TEXT:
                    self._receive(msg.data)
                elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE):
                    break
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    @staticmethod
    async def _write(ws: aiohttp.ClientWebSocketResponse, out: asyncio.Queue[str]) -> None:
        while True:
            frame = await out.get()
            try:
                await ws.send_str(frame)
            except (aiohttp.ClientError, ConnectionError):
                return  # the reader sees the close and reconnects

    def _receive(self, text: str) -> None:
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError:
            log.warning("signature feed: unreadable frame %.200s", text)
            return
        for item in doc if isinstance(doc, list) else [doc]:
            if isinstance(item, dict):
                self._frame(item)

    def _frame(self, doc: dict[str, Any]) -> None:
        if doc.get("method") == "signatureNotification":
            params = doc.get("params") or {}
            sub_id = params.get("subscription")
            sig = self._by_sub.pop(sub_id, None) if isinstance(sub_id, int) else None
            if sig is not None:  # fired once: Solana removes the subscription itself
                self._sub_of.pop(sig, None)
                self.notifications += 1
                self._on_hint(sig)
            return
        rid = doc.get("id")
        if not isinstance(rid, int) or rid not in self._by_request:
            return  # an unsubscribe's answer
        sig = self._by_request.pop(rid)
        sub = doc.get("result")
        if not isinstance(sub, int):
            log.warning("signature feed: signatureSubscribe %s refused: %s", sig,
                        doc.get("error"))
            return  # the poll still follows it
        if sig in self._watched:
            self._by_sub[sub] = sig
            self._sub_of[sig] = sub
        else:
            self._request("signatureUnsubscribe", [sub])
