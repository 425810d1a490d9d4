"""``orderflow worker``: create topics, migrate, then run the faust worker loop."""

from __future__ import annotations

import asyncio
import logging

import faust

from orderflow.settings import Settings
from pipeline import topics
from pipeline.app import build_app

log = logging.getLogger(__name__)


async def prepare(settings: Settings, roles: frozenset[str]) -> None:
    from orderflow.embedded import create_topics

    assert settings.kafka_bootstrap
    await create_topics(settings.kafka_bootstrap,
                        topics.topic_specs(settings.orders_partitions, settings.status_partitions))
    if roles:
        from sinks.migrate import migrate

        assert settings.database_url
        await migrate(settings.database_url)


def run_worker(settings: Settings, roles: frozenset[str]) -> int:
    needed = ["kafka_bootstrap"]
    if "executor" in roles:
        needed += ["solana_rpc_url", "venue_url", "wallet"]
    needed.append("database_url")  # executor: the journal; sinks: the read model
    settings.require(*needed)
    asyncio.run(prepare(settings, roles))
    app = build_app(settings, roles)
    if settings.worker_metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.worker_metrics_port, addr=settings.http_host)
    worker = faust.Worker(app, loglevel=settings.log_level, override_logging=False, quiet=True)
    log.info("worker starting with roles %s", ", ".join(sorted(roles)))
    worker.execute_from_commandline()
    return 0
