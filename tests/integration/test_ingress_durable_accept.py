"""A 202 means the order is on ``orders`` (issue 9 defect 3a, the ingress's part).

On the real broker: while ``orders`` is gone (deleted, or the broker is down) the POST
answers 503 with the error shape and ``Retry-After`` and never 202; once the broker
and topic are back it answers 202 again, with the same ingress process. The broker is
this test's own embedded Tansu, stopped and started on the same port.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from ingress.app import running_ingress
from ingress.config import IngressConfig
from orderflow.embedded import EmbeddedProcess, start_broker
from pipeline.topic_admin import create_topics
from pipeline.topics import ORDERS, topic_specs
from tests.helpers import free_port, wait_until
from tests.integration.test_ingress_kafka import schema_dsn

pytestmark = pytest.mark.integration

ORDER = {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "0.01"}


async def post(http: aiohttp.ClientSession, url: str) -> tuple[int, Any, Any]:
    async with http.post(f"{url}/api/orders/execute", json=ORDER) as resp:
        return resp.status, await resp.json(), resp.headers


def assert_not_accepted(status: int, doc: Any, headers: Any) -> None:
    assert status == 503, (status, doc)
    assert doc["error"]["code"] == "broker_unavailable", doc
    assert isinstance(doc["error"]["message"], str) and doc["error"]["message"]
    assert int(headers["Retry-After"]) >= 1


async def _topics(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def _delete_orders(bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([ORDERS])
    finally:
        await admin.close()


async def test_post_is_503_while_orders_cannot_be_written_and_202_once_it_can(
        tmp_path: Path, database_url: str) -> None:
    port = free_port()
    broker: EmbeddedProcess = await asyncio.to_thread(start_broker, port, tmp_path / "b1")
    config = IngressConfig(bootstrap=broker.url, database_url=await schema_dsn(
        database_url, "ingress_durable"), port=free_port())
    specs = topic_specs(config.orders_partitions, config.status_partitions)
    try:
        async with running_ingress(config) as ingress, \
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            status, doc, _ = await post(http, ingress.url)
            assert status == 202, doc

            # 1. the topic is deleted (what a broker restart on memory storage amounts to)
            await _delete_orders(broker.url)
            await wait_until(lambda: _missing(broker.url), 15, "orders deleted")
            for _ in range(3):
                assert_not_accepted(*await post(http, ingress.url))
            await create_topics(broker.url, specs)
            await wait_until(lambda: _accepted(http, ingress.url), 30, "202 once orders is back")

            # 2. the broker is down
            await asyncio.to_thread(broker.stop)
            assert_not_accepted(*await post(http, ingress.url))
            broker = await asyncio.to_thread(start_broker, port, tmp_path / "b2")
            await create_topics(broker.url, specs)
            await wait_until(lambda: _accepted(http, ingress.url), 60,
                             "202 once the broker is back")
    finally:
        await asyncio.to_thread(broker.stop)


async def _missing(bootstrap: str) -> bool:
    return ORDERS not in await _topics(bootstrap)


async def _accepted(http: aiohttp.ClientSession, url: str) -> bool:
    status, doc, headers = await post(http, url)
    if status != 202:
        assert_not_accepted(status, doc, headers)  # never anything but 202 or a proper 503
    return status == 202
