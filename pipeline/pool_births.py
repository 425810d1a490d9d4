"""When a pool the watch found at its start was born: its creation slot and that slot's
block time (:class:`~pipeline.sniper.PoolBirths`), asked of the cluster.

A pool the watch saw live needs none of this (its first notification is its birth). One
that was already there when the watch started (its worker was down or restarting when it
launched) is new to a sniper only if it was born after the order was accepted, and the
order knows its acceptance as a time (``submittedAt``), not a slot: so the birth is the
block time of the creation slot, whole seconds as the cluster keeps them, in ms. The
creation slot is the local market's ``createdSlot`` when it says, else the slot of the
pool account's oldest signature (the transaction that created it). A pool with more
history than ``max_pages`` pages is old, and a birth the cluster cannot tell is unknown:
None either way, and the pool is never new (a missed snipe, never a wrong buy).
"""

from __future__ import annotations

from typing import Protocol

from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.core import RPCException

from pipeline.chain_history import PAGE, SignatureSource
from pipeline.errors import TransientError
from pipeline.sniper import NewPool

UNAVAILABLE = (TimeoutError, RPCException, SolanaRpcException, OSError)


class BlockTimes(Protocol):
    async def block_time(self, slot: int) -> int | None:
        """``getBlockTime``: the slot's unix time in seconds, None if the cluster has none."""
        ...


class RpcBlockTimes:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def block_time(self, slot: int) -> int | None:
        try:
            return (await self._client.get_block_time(slot)).value
        except UNAVAILABLE:
            return None


class ChainBirths:
    def __init__(self, signatures: SignatureSource, times: BlockTimes, *, page: int = PAGE,
                 max_pages: int = 3) -> None:
        self._signatures = signatures
        self._times = times
        self._page = page
        self._max_pages = max_pages

    async def birth(self, pool: NewPool) -> tuple[int, int] | None:
        try:
            slot, seconds = pool.created_slot, None
            if slot <= 0:
                found = await self._oldest(pool.address)
                if found is None:
                    return None
                slot, seconds = found
            if seconds is None:
                seconds = await self._times.block_time(slot)
        except (TransientError, *UNAVAILABLE):
            return None
        return None if seconds is None else (slot, seconds * 1000)

    async def _oldest(self, address: str) -> tuple[int, int | None] | None:
        """(slot, block time) of the address's oldest signature, None if there is none
        or more than ``max_pages`` pages of them."""
        before: str | None = None
        oldest = None
        for _ in range(self._max_pages):
            page = await self._signatures.signatures_for_address(address, before=before,
                                                                 limit=self._page)
            if page:
                oldest = page[-1]
                before = oldest.signature
            if len(page) < self._page:
                return None if oldest is None else (oldest.slot, oldest.block_time)
        return None
