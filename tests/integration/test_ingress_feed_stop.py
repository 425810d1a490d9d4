"""The ingress's status feed stops cleanly while its broker is away (found by `make test`:
aiokafka's fetcher, cancelled in its retry back-off, let ``CancelledError`` out of
``consumer.stop()``, so the ingress's shutdown raised instead of finishing)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from ingress.hub import StatusHub
from ingress.metrics import IngressMetrics
from ingress.status_feed import StatusFeed
from orderflow.embedded import EmbeddedProcess, start_broker
from pipeline.topic_admin import create_topics
from pipeline.topics import topic_specs
from tests.helpers import free_port

pytestmark = pytest.mark.integration


async def test_stop_while_the_broker_is_down_returns(tmp_path: Path) -> None:
    broker: EmbeddedProcess = await asyncio.to_thread(start_broker, free_port(), tmp_path)
    try:
        await create_topics(broker.url, topic_specs(2, 2))
        feed = StatusFeed(broker.url, StatusHub(), IngressMetrics(CollectorRegistry()))
        await feed.start(topic_wait_s=10)
        run = asyncio.create_task(feed.run())
        await asyncio.to_thread(broker.stop)
        for _ in range(5):  # let the fetcher fail and enter its retry back-off a few times
            await asyncio.sleep(0.15)  # the back-off being exercised, not a stand-in
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        await asyncio.wait_for(feed.stop(), 10)  # must neither raise nor hang
        assert not asyncio.current_task().cancelling()  # type: ignore[union-attr]
    finally:
        await asyncio.to_thread(broker.stop)
