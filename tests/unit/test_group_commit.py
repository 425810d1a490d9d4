"""GroupCommit: batching, per-key order, per-call errors, cancellation, shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import pytest

from pipeline.group_commit import GroupCommit


class Store:
    """A write function that records its batches; ``gate`` holds a write in flight."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[str, int]]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.poison: set[int] = set()

    async def write(self, batch: Sequence[tuple[str, int]]
                    ) -> Mapping[str, int | BaseException]:
        self.batches.append(list(batch))
        await self.gate.wait()
        if len(batch) > 1 and any(item in self.poison for _, item in batch):
            raise RuntimeError("the batch statement failed")
        return {k: ValueError(f"bad {item}") if item in self.poison else item * 10
                for k, item in batch}


async def test_first_call_goes_alone_then_calls_in_flight_coalesce() -> None:
    store = Store()
    gc: GroupCommit[int, int] = GroupCommit(store.write, name="t")
    store.gate.clear()
    first = asyncio.create_task(gc.submit("a", 1))
    await asyncio.sleep(0)  # let the drain start the first write
    rest = [asyncio.create_task(gc.submit(f"k{i}", i)) for i in range(2, 12)]
    await asyncio.sleep(0)
    assert [len(b) for b in store.batches] == [1]
    store.gate.set()
    assert await first == 10
    assert await asyncio.gather(*rest) == [i * 10 for i in range(2, 12)]
    assert [len(b) for b in store.batches] == [1, 10]
    assert (gc.batches, gc.calls) == (2, 11)


async def test_same_key_never_shares_a_batch_and_keeps_its_order() -> None:
    store = Store()
    gc: GroupCommit[int, int] = GroupCommit(store.write, name="t", max_batch=3)
    store.gate.clear()
    tasks = [asyncio.create_task(gc.submit(k, i))
             for i, k in enumerate(["x", "x", "y", "z", "w", "x"])]
    await asyncio.sleep(0)
    store.gate.set()
    assert await asyncio.gather(*tasks) == [0, 10, 20, 30, 40, 50]
    for batch in store.batches:
        keys = [k for k, _ in batch]
        assert len(keys) == len(set(keys)) and len(batch) <= 3
    xs = [item for batch in store.batches for k, item in batch if k == "x"]
    assert xs == [0, 1, 5]


async def test_a_failing_batch_is_retried_call_by_call() -> None:
    store = Store()
    store.poison = {3}
    gc: GroupCommit[int, int] = GroupCommit(store.write, name="t")
    store.gate.clear()
    tasks = [asyncio.create_task(gc.submit(f"k{i}", i)) for i in range(5)]
    await asyncio.sleep(0)
    store.gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results[:3] == [0, 10, 20] and results[4] == 40
    assert isinstance(results[3], ValueError)  # only the poisoned call sees its error


async def test_a_cancelled_caller_is_skipped_and_others_proceed() -> None:
    store = Store()
    gc: GroupCommit[int, int] = GroupCommit(store.write, name="t")
    store.gate.clear()
    first = asyncio.create_task(gc.submit("a", 1))
    await asyncio.sleep(0)
    gone = asyncio.create_task(gc.submit("b", 2))
    kept = asyncio.create_task(gc.submit("c", 3))
    await asyncio.sleep(0)
    gone.cancel()
    store.gate.set()
    assert (await first, await kept) == (10, 30)
    assert ("b", 2) not in [e for b in store.batches for e in b]


async def test_stopping_the_drain_fails_waiters_instead_of_hanging() -> None:
    store = Store()
    gc: GroupCommit[int, int] = GroupCommit(store.write, name="t")
    store.gate.clear()
    calls = [asyncio.create_task(gc.submit(f"k{i}", i)) for i in range(3)]
    await asyncio.sleep(0)
    assert gc._task is not None
    gc._task.cancel()
    for call in calls:
        with pytest.raises(RuntimeError, match="stopped before the write"):
            await asyncio.wait_for(call, 1)
