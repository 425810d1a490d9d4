"""``ConfirmationWatcher`` (pipeline/solana_rpc.py) against an in-memory chain.

One batched ``getSignatureStatuses`` round serves every waiting signature; a signature
the chain does not know fails as expired only once the block height is past its
``lastValidBlockHeight``; the same bytes are rebroadcast until the chain has seen the
signature; an RPC outage holds the waiters until it lasts longer than ``rpc_outage_s``.

The watcher polls every 10 ms; tests wait for the chain to have been polled (an event),
never for a length of time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import pytest
from solders.transaction import VersionedTransaction

from pipeline.chain_history import SignatureEntry
from pipeline.errors import RpcUnavailable, TransactionExpired
from pipeline.reconcile import TxBalances
from pipeline.solana_rpc import MAX_STATUS_BATCH, ConfirmationWatcher, Landed
from tests.helpers import wait_until

POLL_S = 0.01
PROCESSED, CONFIRMED, FINALIZED = 0, 1, 2


class MemoryChain:
    """The watcher's side of :class:`pipeline.solana_rpc.Chain`, in memory.

    ``known`` is what ``getSignatureStatuses`` answers (slot, error, level) per signature;
    while ``down`` is set every read raises :class:`RpcUnavailable`. Every status call,
    height read and rebroadcast is recorded; ``rounds`` counts poll rounds (height reads,
    one per round, failed ones included).
    """

    def __init__(self) -> None:
        self.height = 1_000
        self.known: dict[str, tuple[int, str | None, int]] = {}
        self.down = False
        self.status_calls: list[list[str]] = []
        self.resent: list[bytes] = []
        self.rounds = 0

    def land(self, sig: str, *, level: int = CONFIRMED, slot: int = 7,
             err: str | None = None) -> None:
        self.known[sig] = (slot, err, level)

    async def polled(self, rounds: int = 1) -> None:
        """Return once ``rounds`` more poll rounds have run.

        A round starts with the height read; this double never suspends, so a round seen
        to have started has also finished by the time the test runs again.
        """
        target = self.rounds + rounds
        await wait_until(lambda: self.rounds >= target, 5, f"{rounds} more poll rounds",
                         interval=POLL_S / 5)

    async def block_height(self) -> int:
        self.rounds += 1
        if self.down:
            raise RpcUnavailable(message="getBlockHeight: connection refused")
        return self.height

    async def statuses(self, signatures: Sequence[str]) -> list[tuple[int, str | None, int] | None]:
        if self.down:
            raise RpcUnavailable(message="getSignatureStatuses: connection refused")
        self.status_calls.append(list(signatures))
        return [self.known.get(s) for s in signatures]

    async def resend(self, tx_bytes: bytes) -> None:
        if self.down:
            raise RpcUnavailable(message="sendTransaction (rebroadcast): connection refused")
        self.resent.append(tx_bytes)

    # The rest of the Chain protocol: the watcher never calls these.
    async def send(self, tx: VersionedTransaction) -> str:
        raise AssertionError("the watcher never sends a new transaction")

    async def balances(self, signature: str) -> TxBalances:
        raise AssertionError("not used by the watcher")

    async def signatures_for_address(self, address: str, *, before: str | None = None,
                                     until: str | None = None,
                                     limit: int = 1000) -> list[SignatureEntry]:
        raise AssertionError("not used by the watcher")

    async def token_balance(self, owner: str, mint: str) -> int:
        raise AssertionError("not used by the watcher")


@pytest.fixture
def chain() -> MemoryChain:
    return MemoryChain()


@asynccontextmanager
async def watching(chain: MemoryChain, *, commitment: str = "confirmed",
                   rebroadcast_s: float = 2.0, rpc_outage_s: float = 60.0,
                   start: bool = True) -> AsyncIterator[ConfirmationWatcher]:
    watcher = ConfirmationWatcher(chain, poll_s=POLL_S, commitment=commitment,
                                  rebroadcast_s=rebroadcast_s, rpc_outage_s=rpc_outage_s)
    if start:
        watcher.start()
    try:
        yield watcher
    finally:
        await watcher.stop()


def sigs(n: int, prefix: str = "sig") -> list[str]:
    return [f"{prefix}-{i:04d}" for i in range(n)]


def waiting(watcher: ConfirmationWatcher, signatures: Sequence[str], lvbh: int = 2_000,
            tx: bytes | None = None) -> list[asyncio.Task[Landed]]:
    return [asyncio.ensure_future(watcher.wait(s, lvbh, tx)) for s in signatures]


async def test_one_status_call_serves_every_waiting_signature(chain: MemoryChain) -> None:
    many = sigs(100)
    async with watching(chain, start=False) as watcher:
        waits = waiting(watcher, many)
        await wait_until(lambda: watcher.in_flight == 100, 5, "100 registered waits")
        for i, s in enumerate(many):
            chain.land(s, slot=10 + i)
        watcher.start()
        landed = await asyncio.wait_for(asyncio.gather(*waits), 5)
    assert landed == [Landed(10 + i, None) for i in range(100)]
    assert chain.status_calls == [many]  # one round, one call, every signature in it
    assert watcher.in_flight == 0


async def test_a_round_splits_into_batches_of_the_rpc_limit(chain: MemoryChain) -> None:
    many = sigs(MAX_STATUS_BATCH + 44)
    async with watching(chain, start=False) as watcher:
        waits = waiting(watcher, many)
        await wait_until(lambda: watcher.in_flight == len(many), 5, "registered waits")
        for s in many:
            chain.land(s)
        watcher.start()
        await asyncio.wait_for(asyncio.gather(*waits), 5)
    assert [len(c) for c in chain.status_calls] == [MAX_STATUS_BATCH, 44]
    assert [s for c in chain.status_calls for s in c] == many
    assert chain.rounds == 1  # one height read: both calls are one round


async def test_two_waits_on_one_signature_share_its_entry(chain: MemoryChain) -> None:
    async with watching(chain) as watcher:
        first, second = waiting(watcher, ["sig-a", "sig-a"])
        await chain.polled()
        assert watcher.in_flight == 1
        assert all(c == ["sig-a"] for c in chain.status_calls)
        chain.land("sig-a", slot=42)
        assert await asyncio.wait_for(first, 5) == await asyncio.wait_for(second, 5) \
            == Landed(42, None)


async def test_resolves_at_the_wanted_commitment_not_before(chain: MemoryChain) -> None:
    async with watching(chain, commitment="finalized") as watcher:
        (task,) = waiting(watcher, ["sig-a"])
        chain.land("sig-a", level=PROCESSED)
        await chain.polled(2)
        chain.land("sig-a", level=CONFIRMED)
        await chain.polled(2)
        assert not task.done()  # seen, confirmed, but not yet finalized
        chain.land("sig-a", level=FINALIZED, slot=9)
        assert await asyncio.wait_for(task, 5) == Landed(9, None)


async def test_a_failed_transaction_has_landed_whatever_its_level(chain: MemoryChain) -> None:
    async with watching(chain) as watcher:
        (task,) = waiting(watcher, ["sig-a"])
        chain.land("sig-a", level=PROCESSED, slot=5,
                   err="InstructionError(2, Custom(6001))")
        assert await asyncio.wait_for(task, 5) == Landed(5, "InstructionError(2, Custom(6001))")


async def test_an_unseen_signature_expires_only_past_its_last_valid_height(
        chain: MemoryChain) -> None:
    chain.height = 100
    async with watching(chain) as watcher:
        (task,) = waiting(watcher, ["sig-a"], lvbh=105)
        await chain.polled(2)
        chain.height = 105  # the blockhash is still valid at its last valid height
        await chain.polled(2)
        assert not task.done()
        chain.height = 106
        with pytest.raises(TransactionExpired) as raised:
            await asyncio.wait_for(task, 5)
    assert "105" in raised.value.message
    assert watcher.in_flight == 0


async def test_a_seen_signature_does_not_expire(chain: MemoryChain) -> None:
    """Once the chain knows the signature the transaction has landed: the height no longer
    matters, only the commitment."""
    chain.height = 100
    async with watching(chain) as watcher:
        (task,) = waiting(watcher, ["sig-a"], lvbh=105)
        chain.land("sig-a", level=PROCESSED)
        await chain.polled(2)
        chain.height = 500
        await chain.polled(2)
        assert not task.done()
        chain.land("sig-a", level=CONFIRMED, slot=11)
        assert await asyncio.wait_for(task, 5) == Landed(11, None)


async def test_the_same_bytes_are_rebroadcast_until_the_signature_is_seen(
        chain: MemoryChain) -> None:
    async with watching(chain, rebroadcast_s=POLL_S) as watcher:
        (task,) = waiting(watcher, ["sig-a"], tx=b"signed-tx-a")
        (silent,) = waiting(watcher, ["sig-b"])  # no bytes: nothing to rebroadcast
        await wait_until(lambda: len(chain.resent) >= 3, 5, "three rebroadcasts",
                         interval=POLL_S / 5)
        assert set(chain.resent) == {b"signed-tx-a"}
        chain.land("sig-a", level=PROCESSED)  # seen, not yet confirmed
        await chain.polled(2)
        sent = len(chain.resent)
        await chain.polled(5)  # each of these rounds was due a rebroadcast
        assert len(chain.resent) == sent
        assert not task.done()
        chain.land("sig-a", level=CONFIRMED)
        await asyncio.wait_for(task, 5)
        silent.cancel()
    assert set(chain.resent) == {b"signed-tx-a"}


async def test_rebroadcast_waits_for_its_interval(chain: MemoryChain) -> None:
    async with watching(chain, rebroadcast_s=60.0) as watcher:
        (task,) = waiting(watcher, ["sig-a"], tx=b"signed-tx-a")
        await chain.polled(5)
        assert chain.resent == []  # sent once by the executor; not due again for 60 s
        task.cancel()


async def test_a_short_outage_holds_the_waiters(chain: MemoryChain) -> None:
    async with watching(chain, rpc_outage_s=60.0) as watcher:
        tasks = waiting(watcher, ["sig-a", "sig-b"], lvbh=1_005)
        chain.down = True
        await chain.polled(5)
        assert not any(t.done() for t in tasks)
        chain.height = 2_000  # while it was down the blockhash of sig-b expired
        chain.land("sig-a", slot=3)
        chain.down = False
        assert await asyncio.wait_for(tasks[0], 5) == Landed(3, None)
        with pytest.raises(TransactionExpired):
            await asyncio.wait_for(tasks[1], 5)


async def test_an_outage_longer_than_the_bound_fails_the_waiters_retriably(
        chain: MemoryChain) -> None:
    async with watching(chain, rpc_outage_s=POLL_S * 3) as watcher:
        chain.down = True
        tasks = waiting(watcher, ["sig-a", "sig-b"])
        results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)
        assert all(isinstance(r, RpcUnavailable) for r in results), results
        assert all(r.retriable for r in results if isinstance(r, RpcUnavailable))
        assert chain.rounds >= 3  # it kept asking while the outage lasted
        # the loop survives: once the RPC answers, a new wait resolves
        chain.down = False
        chain.land("sig-c", slot=8)
        (later,) = waiting(watcher, ["sig-c"])
        assert await asyncio.wait_for(later, 5) == Landed(8, None)


async def test_an_outage_bound_counts_from_the_last_answer(chain: MemoryChain) -> None:
    """Short outages separated by answers never add up to one long outage."""
    async with watching(chain, rpc_outage_s=POLL_S * 20) as watcher:
        (task,) = waiting(watcher, ["sig-a"])
        for _ in range(10):  # 20 rounds down in all, never more than 2 in a row
            chain.down = True
            await chain.polled(2)
            chain.down = False
            await chain.polled(2)
        assert not task.done()
        chain.land("sig-a")
        await asyncio.wait_for(task, 5)


async def test_stop_fails_the_waiters_retriably(chain: MemoryChain) -> None:
    async with watching(chain) as watcher:
        tasks = waiting(watcher, ["sig-a", "sig-b"])
        await chain.polled()
        await watcher.stop()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    assert [type(r) for r in results] == [RpcUnavailable, RpcUnavailable]
    assert watcher.in_flight == 0

