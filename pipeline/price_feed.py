"""Price updates per token pair, from pool state changes (never per order).

:class:`PriceFeed` is what the trigger agent needs: for every pair it holds orders on, a
:class:`~pipeline.trigger_curves.PairView` each time a pool of that pair changes. One
read serves every order of the pair, however many.

:class:`MarketPoolsFeed` is the local market's: one ``GET /pools`` answers for every pair;
a pair is reported only when its pools' state changed (or every ``refresh_s``, since a
DLMM fee decays with time alone). It reads again at once when the chain notifies a change
of a vault (``accountSubscribe`` on the RPC's PubSub, :class:`AccountWakeups`), else
every ``poll_s``: notifications cut latency, the poll keeps it correct without them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any, Protocol

import aiohttp
import orjson

from pipeline.trigger_curves import PairView
from pipeline.venues.market_pools import MarketSnapshot, parse_pools

log = logging.getLogger(__name__)

Pair = frozenset[str]
"""The two mints of a pair, unordered: a feed reports both directions at once."""
OnView = Callable[[Pair, PairView], Awaitable[None]]


def pair_of(token_a: str, token_b: str) -> Pair:
    return frozenset((token_a, token_b))


class PriceFeed(Protocol):
    async def run(self, pairs: Callable[[], Collection[Pair]], on_view: OnView) -> None:
        """Until cancelled: ``await on_view(pair, view)`` for each pair in ``pairs()``
        whose pools changed since it was last reported (and once when first seen)."""
        ...


class AccountWakeups:
    """``accountSubscribe`` on a set of accounts over the cluster's PubSub WebSocket: any
    notification sets :attr:`changed`. Reconnects with back-off and subscribes again."""

    def __init__(self, url: str, *, commitment: str = "processed") -> None:
        self.url = url
        self._commitment = commitment
        self.changed = asyncio.Event()
        self._accounts: set[str] = set()
        self._subscribed: set[str] = set()
        self._added = asyncio.Event()
        self._next_id = 0
        self.notifications = 0
        self.confirmed = 0  # subscriptions the server confirmed on the current connection
        self.live = False

    @property
    def watching(self) -> int:
        return len(self._accounts)

    def watch(self, accounts: Collection[str]) -> None:
        if not self._accounts.issuperset(accounts):
            self._accounts.update(accounts)
            self._added.set()

    async def run(self) -> None:
        delay = 0.1
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    async with session.ws_connect(self.url, heartbeat=10.0) as ws:
                        delay, self.live = 0.1, True
                        self._subscribed.clear()
                        self.confirmed = 0
                        self._added.set()
                        writer = asyncio.ensure_future(self._subscribe(ws))
                        try:
                            await self._read(ws)
                        finally:
                            writer.cancel()
                            with contextlib.suppress(asyncio.CancelledError,
                                                     aiohttp.ClientError, ConnectionError):
                                await writer
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    log.debug("account feed %s: %r", self.url, exc)
                self.live = False
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                return
            doc = orjson.loads(msg.data)
            if not isinstance(doc, dict):
                continue
            if doc.get("method") == "accountNotification":
                self.notifications += 1
                self.changed.set()
            elif isinstance(doc.get("result"), int):
                self.confirmed += 1

    async def _subscribe(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Subscribe to every watched account not yet subscribed on this connection."""
        while True:
            await self._added.wait()
            self._added.clear()
            for account in sorted(self._accounts - self._subscribed):
                self._next_id += 1
                await ws.send_str(orjson.dumps({
                    "jsonrpc": "2.0", "id": self._next_id, "method": "accountSubscribe",
                    "params": [account, {"encoding": "base64", "commitment": self._commitment,
                                         "dataSlice": {"offset": 0, "length": 0}}]}).decode())
                self._subscribed.add(account)


async def run_feed(read: Callable[[], Awaitable[object]], *, wakeups: AccountWakeups | None,
                   poll_s: float, what: str,
                   errors: tuple[type[BaseException], ...]) -> None:
    """A feed's loop, until cancelled: ``read()``, then wait for a vault's account
    notification (``wakeups``) or ``poll_s``, whichever comes first; a failed read is
    logged and read again at the next turn."""
    wake_task = None if wakeups is None else asyncio.ensure_future(wakeups.run())
    try:
        while True:
            try:
                await read()
            except errors as exc:
                log.warning("%s: %r", what, exc)
            if wakeups is None:
                await asyncio.sleep(poll_s)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeups.changed.wait(), poll_s)
            wakeups.changed.clear()
    finally:
        if wake_task is not None:
            wake_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await wake_task


class MarketPoolsFeed:
    """:class:`PriceFeed` over the local market's API (see the module docstring)."""

    def __init__(self, venue_url: str, session: aiohttp.ClientSession, *,
                 poll_s: float = 0.25, refresh_s: float = 2.0,
                 wakeups: AccountWakeups | None = None) -> None:
        self._url = venue_url.rstrip("/") + "/pools"
        self._session = session
        self._poll_s = poll_s
        self._refresh_s = refresh_s
        self._wakeups = wakeups
        self._seen: dict[Pair, tuple[Any, ...]] = {}
        self._sent_at: dict[Pair, float] = {}
        self.reads = 0

    async def snapshot(self) -> MarketSnapshot:
        async with self._session.get(self._url, timeout=aiohttp.ClientTimeout(total=5)) as r:
            r.raise_for_status()
            doc = orjson.loads(await r.read())
        self.reads += 1
        return parse_pools(doc)

    async def run(self, pairs: Callable[[], Collection[Pair]], on_view: OnView) -> None:
        await run_feed(lambda: self.read_once(pairs(), on_view), wakeups=self._wakeups,
                       poll_s=self._poll_s, what=f"market pools feed {self._url}",
                       errors=(aiohttp.ClientError, OSError, TimeoutError, ValueError,
                               KeyError))


    async def read_once(self, wanted: Collection[Pair], on_view: OnView) -> int:
        """One read of every pool; report the wanted pairs that changed. Returns how many
        pairs were reported."""
        if not wanted:
            return 0
        snap = await self.snapshot()
        by_pair: dict[Pair, list[Any]] = {}
        for pool in snap.pools:
            by_pair.setdefault(pair_of(pool.curve.mint_a, pool.curve.mint_b), []).append(pool)
        if self._wakeups is not None:
            self._wakeups.watch([v for p in snap.pools for v in p.vaults])
        now = time.monotonic()
        reported = 0
        for pair in wanted:
            pools = by_pair.get(pair, [])
            fingerprint = tuple(sorted((p.amm_key, p.fingerprint) for p in pools))
            stale = now - self._sent_at.get(pair, float("-inf")) >= self._refresh_s
            if self._seen.get(pair) == fingerprint and not stale:
                continue
            self._seen[pair], self._sent_at[pair] = fingerprint, now
            await on_view(pair, PairView.of([p.curve for p in pools], snap.slot))
            reported += 1
        return reported
