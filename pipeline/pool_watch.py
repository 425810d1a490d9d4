"""New pools of Raydium CP-Swap and Meteora DLMM, seen through the programs' account
notifications (``programSubscribe`` on the cluster's PubSub), and probed for a sniper.

The watch first lists the pools that already exist (``getProgramAccounts``, the same
filters as the venues' discovery): it records each in ``learnt`` (a worker started after a
launch still routes a sniper triggered on that pool elsewhere) and hands them to
``on_listed`` (one may have launched while this worker was down: new to a sniper accepted
before its birth, see ``pipeline/sniper.py``); then it reports every notification of a
pool that was not among them: its first notification is its creation (``created_slot``),
later ones (the pool funded, traded) are reported again with the same creation slot, so a
pair created empty and funded a moment later is seen funded. Decoding is the venue adapters' own
(``pipeline/venues/raydium_cp.py``, ``pipeline/venues/meteora_dlmm.py``). Notifications are
at ``confirmed``, the commitment the probe and the executor read at: a pool seen at
``processed`` is not yet there for them (one slot of latency for a quote that holds).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import struct
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

import aiohttp
import orjson
from solders.pubkey import Pubkey

from pipeline.accounts import AccountReader
from pipeline.model import Venue
from pipeline.sniper import NewPool, Probe
from pipeline.venues import meteora_dlmm as dlmm
from pipeline.venues import raydium_cp as ray
from pipeline.venues.learnt_pools import LEARNT, LearntPools
from pipeline.venues.onchain_pools import MeteoraDlmmPools, RaydiumCpPools
from pipeline.venues.pools import ClusterTime

log = logging.getLogger(__name__)
OnPool = Callable[[NewPool], Awaitable[None]]
OnListed = Callable[[list[NewPool]], Awaitable[None]]
TOKEN_AMOUNT_OFFSET = 64


@dataclass(frozen=True, slots=True)
class WatchedProgram:
    venue: Venue
    program: Pubkey
    data_size: int


def watched_programs(raydium_program: Pubkey) -> tuple[WatchedProgram, ...]:
    return (WatchedProgram(Venue.RAYDIUM, raydium_program, ray.POOL_STATE_LEN),
            WatchedProgram(Venue.METEORA, dlmm.PROGRAM_ID, dlmm.LB_PAIR_SIZE))


def decode_pool(venue: Venue, address: str, data: bytes, slot: int,
                created_slot: int | None = None) -> NewPool | None:
    """The pool's mints and reserve accounts, or None if the account is not a pool."""
    try:
        if venue is Venue.RAYDIUM:
            p = ray.decode_pool_state(data)
            mints = (str(p.token_0_mint), str(p.token_1_mint))
            vaults = (str(p.token_0_vault), str(p.token_1_vault))
        else:
            pair = dlmm.decode_lb_pair(data)
            mints = (str(pair.token_x_mint), str(pair.token_y_mint))
            vaults = (str(pair.reserve_x), str(pair.reserve_y))
    except ValueError:
        return None
    return NewPool(venue, address, *mints, vaults, created_slot if created_slot is not None
                   else slot, slot)


class WsPoolWatch:
    """``programSubscribe`` on each program over one WebSocket; see the module docstring."""

    def __init__(self, url: str, reader: AccountReader, programs: tuple[WatchedProgram, ...],
                 *, commitment: str = "confirmed", learnt: LearntPools = LEARNT) -> None:
        self.url = url
        self._learnt = learnt
        self._reader = reader
        self._programs = {str(p.program): p for p in programs}
        self._commitment = commitment
        self._existing: set[str] = set()
        self._created: dict[str, int] = {}  # new pool -> slot of its first notification
        self.notifications = 0
        self.subscribed = asyncio.Event()

    async def seed(self) -> list[NewPool]:
        """The pools there now (never reported to ``on_pool``), each learnt; returned as
        listed, their creation unknown (0)."""
        listed = []
        for p in self._programs.values():
            found = await self._reader.program_accounts(p.program, [{"dataSize": p.data_size}])
            self._existing.update(str(key) for key, _ in found)
            for key, data in found:
                pool = decode_pool(p.venue, str(key), data, 0)
                if pool is not None:
                    self._learnt.learn(p.program, key, Pubkey.from_string(pool.mint_a),
                                       Pubkey.from_string(pool.mint_b))
                    listed.append(replace(pool, listed=True))
        return listed

    async def run(self, on_pool: OnPool, on_listed: OnListed | None = None) -> None:
        delay = 0.1
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    async with session.ws_connect(self.url, heartbeat=10.0,
                                                  max_msg_size=0) as ws:
                        subs = await self._subscribe(ws)
                        if not self._existing and not self._created:
                            listed = await self.seed()
                            if on_listed is not None:
                                await on_listed(listed)
                        self.subscribed.set()
                        delay = 0.1
                        async for msg in ws:
                            if msg.type is not aiohttp.WSMsgType.TEXT:
                                break
                            pool = self._pool_of(orjson.loads(msg.data), subs)
                            if pool is not None:
                                await on_pool(pool)
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    log.debug("pool watch %s: %r", self.url, exc)
                self.subscribed.clear()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _subscribe(self, ws: aiohttp.ClientWebSocketResponse) -> dict[int, WatchedProgram]:
        """One ``programSubscribe`` per program; subscription id -> program."""
        by_request: dict[int, WatchedProgram] = {}
        for i, p in enumerate(self._programs.values(), start=1):
            by_request[i] = p
            await ws.send_str(orjson.dumps({
                "jsonrpc": "2.0", "id": i, "method": "programSubscribe",
                "params": [str(p.program), {"encoding": "base64", "commitment":
                                            self._commitment,
                                            "filters": [{"dataSize": p.data_size}]}]}).decode())
        subs: dict[int, WatchedProgram] = {}
        while len(subs) < len(by_request):
            reply = orjson.loads((await ws.receive(timeout=10)).data)
            if reply.get("id") in by_request and isinstance(reply.get("result"), int):
                subs[reply["result"]] = by_request[reply["id"]]
            elif "error" in reply:
                raise OSError(f"programSubscribe refused: {reply['error']}")
        return subs

    def _pool_of(self, doc: Any, subs: Mapping[int, WatchedProgram]) -> NewPool | None:
        if not isinstance(doc, dict) or doc.get("method") != "programNotification":
            return None
        params = doc.get("params") or {}
        sub_id = params.get("subscription")
        program = subs.get(sub_id) if isinstance(sub_id, int) else None
        result = params.get("result") or {}
        value = result.get("value") or {}
        address = value.get("pubkey")
        if program is None or not isinstance(address, str) or address in self._existing:
            return None
        self.notifications += 1
        slot = int((result.get("context") or {}).get("slot", 0))
        data = base64.b64decode(value["account"]["data"][0])
        created = self._created.setdefault(address, slot)
        return decode_pool(program.venue, address, data, slot, created)


class OnchainProbe:
    """:class:`~pipeline.sniper.PoolProbe` over the chain: the pool's quote-side vault and
    the venue adapter's exact quote of exactly that pool."""

    def __init__(self, reader: AccountReader, raydium_program: Pubkey) -> None:
        self._reader = reader
        self._raydium = raydium_program

    async def probe(self, pool: NewPool, token_in: str, token_out: str,
                    amount_in: int) -> Probe:
        (vault,) = await self._reader.accounts([Pubkey.from_string(pool.vault_of(token_in))])
        held = 0
        if vault is not None and len(vault) >= TOKEN_AMOUNT_OFFSET + 8:
            held = int(struct.unpack_from("<Q", vault, TOKEN_AMOUNT_OFFSET)[0])
        address = Pubkey.from_string(pool.address)
        slot, unix = await self._reader.clock()
        if pool.venue is Venue.RAYDIUM:  # CP-Swap opens a new pool a second after creation
            (data,) = await self._reader.accounts([address])
            opens = 0 if data is None else ray.decode_pool_state(data).open_time
            if opens > unix:
                return Probe(held, 0, 10_000, opens_in_s=opens - unix)
        venue = (RaydiumCpPools(self._raydium, explicit=[address]) if pool.venue is Venue.RAYDIUM
                 else MeteoraDlmmPools(explicit=[address]))
        quotes = []
        with contextlib.suppress(ValueError):
            quotes = await venue.quote_pools(self._reader, Pubkey.from_string(token_in),
                                             Pubkey.from_string(token_out), amount_in,
                                             ClusterTime(slot, unix))
        q = next((q for q in quotes if q.pool == address), None)  # not another of the pair
        if q is None:
            return Probe(held, 0, 10_000)
        return Probe(held, q.amount_out, int(Fraction(q.price_impact) * 10_000))
