"""The broker, proven before we build on it: no record goes missing across a rebalance.

Runs on the session's real broker (embedded Tansu unless ORDERFLOW_TEST_KAFKA_BOOTSTRAP
points at a real Kafka): a 4-partition topic fed by a batching aiokafka producer while

1. a consumer group of two aiokafka consumers loses one member mid-stream and gets it
   back (two rebalances), and
2. a real faust-streaming worker process (``tests/faust_probe_app.py``) is stopped with
   SIGTERM and later killed with SIGKILL mid-stream, a new worker taking over each time.

Each asserts that every produced key was processed at least once and that the group's
committed offsets reach the end of every partition, the end being taken from the
producer's own RecordMetadata (Tansu's ListOffsets(latest) is low after multi-record
batches; see ``orderflow/embedded/broker.py``).

What we found about faust 0.15.3 on Tansu (the settings that matter):

* ``broker_session_timeout``: Tansu holds every JoinGroup round for about half the
  session timeout (never under ~1 s), so faust's 60 s default costs 30 s per
  rebalance, including the first start. 2 s here (1 s rounds); a killed worker is
  evicted after the session timeout. Real Kafka refuses sessions under
  ``group.min.session.timeout.ms`` (6 s by default), hence 6 s against an external
  broker.
* ``broker_heartbeat_interval``: well under the session timeout (0.5 s): members learn
  of a rebalance from their next heartbeat.
* ``broker_rebalance_timeout``: accepted but does not shorten Tansu's join window.
* ``processing_guarantee="at_least_once"`` (the default): ``exactly_once`` needs
  transactions and the idempotent producer, which Tansu does not have
  (InitProducerId fails).
* ``topic_allow_declare=False`` with topics created beforehand, and
  ``topic_disable_leader=True``: nothing depends on broker-side auto-creation (which
  Tansu does, with one partition).
* ``broker_commit_interval``: how stale committed offsets may be; a killed worker's
  successor re-processes at most that much (duplicates, never gaps).
* ``datadir``: faust writes ``./<app id>-data`` into the working directory unless told.
* ``web_enabled=False`` and ``store="memory://"``: nothing else to start.
* On SIGTERM the worker leaves the group and commits; shutdown takes about 1 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from orderflow.embedded import EmbeddedProcess, spawn_child
from pipeline.topic_admin import create_topics
from tests.helpers import wait_until

pytestmark = pytest.mark.integration

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 4


@dataclass(frozen=True)
class Spec:
    name: str
    partitions: int


@pytest.fixture(scope="module")
def session_timeout_s() -> float:
    # Real Kafka rejects sessions under group.min.session.timeout.ms (6 s by default).
    return 6.0 if os.environ.get("ORDERFLOW_TEST_KAFKA_BOOTSTRAP") else 2.0


async def _new_topic(broker: str, prefix: str) -> str:
    topic = f"{prefix}-{uuid.uuid4().hex[:10]}"
    await create_topics(broker, [Spec(topic, PARTITIONS)])
    admin = AIOKafkaAdminClient(bootstrap_servers=broker)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    assert sorted(p["partition"] for p in described["partitions"]) == list(range(PARTITIONS))
    return topic


class StreamProducer:
    """Produces keyed records in linger batches over all partitions until told to stop."""

    def __init__(self, broker: str, topic: str, *, per_tick: int = 20, tick_s: float = 0.02):
        self.broker = broker
        self.topic = topic
        self.per_tick = per_tick
        self.tick_s = tick_s
        self.keys: list[str] = []
        self.ends: dict[int, int] = {}
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> StreamProducer:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.broker, linger_ms=20, acks="all")
        await producer.start()
        futures: list[asyncio.Future[Any]] = []
        try:
            for n in itertools.count():
                if self._stop.is_set():
                    break
                for i in range(self.per_tick):
                    key = f"k{n * self.per_tick + i:06d}"
                    futures.append(await producer.send(self.topic, b"v", key=key.encode()))
                    self.keys.append(key)
                await asyncio.sleep(self.tick_s)  # the stream's pace, not a wait for state
            for md in await asyncio.gather(*futures):
                self.ends[md.partition] = max(self.ends.get(md.partition, 0), md.offset + 1)
        finally:
            await producer.stop()

    async def finish(self) -> dict[int, int]:
        """Stop producing; wait for every ack; the end offset of each partition."""
        self._stop.set()
        assert self._task is not None
        await self._task
        assert len(self.ends) == PARTITIONS, f"records landed on {sorted(self.ends)} only"
        return dict(self.ends)


async def committed_offsets(broker: str, group: str, topic: str) -> dict[int, int | None]:
    """The group's committed offsets, read through a consumer (not the admin client)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=broker, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        return {p: await consumer.committed(TopicPartition(topic, p)) for p in range(PARTITIONS)}
    finally:
        await consumer.stop()


class Progress:
    """A falsy answer for ``wait_until`` that says what is still missing."""

    def __init__(self, detail: str):
        self.detail = detail

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return self.detail


async def _caught_up(
    broker: str,
    group: str,
    topic: str,
    produced: set[str],
    seen: Iterable[str],
    ends: dict[int, int],
) -> bool | Progress:
    missing = sorted(produced - set(seen))
    committed = await committed_offsets(broker, group, topic)
    if not missing and all(committed[p] == ends[p] for p in range(PARTITIONS)):
        return True
    return Progress(
        f"{len(missing)} keys never seen {missing[:5]}; committed {committed} vs end {ends}"
    )


# --------------------------------------------------------------------------- aiokafka group


@dataclass
class Member(ConsumerRebalanceListener):
    """One aiokafka group member: consume, record keys, commit after each batch."""

    name: str
    broker: str
    topic: str
    group: str
    session_timeout_s: float
    seen: Counter[str]
    consumed: int = 0
    assignments: list[set[int]] = field(default_factory=list)
    consumer: AIOKafkaConsumer | None = None
    task: asyncio.Task[None] | None = None
    stopping: bool = False

    def assigned(self) -> set[int]:
        return self.assignments[-1] if self.assignments else set()

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.assignments.append(set())

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.assignments.append({tp.partition for tp in assigned})

    async def start(self) -> Member:
        session_ms = int(self.session_timeout_s * 1000)
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.broker,
            group_id=self.group,
            client_id=self.name,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=session_ms,
            heartbeat_interval_ms=300,
            rebalance_timeout_ms=session_ms,
            max_poll_records=200,
        )
        self.consumer.subscribe([self.topic], listener=self)
        await self.consumer.start()
        self.task = asyncio.create_task(self._loop())
        return self

    async def _loop(self) -> None:
        assert self.consumer is not None
        while not self.stopping:
            batch = await self.consumer.getmany(timeout_ms=100)
            for records in batch.values():
                for record in records:
                    assert record.key is not None
                    self.seen[record.key.decode()] += 1
                    self.consumed += 1
            if batch:
                try:
                    await self.consumer.commit()
                except KafkaError as exc:  # a rebalance in progress: the next owner re-reads
                    log.info("%s: commit failed (%s); records will be redelivered", self.name, exc)

    async def stop(self) -> None:
        self.stopping = True
        if self.task is not None:
            await self.task
        if self.consumer is not None:
            await self.consumer.stop()  # sends LeaveGroup


@pytest.fixture
async def members() -> AsyncIterator[list[Member]]:
    started: list[Member] = []
    yield started
    for m in started:
        if not m.stopping:
            m.stopping = True
            if m.task is not None:
                m.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, KafkaError):
                    await m.task
            if m.consumer is not None:
                await m.consumer.stop()


@pytest.mark.timeout(90)
async def test_consumer_group_loses_and_regains_a_member_mid_stream_without_gaps(
    broker: str, session_timeout_s: float, members: list[Member]
) -> None:
    topic = await _new_topic(broker, "group")
    group = f"group-{uuid.uuid4().hex[:8]}"
    seen: Counter[str] = Counter()

    def member(name: str) -> Member:
        m = Member(name, broker, topic, group, session_timeout_s, seen)
        members.append(m)
        return m

    a, b = member("a"), member("b")
    await asyncio.gather(a.start(), b.start())
    await wait_until(
        lambda: a.assigned() and b.assigned() and a.assigned() | b.assigned() == set(range(4)),
        30,
        "a and b to share the 4 partitions",
    )

    async with StreamProducer(broker, topic) as producer:
        await wait_until(
            lambda: a.consumed >= 100 and b.consumed >= 100, 30, "both members to consume records"
        )

        await b.stop()
        await wait_until(
            lambda: a.assigned() == set(range(4)), 30, "a to take over all partitions after b left"
        )
        before = a.consumed
        await wait_until(
            lambda: a.consumed >= before + 200,
            30,
            "a to consume from all partitions after the rebalance",
        )

        b2 = await member("b2").start()
        await wait_until(
            lambda: b2.assigned() and len(a.assigned()) < 4,
            30,
            "the group to rebalance onto the restarted member",
        )
        await wait_until(lambda: b2.consumed >= 50, 30, "the restarted member to consume")
        ends = await producer.finish()

    produced = set(producer.keys)

    async def caught_up() -> bool | Progress:
        return await _caught_up(broker, group, topic, produced, seen.keys(), ends)

    await wait_until(caught_up, 30, "every key consumed and committed offsets at the end")
    await asyncio.gather(a.stop(), b2.stop())

    assert not produced - seen.keys()
    assert await committed_offsets(broker, group, topic) == ends
    assert any(s == set(range(4)) for s in a.assignments), "a never held every partition"
    log.info("group: %d records, %d redelivered", len(produced), sum(seen.values()) - len(seen))


# --------------------------------------------------------------------------- faust worker


class FaustWorkers:
    """Starts ``tests.faust_probe_app`` worker processes; reads what they processed."""

    def __init__(self, broker: str, topic: str, root: Path, session_timeout_s: float):
        self.app_id = f"probe-{uuid.uuid4().hex[:8]}"
        self.broker = broker
        self.topic = topic
        self.root = root
        self.session_timeout_s = session_timeout_s
        self.procs: list[EmbeddedProcess] = []

    def start(self, name: str) -> EmbeddedProcess:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])
            ),
            "PROBE_BROKER": self.broker,
            "PROBE_APP_ID": self.app_id,
            "PROBE_TOPIC": self.topic,
            "PROBE_OUT": str(self.root / f"{name}.out"),
            "PROBE_SESSION_S": str(self.session_timeout_s),
        }
        proc = spawn_child(
            name,
            [sys.executable, "-m", "tests.faust_probe_app", "worker", "-l", "info"],
            env,
            self.root / "logs",
            cwd=REPO_ROOT,
        )
        self.procs.append(proc)
        return proc

    def processed(self, name: str | None = None) -> Counter[str]:
        """Keys processed so far (by one worker, or by all)."""
        counts: Counter[str] = Counter()
        pattern = f"{name}.out" if name else "*.out"
        for path in self.root.glob(pattern):
            for line in path.read_text(errors="replace").splitlines():
                parts = line.split()
                if len(parts) == 3 and not line.startswith("#"):
                    counts[parts[0]] += 1
        return counts

    def alive(self, proc: EmbeddedProcess) -> bool:
        if not proc.running():
            raise AssertionError(
                f"faust worker {proc.name} exited with {proc.returncode}:\n{proc.log_tail(60)}"
            )
        return True


@pytest.fixture
def faust_workers(tmp_path: Path) -> Iterator[list[FaustWorkers]]:
    made: list[FaustWorkers] = []
    yield made
    for w in made:
        for proc in w.procs:
            proc.stop(15)


@pytest.mark.timeout(120)
async def test_faust_worker_restarted_mid_stream_processes_every_record(
    broker: str, session_timeout_s: float, tmp_path: Path, faust_workers: list[FaustWorkers]
) -> None:
    topic = await _new_topic(broker, "faust")
    workers = FaustWorkers(broker, topic, tmp_path, session_timeout_s)
    faust_workers.append(workers)

    w1 = workers.start("w1")
    async with StreamProducer(broker, topic) as producer:
        await wait_until(
            lambda: workers.alive(w1) and sum(workers.processed("w1").values()) >= 100,
            60,
            "the first faust worker to process records",
        )

        assert w1.stop(20) == 0, w1.log_tail(60)  # SIGTERM: leaves the group, commits
        w2 = workers.start("w2")
        await wait_until(
            lambda: workers.alive(w2) and sum(workers.processed("w2").values()) >= 100,
            60,
            "the second faust worker to take over after a clean stop",
        )

        w2.kill()  # a crash: no LeaveGroup, no final commit
        w3 = workers.start("w3")
        await wait_until(
            lambda: workers.alive(w3) and sum(workers.processed("w3").values()) >= 50,
            60,
            "the third faust worker to take over after a crash",
        )
        ends = await producer.finish()

    produced = set(producer.keys)

    async def caught_up() -> bool | Progress:
        workers.alive(w3)
        return await _caught_up(
            broker, workers.app_id, topic, produced, workers.processed().keys(), ends
        )

    await wait_until(caught_up, 40, "every key processed and faust's commits at the end")
    assert w3.stop(20) == 0, w3.log_tail(60)

    processed = workers.processed()
    assert not produced - processed.keys()
    assert await committed_offsets(broker, workers.app_id, topic) == ends
    log.info(
        "faust: %d records, %d processed twice",
        len(produced),
        sum(processed.values()) - len(processed),
    )
