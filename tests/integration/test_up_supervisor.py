"""``orderflow up`` as a real process: it restarts a child that dies, and SIGTERM stops
everything in order (ingress, worker, localnet, PostgreSQL, broker) with nothing left."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import free_port, wait_until

pytestmark = pytest.mark.integration


def _descendants(pid: int) -> set[int]:
    """Every live process whose parent chain leads to ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {c for c, p in parents.items() if p in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _named_pid(pids: set[int], needle: bytes) -> int | None:
    for pid in pids:
        try:
            if needle in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            pass
    return None


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Not under pytest's basetemp: embedded PostgreSQL (another OS user as root) must
    # traverse the path, and a concurrent pytest session resets pytest-of-root to 0700.
    with tempfile.TemporaryDirectory(prefix="orderflow-up-") as d:
        yield Path(d)


async def test_up_restarts_a_dead_worker_and_stops_everything_in_order_on_sigterm(
        data_dir: Path) -> None:
    http = free_port()
    env = {**os.environ, "ORDERFLOW_DATA_DIR": str(data_dir), "ORDERFLOW_HTTP_PORT": str(http),
           "ORDERFLOW_LOCALNET_RPC_PORT": str(free_port(span=2)),
           "ORDERFLOW_LOCALNET_VENUE_PORT": str(free_port()),
           "ORDERFLOW_LOCALNET_SLOT_MS": "100", "ORDERFLOW_LOCALNET_DRIFT_BPS": "0",
           "ORDERFLOW_SESSION_TIMEOUT_S": "2"}
    for k in ("ORDERFLOW_KAFKA_BOOTSTRAP", "ORDERFLOW_DATABASE_URL", "ORDERFLOW_SOLANA_RPC_URL",
              "ORDERFLOW_VENUE_URL", "ORDERFLOW_WALLET"):
        env.pop(k, None)
    out_path = data_dir / "up.out"
    with out_path.open("wb") as out:
        up = subprocess.Popen([sys.executable, "-m", "orderflow.cli", "up"], env=env,  # noqa: ASYNC220
                              stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        def up_and_ready() -> bool:
            assert up.poll() is None, out_path.read_text()[-3000:]
            return "orderflow is up" in out_path.read_text()
        await wait_until(up_and_ready, 180, "orderflow up to report it is up", interval=0.5)
        everything = _descendants(up.pid)
        worker = _named_pid(everything, b"orderflow.cli\x00worker")
        assert worker is not None, everything
        for name in (b"weed\x00mini", b"tansu", b"postgres", b"orderflow.cli\x00ingress",
                     b"orderflow.cli\x00localnet"):
            assert _named_pid(everything, name) is not None, (name, everything)

        os.kill(worker, signal.SIGKILL)  # dies on its own, as far as `up` can tell
        restarted: list[int] = []

        def worker_back() -> bool:
            assert up.poll() is None, out_path.read_text()[-3000:]
            pid = _named_pid(_descendants(up.pid), b"orderflow.cli\x00worker")
            if pid is not None and pid != worker:
                restarted.append(pid)
                return True
            return False
        try:
            await wait_until(worker_back, 30, "up to restart the killed worker")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{out_path.read_text()[-3000:]}") from None
        assert "worker exited unexpectedly with code -9; restarting" in out_path.read_text()

        everything = _descendants(up.pid)
        up.send_signal(signal.SIGTERM)
        code = up.wait(timeout=90)
        log = out_path.read_text()
        assert code == 0, log[-3000:]
        stopped = re.findall(r"stopping (\w+) \(pid", log)
        assert stopped == ["ingress", "worker", "localnet", "postgres", "tansu", "seaweedfs"], (
            stopped)
        left = sorted(p for p in everything if _alive(p))
        assert not left, [(p, Path(f"/proc/{p}/cmdline").read_bytes()) for p in left]
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
