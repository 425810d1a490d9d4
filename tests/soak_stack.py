"""The soak's own system: every component a real process that can be SIGKILLed and restarted.

PostgreSQL (embedded, durable, its own data directory: never the machine's server at
5432), the broker (embedded Tansu), the localnet with its market, W workers and the
ingress, each on a fixed port so a restarted process is found where the others look.
Children are spawned from one long-lived thread: ``PR_SET_PDEATHSIG`` fires when the
thread that forked a child exits, and restarts must not block the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import sys
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from orderflow import embedded
from orderflow.embedded import EmbeddedProcess, spawn_child
from sinks.migrate import migrate
from tests.cluster import Cluster
from tests.helpers import free_port, wait_until

log = logging.getLogger("tests.soak")
T = TypeVar("T")

COMPONENTS = ("worker", "postgres", "broker", "ingress", "localnet")
RESTART_ORDER = ("postgres", "broker", "localnet", "worker", "ingress")


class Stack:
    """The whole system under test, started by :meth:`start`, ended by :meth:`stop`."""

    def __init__(self, data: Path, *, workers: int, slot_ms: int, env: dict[str, str]) -> None:
        self.data = data
        self.n_workers = workers
        self.slot_ms = slot_ms
        self.admin_token = secrets.token_urlsafe(24)
        self.extra_env = {**env, "ORDERFLOW_LOCALNET_ADMIN_TOKEN": self.admin_token}
        self.pg_port, self.broker_port, self.http_port = free_port(), free_port(), free_port()
        self.http = f"http://127.0.0.1:{self.http_port}"
        self.procs: dict[str, EmbeddedProcess] = {}
        self.cluster: Cluster | None = None
        self.dsn = ""
        self.unexpected_exits: dict[str, int] = {}
        self._spawner = ThreadPoolExecutor(1, thread_name_prefix="soak-spawner")
        self._down: set[str] = set()  # killed on purpose, not yet restarted

    # ------------------------------------------------------------------ lifecycle

    async def _in_spawner(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._spawner, fn)

    @property
    def c(self) -> Cluster:
        assert self.cluster is not None
        return self.cluster

    @property
    def worker_names(self) -> list[str]:
        return [f"w{i}" for i in range(self.n_workers)]

    async def start(self) -> None:
        await self._in_spawner(self._start_postgres)
        await migrate(self.dsn)
        await self._in_spawner(self._start_broker)
        self.cluster = Cluster(self.procs["broker"].url, self.dsn, self.data,
                               slot_ms=self.slot_ms, extra_env=self.extra_env)
        await self.c.start_localnet()  # spawns from this (main) thread: lives as long
        self.procs["localnet"] = self.c.localnet  # type: ignore[assignment]

    async def start_engine(self) -> None:
        """Workers and ingress (after the baseline was read)."""
        for name in self.worker_names:
            await self._in_spawner(lambda n=name: self._start_worker(n))  # type: ignore[misc]
        await self._in_spawner(self._start_ingress)
        await wait_until(self._ingress_answers, 60, "the ingress to answer /healthz")

    def _start_postgres(self) -> None:
        proc, self.dsn = embedded.start_postgres(self.data / "postgres", port=self.pg_port,
                                                 durable=True, database="orderflow")
        self.procs["postgres"] = proc

    def _start_broker(self) -> None:
        durable = getattr(embedded, "start_durable_broker", None)
        self.procs["broker"] = (durable(self.broker_port, self.data / "broker") if durable
                                else embedded.start_broker(self.broker_port, self.data))

    def _start_worker(self, name: str) -> None:
        self.procs[name] = self.c.start_worker(name)

    def _start_ingress(self) -> None:
        self.procs["ingress"] = spawn_child(
            "ingress", [sys.executable, "-m", "orderflow.cli", "ingress"],
            self.c.env(ORDERFLOW_HTTP_PORT=str(self.http_port)), self.data / "logs")

    def _start_localnet(self) -> None:
        # A restart resumes the chain saved in the data dir: the wallet is funded already
        # (funding it again would add to the balances the audit reconciles).
        self.c.localnet = spawn_child(
            "localnet", [sys.executable, "-m", "orderflow.cli", "localnet"], self.c.env(),
            self.data / "logs")
        self.procs["localnet"] = self.c.localnet

    def faults(self, base: str, config: dict[str, Any] | None) -> None:
        """Set (``None``: reset) the fault switches of the localnet RPC or market at ``base``."""
        req = urllib.request.Request(
            f"{base}/admin/faults", method="DELETE" if config is None else "POST",
            data=None if config is None else json.dumps(config).encode(),
            headers={"Content-Type": "application/json",
                     "Authorization": f"Bearer {self.admin_token}"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            resp.read()

    def _ingress_answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.http}/healthz", timeout=1) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        for name in ("ingress", *self.worker_names, "localnet", "broker", "postgres"):
            proc = self.procs.get(name)
            if proc is not None:
                proc.stop(5)
        self._spawner.shutdown(wait=True)

    # ------------------------------------------------------------------ faults

    def victims(self, component: str, rng: Any) -> list[str]:
        """Process names a kill of ``component`` hits (one random worker for 'worker')."""
        return [rng.choice(self.worker_names)] if component == "worker" else [component]

    def kill(self, names: list[str]) -> None:
        """SIGKILL the named processes (whole process groups), as close together as possible."""
        self._down.update(names)
        for name in names:
            self.procs[name].kill()

    async def restart(self, names: list[str]) -> None:
        """Start the named processes again on the same ports and data, dependencies first."""
        def rank(n: str) -> int:
            return RESTART_ORDER.index("worker" if n.startswith("w") else n)
        for name in sorted(names, key=rank):
            await self._in_spawner(lambda n=name: self._start(n))  # type: ignore[misc]
            self._down.discard(name)

    def _start(self, name: str) -> None:
        starters: dict[str, Callable[[], None]] = {
            "postgres": self._start_postgres, "broker": self._start_broker,
            "ingress": self._start_ingress, "localnet": self._start_localnet}
        starters.get(name, lambda: self._start_worker(name))()

    async def supervise(self) -> None:
        """Restart any process that exited on its own (as systemd would), counting it."""
        while True:
            for name, proc in list(self.procs.items()):
                if name not in self._down and not proc.running():
                    kind = "worker" if name.startswith("w") else name
                    self.unexpected_exits[kind] = self.unexpected_exits.get(kind, 0) + 1
                    log.warning("%s exited on its own (code %s):\n%s", name, proc.returncode,
                                proc.log_tail(15))
                    self._down.add(name)
                    try:
                        await self.restart([name])
                    except Exception:
                        log.exception("restarting %s failed; trying again", name)
                        self._down.discard(name)
            await asyncio.sleep(0.5)

    def all_running(self) -> bool:
        return all(p.running() for p in self.procs.values())

    async def wait_all_running(self, timeout: float) -> None:
        started = time.monotonic()
        await wait_until(self.all_running, timeout, "every soak process to run")
        log.info("all running after %.1fs", time.monotonic() - started)
