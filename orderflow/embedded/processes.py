"""Child processes that cannot outlive the process that started them.

Every child of ``orderflow up``, the bench and the test fixtures is started by
:func:`spawn_child`: it gets ``PR_SET_PDEATHSIG`` (SIGKILL by default), so it dies with
the process that started it even when that process is killed with SIGKILL, and its own
process group, so :meth:`EmbeddedProcess.stop` (SIGTERM, then SIGKILL to the whole group
after a timeout) also ends what it forked. Linux delivers the parent-death signal when
the *thread* that forked the child exits: start children from the main thread (or a
thread that lives as long as they should), never from ``asyncio.to_thread`` or a
short-lived executor. stdout and stderr go to ``<log_dir>/<name>.log`` (appended, one
header line per start).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import random
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from pipeline.errors import ConfigError

log = logging.getLogger("orderflow.embedded")

T = TypeVar("T")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

PR_SET_PDEATHSIG = 1


class EmbeddedError(ConfigError):
    """An embedded service could not be started (the message names its log)."""

    default_code = "embedded_start_failed"


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
            **as_user(user),
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


_PORT_RANGE = (20_000, 32_000)
"""Where :func:`free_port` looks: below Linux's ephemeral range (32768-60999), from which
the kernel hands out the source port of every outgoing connection. A port the kernel
picked for us (``bind(0)``) comes from that range too, so between our check and the
child's bind an outgoing connection of any process could take it: seen in ``make test``
as a localnet failing with EADDRINUSE. Here only processes that chose the same number
can collide, and we never hand out a number twice."""

_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1", *, span: int = 1) -> int:
    """The first of ``span`` consecutive TCP ports that were free a moment ago (the
    localnet needs two: RPC and PubSub on RPC + 1); never one this process returned
    before."""
    rng = random.SystemRandom()
    for _ in range(1_000):
        first = rng.randrange(_PORT_RANGE[0], _PORT_RANGE[1] - span)
        ports = range(first, first + span)
        if any(p in _handed_out for p in ports) or not all(bindable(host, p)
                                                            for p in ports):
            continue
        _handed_out.update(ports)
        return first
    raise OSError(f"no {span} free consecutive TCP ports on {host} in {_PORT_RANGE}")


def bindable(host: str, port: int, *, reuse_addr: bool = False) -> bool:
    """Whether a TCP listener could bind ``host:port`` now; ``reuse_addr`` as servers such
    as aiohttp bind (a port in TIME_WAIT counts as free)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        if reuse_addr:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def tcp_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def run_blocking(factory: Callable[[], Awaitable[T]]) -> T:
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


def port_in_use(proc: EmbeddedProcess) -> bool:
    tail = proc.log_tail(40).lower()
    return any(s in tail for s in ("address already in use", "address in use", "addrinuse"))


def as_user(user: str | None) -> dict[str, Any]:
    """subprocess kwargs that switch to ``user``, its primary group and no other group.

    Keeping root's groups would make root-owned 0701 directories unreadable: the
    group bits, not the 'other' bits, apply to a member of the owning group.
    """
    if user is None:
        return {}
    import pwd

    return {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []}
