"""The batching sink (sinks/base.py): commit after flush, back-pressure while the
destination is down, and one bad record never stops the others' acknowledgements
(issue 10: the old sink retried forever under a lock on any error)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from sinks.base import Ackable, Sink


@dataclass
class Msg:
    offset: int
    acked: bool = False

    def ack(self) -> bool:
        self.acked = True
        return True


class Down(Exception):
    pass


class ListSink(Sink[int]):
    """Writes ints to a list; ``poison`` records fail on their own; ``down`` = unreachable."""

    def __init__(self, *, poison: frozenset[int] = frozenset(), max_batch: int = 3) -> None:
        super().__init__(max_batch=max_batch, within_s=0.0, max_backoff_s=0.01)
        self.poison = poison
        self.down = 0  # fail this many writes as "unavailable"
        self.written: list[int] = []
        self.rejected: list[int] = []
        self.failed_writes = 0

    async def write(self, batch: Sequence[int]) -> None:
        if self.down:
            self.down -= 1
            raise Down("connection refused")
        if self.poison & set(batch):
            raise ValueError("constraint violated")
        self.written.extend(batch)

    def unavailable(self, exc: BaseException) -> bool:
        return isinstance(exc, Down)

    async def reject(self, message: Ackable, record: int, exc: BaseException) -> None:
        self.rejected.append(record)

    def observe(self, records: int, seconds: float, failed_writes: int) -> None:
        self.failed_writes += failed_writes


async def test_messages_are_acked_only_after_their_batch_is_written() -> None:
    sink = ListSink(max_batch=3)
    msgs = [Msg(i) for i in range(4)]
    for m in msgs[:2]:
        await sink.add(m, m.offset)
    assert not any(m.acked for m in msgs) and sink.written == []
    await sink.add(msgs[2], 2)  # the batch is full: flushed
    assert sink.written == [0, 1, 2] and [m.acked for m in msgs[:3]] == [True] * 3
    await sink.add(msgs[3], None)  # nothing to write, only an offset to commit
    await sink.flush_if_due()
    assert msgs[3].acked and sink.written == [0, 1, 2]


async def test_a_poison_record_is_rejected_and_the_rest_of_its_batch_acked() -> None:
    sink = ListSink(poison=frozenset({1}))
    msgs = [Msg(i) for i in range(3)]
    for m in msgs:
        await sink.add(m, m.offset)
    assert sink.written == [0, 2] and sink.rejected == [1]
    assert all(m.acked for m in msgs)


async def test_an_unavailable_destination_applies_back_pressure_not_loss() -> None:
    sink = ListSink(max_batch=2)
    sink.down = 3
    first = Msg(0)
    await sink.add(first, 0)
    adding = asyncio.create_task(sink.add(Msg(1), 1))  # fills the batch: flush retries
    await adding
    assert sink.written == [0, 1] and sink.rejected == [] and first.acked
    assert sink.failed_writes == 3
