"""The embedded defaults are durable: what was acknowledged survives a SIGKILL.

PostgreSQL: rows committed by concurrent clients while the server's whole process
group is SIGKILLed are all there after a restart on the same data directory (with
the old ``synchronous_commit=off`` default, commits from the last ~200 ms were lost).

Broker: records produced with ``acks=all``, the topic and a consumer group's
committed offsets are all there after Tansu and its storage are SIGKILLed and
started again on the same data (memory storage lost everything).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata

from orderflow import embedded
from tests.helpers import wait_until

pytestmark = pytest.mark.integration


async def _write_until_killed(dsn: str, acked: list[int], next_id: list[int]) -> None:
    """Insert rows one commit each; record an id only once its COMMIT returned."""
    try:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            while True:
                i = next_id[0]
                next_id[0] += 1
                await conn.execute("INSERT INTO acked (id) VALUES (%s)", (i,))
                acked.append(i)
    except psycopg.OperationalError:
        return  # the server was killed under us


@pytest.fixture
def pg_dir() -> Iterator[Path]:
    """Not under pytest's basetemp: as root, PostgreSQL runs as another OS user that must
    traverse the path, and a concurrent pytest session resets ``pytest-of-root`` to 0700."""
    with tempfile.TemporaryDirectory(prefix="orderflow-pg-durable-") as d:
        yield Path(d)


async def test_rows_acknowledged_by_embedded_postgres_survive_a_sigkill(pg_dir: Path) -> None:
    data = pg_dir / "pg"
    proc, dsn = embedded.start_postgres(data)  # the default, as `orderflow up` starts it
    try:
        port = int(dsn.rsplit(":", 1)[1].split("/")[0])
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE acked (id bigint PRIMARY KEY)")
        acked: list[int] = []
        next_id = [0]
        writers = [asyncio.create_task(_write_until_killed(dsn, acked, next_id))
                   for _ in range(16)]
        await wait_until(lambda: len(acked) >= 3000, 60, "3000 acknowledged commits")
        proc.kill()  # SIGKILL to the postmaster's whole process group, backends included
        await asyncio.wait_for(asyncio.gather(*writers), 30)
    finally:
        proc.stop()
    proc, dsn = embedded.start_postgres(data, port=port)
    try:
        with psycopg.connect(dsn) as conn:
            found = {r[0] for r in conn.execute("SELECT id FROM acked").fetchall()}
            settings = dict(conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN "
                "('fsync', 'synchronous_commit', 'full_page_writes')").fetchall())
    finally:
        proc.stop()
    lost = sorted(set(acked) - found)
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged rows lost: {lost[:20]}"
    assert settings == {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}


def _start_durable(port: int | None, data: Path) -> Any:
    # Before the durable default existed, `orderflow up` ran start_broker (memory storage):
    # with that, this test shows what the old default lost.
    start = getattr(embedded, "start_durable_broker", None)
    return start(port, data) if start else embedded.start_broker(port, data)


N_RECORDS = 3000
PARTITIONS = 4


async def test_broker_keeps_records_topics_and_offsets_across_a_sigkill(tmp_path: Path) -> None:
    broker = _start_durable(None, tmp_path / "broker")
    bootstrap = broker.url
    port = int(bootstrap.rpartition(":")[2])
    try:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        await admin.create_topics([NewTopic("durable", PARTITIONS, 1)])
        await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        await producer.start()
        try:
            futs = [await producer.send("durable", f"v{i}".encode(), key=str(i).encode())
                    for i in range(N_RECORDS)]
            produced = [await f for f in futs]
        finally:
            await producer.stop()
        ends = {p: 1 + max(m.offset for m in produced if m.partition == p)
                for p in range(PARTITIONS)}
        # The group committed half of every partition.
        committed = {TopicPartition("durable", p): OffsetAndMetadata(end // 2, "")
                     for p, end in ends.items()}
        group = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id="durable-g",
                                 enable_auto_commit=False)
        await group.start()
        try:
            group.assign(list(committed))
            await group.commit(committed)
        finally:
            await group.stop()
        broker.kill()  # SIGKILL: Tansu and whatever holds its data
    finally:
        broker.stop()

    broker = _start_durable(port, tmp_path / "broker")
    try:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            # list first: a metadata request naming the topic may auto-create it
            assert "durable" in await admin.list_topics()
            described = await admin.describe_topics(["durable"])
        finally:
            await admin.close()
        assert described[0]["error_code"] == 0, described
        assert len(described[0]["partitions"]) == PARTITIONS, described

        group = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id="durable-g",
                                 enable_auto_commit=False)
        await group.start()
        try:
            after = {tp: await group.committed(tp) for tp in committed}
        finally:
            await group.stop()
        assert after == {tp: om.offset for tp, om in committed.items()}

        reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                  auto_offset_reset="earliest")
        await reader.start()
        seen: set[bytes] = set()
        try:
            reader.assign(list(committed))

            async def all_read() -> bool:
                for records in (await reader.getmany(timeout_ms=200)).values():
                    seen.update(r.value or b"" for r in records)
                return len(seen) >= N_RECORDS
            with contextlib.suppress(AssertionError):
                await wait_until(all_read, 20, f"{N_RECORDS} records")
        finally:
            await reader.stop()
        missing = {f"v{i}".encode() for i in range(N_RECORDS)} - seen
        assert not missing, f"{len(missing)} of {N_RECORDS} acknowledged records lost"
    finally:
        broker.stop()
