"""Real processes under SIGTERM and a broker restart.

* ``orderflow worker`` and ``orderflow ingress`` stop on SIGTERM: they stop taking
  work, drain, and exit 0 within a bound (they used to ignore it until SIGKILL).
* A worker survives a SIGKILL + restart of the (durable) broker under it: an order
  produced after the broker is back is executed, by the same worker process or, if
  it chose to exit with a non-zero code, by its restart.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from orderflow.embedded import DurableBroker, EmbeddedProcess, spawn_child, start_durable_broker
from pipeline.tokens import SOL, USDC
from pipeline.wire import ExecuteOrder, now_ms
from sinks.migrate import migrate
from tests.cluster import Cluster
from tests.helpers import free_port, wait_until

pytestmark = pytest.mark.integration

SIGTERM_BOUND_S = 15.0  # the worker's drain bound plus start-up slack; SIGKILL came at 10 s


def order(tag: str) -> ExecuteOrder:
    return ExecuteOrder(f"{tag}-{uuid.uuid4().hex[:12]}", SOL.mint, USDC.mint, 100_000_000,
                        300, now_ms(), "kafka")


@pytest.fixture
async def slow_cluster(own_broker: str, own_database_url: str,
                       tmp_path: Path) -> AsyncIterator[Cluster]:
    """200 ms slots: a transaction that never lands keeps its order in flight ~30 s."""
    await migrate(own_database_url)
    c = Cluster(own_broker, own_database_url, tmp_path, slot_ms=200)
    await c.start_localnet()
    try:
        yield c
    finally:
        c.stop()


async def test_worker_exits_zero_on_sigterm_with_an_order_in_flight(
        slow_cluster: Cluster) -> None:
    cluster = slow_cluster
    worker = cluster.start_worker("w1")
    first = order("ready")
    await cluster.produce([first])
    await cluster.wait_terminal([first.order_id], 90)  # the worker consumes and executes

    # The next order's transaction is accepted and never lands: it stays in flight
    # (confirming) until its blockhash expires, far longer than the stop bound.
    cluster.admin(cluster.rpc, {"drop": {"next": 1, "sticky": True}})
    stuck = order("inflight")
    await cluster.produce([stuck])

    async def submitted() -> bool:
        ledger = await cluster.ledger([stuck.order_id])
        return ledger["orders"].get(stuck.order_id, {}).get("status") == "submitted"
    await wait_until(submitted, 60, "the second order to be in flight (submitted)")

    worker.popen.send_signal(signal.SIGTERM)  # the process alone, as systemd or docker do
    try:
        code = worker.popen.wait(timeout=SIGTERM_BOUND_S)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"worker still running {SIGTERM_BOUND_S:.0f}s after SIGTERM:\n"
                             f"{worker.log_tail(30)}") from None
    assert code == 0, worker.log_tail(40)


async def test_ingress_exits_zero_on_sigterm(cluster: Cluster) -> None:
    port = free_port()
    ingress = spawn_child("ingress", [sys.executable, "-m", "orderflow.cli", "ingress"],
                          cluster.env(ORDERFLOW_HTTP_PORT=str(port)), cluster.data / "logs")
    try:
        def answers() -> bool:
            assert ingress.running(), ingress.log_tail(40)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    return True
            except urllib.error.HTTPError:
                return True  # it answers (503 while a check is red)
            except OSError:
                return False
        await wait_until(answers, 60, "the ingress to answer /healthz")
        ingress.popen.send_signal(signal.SIGTERM)
        code = ingress.popen.wait(timeout=SIGTERM_BOUND_S)
        assert code == 0, ingress.log_tail(40)
    finally:
        ingress.stop()


@pytest.fixture
def durable_broker(tmp_path: Path) -> Iterator[DurableBroker]:
    broker = start_durable_broker(None, tmp_path / "broker")
    try:
        yield broker
    finally:
        broker.stop()


async def test_worker_executes_orders_after_the_broker_is_killed_and_restarted(
        durable_broker: DurableBroker, own_database_url: str, tmp_path: Path) -> None:
    await migrate(own_database_url)
    cluster = Cluster(durable_broker.url, own_database_url, tmp_path)
    await cluster.start_localnet()
    try:
        worker = cluster.start_worker("w1")
        first = order("before")
        await cluster.produce([first])
        await cluster.wait_terminal([first.order_id], 90)

        durable_broker.kill()
        broker = start_durable_broker(durable_broker.port, tmp_path / "broker")
        durable_broker.tansu, durable_broker.s3 = broker.tansu, broker.s3  # stopped at the end

        restarts: list[EmbeddedProcess] = []

        def supervise() -> None:  # what `orderflow up` (or systemd) does for a dead worker
            w = cluster.workers["w1"]
            if not w.running():
                assert w.returncode not in (0, None), w.log_tail(40)
                restarts.append(w)
                cluster.start_worker("w1")

        second = order("after")
        await cluster.produce([second])

        async def executed() -> bool:
            supervise()
            states = await cluster.ledger([second.order_id])
            return states["orders"].get(second.order_id, {}).get("status") == "confirmed"
        await wait_until(executed, 120, "the order produced after the broker restart to "
                         "be confirmed", interval=0.5)
        assert worker.running() or restarts, worker.log_tail(40)
    finally:
        cluster.stop()
