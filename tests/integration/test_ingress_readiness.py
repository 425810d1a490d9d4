"""Readiness means an order will move (issue 9, "Also fix"): /healthz on the real database.

``/healthz`` is 200 only while a non-stopping worker of role ``executor`` and one of role
``sinks`` have beaten (``worker_heartbeats.seen_at``) within the last 10 s; otherwise
503 with ``workers`` failing and the reason. The rows are written here as workers write
them (pipeline/heartbeat.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import psycopg
import pytest

from ingress.app import RunningIngress, running_ingress
from ingress.config import IngressConfig
from tests.helpers import free_port, wait_until
from tests.integration.test_ingress_kafka import schema_dsn, topics  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def dsn(database_url: str) -> str:
    return await schema_dsn(database_url, "ingress_ready")


@pytest.fixture(scope="module")
async def ingress(topics: str, dsn: str) -> AsyncIterator[RunningIngress]:  # noqa: F811
    config = IngressConfig(bootstrap=topics, database_url=dsn, port=free_port())
    async with running_ingress(config) as running:
        yield running


async def beat(dsn: str, worker_id: str, roles: list[str], *, age_s: float = 0,
               stopping: bool = False) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO worker_heartbeats (worker_id, roles, stopping, seen_at) "
            "VALUES (%s, %s, %s, now() - make_interval(secs => %s)) ON CONFLICT (worker_id) "
            "DO UPDATE SET roles = EXCLUDED.roles, stopping = EXCLUDED.stopping, "
            "seen_at = EXCLUDED.seen_at", (worker_id, roles, stopping, age_s))


async def health(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/healthz") as resp:
        return resp.status, await resp.json()


async def test_ready_only_while_live_executor_and_sinks_workers_beat(
        ingress: RunningIngress, dsn: str) -> None:
    status, doc = await health(ingress.url)
    assert status == 503, doc  # broker and database are fine, but no worker is there
    assert doc["failing"] == ["workers"] and "executor" in doc["checks"]["workers"]["error"]

    await beat(dsn, "w-exec", ["executor"])
    await wait_until(lambda: _reason_mentions(ingress.url, "sinks"), 10, "only sinks missing")

    await beat(dsn, "w-sinks", ["sinks"])
    doc = await wait_until(lambda: _ready(ingress.url), 10, "ready with both roles")
    assert isinstance(doc, dict)
    workers = doc["checks"]["workers"]
    assert (workers["executor"], workers["sinks"]) == (["w-exec"], ["w-sinks"])

    await beat(dsn, "w-exec", ["executor"], stopping=True)  # shutting down
    await wait_until(lambda: _reason_mentions(ingress.url, "executor"), 10, "stopping")

    await beat(dsn, "w-exec", ["executor"], age_s=20)  # silent for 20 s: presumed dead
    await wait_until(lambda: _reason_mentions(ingress.url, "executor"), 10, "stale")

    await beat(dsn, "w-both", ["executor", "sinks"])  # one worker with both roles
    await wait_until(lambda: _ready(ingress.url), 10, "ready with one all-roles worker")


async def _ready(url: str) -> Any:
    status, doc = await health(url)
    return doc if status == 200 else None


async def _reason_mentions(url: str, role: str) -> bool:
    status, doc = await health(url)
    return status == 503 and "workers" in doc["failing"] and (
        role in doc["checks"]["workers"]["error"])
