"""``orderflow worker``: create topics, migrate, then run the faust worker loop.

Stopping: SIGTERM or SIGINT stops consuming and drains. faust on its own would wait,
without a bound, for every delivered message to be acknowledged before it stops its
services, and an order is acknowledged only once terminal (a confirmation can take
many seconds), so a stop request used to hang until SIGKILL. On a stop signal the
worker therefore tells faust not to wait for its streams: the executor's own bounded
drain (``Engine.on_stop`` in :mod:`pipeline.engine`) lets in-flight orders finish, and
whatever is still running then is redelivered to the next owner (the journal keeps
that idempotent). The process exits 0 once stopped; if anything still hangs after
:data:`STOP_GRACE_S` it logs what and exits :data:`EXIT_STOP_TIMEOUT`.

Broker loss: the worker keeps running while the broker is away and resumes when it
is back on the same storage (aiokafka reconnects; the durable embedded broker keeps
topics, records and committed offsets): see
``tests/integration/test_process_lifecycle.py``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading

import faust

from orderflow.settings import Settings
from pipeline import topics
from pipeline.app import build_app
from pipeline.metrics import EngineMetrics
from sinks.status_sink import register as register_sinks

log = logging.getLogger(__name__)

STOP_GRACE_S = 15.0
"""After a stop signal the process is gone within this (Docker's stop grace is 10 s by
default: give the worker ``stop_grace_period: 20s`` there)."""
EXIT_STOP_TIMEOUT = 70  # EX_SOFTWARE: asked to stop, still hanging after STOP_GRACE_S


async def prepare(settings: Settings, roles: frozenset[str]) -> None:
    from pipeline.topic_admin import create_topics

    assert settings.kafka_bootstrap
    await create_topics(settings.kafka_bootstrap,
                        topics.topic_specs(settings.orders_partitions, settings.status_partitions))
    if roles:
        from sinks.migrate import migrate

        assert settings.database_url
        await migrate(settings.database_url)


def _exit_now(code: int, why: str) -> None:
    """Log, flush and leave at once (no interpreter teardown that could hang too)."""
    log.error("%s; exiting with code %d", why, code)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class _Worker(faust.Worker):
    """faust's worker with a bounded stop on SIGTERM/SIGINT."""

    def _on_sigterm(self) -> None:
        self._begin_stop("SIGTERM")
        super()._on_sigterm()

    def _on_sigint(self) -> None:
        self._begin_stop("SIGINT")
        super()._on_sigint()

    def _begin_stop(self, why: str) -> None:
        if getattr(self, "_stop_begun", False):
            return
        self._stop_begun = True
        log.info("%s: stopping (consumption stops, in-flight orders drain)", why)
        self.app.conf.stream_wait_empty = False  # the engine's drain is the bounded wait
        timer = threading.Timer(STOP_GRACE_S, _exit_now, (
            EXIT_STOP_TIMEOUT, f"worker still stopping {STOP_GRACE_S:.0f}s after {why}"))
        timer.daemon = True
        timer.start()


def run_worker(settings: Settings, roles: frozenset[str]) -> int:
    settings.require("kafka_bootstrap", "database_url")  # the journal; the read model
    assert settings.database_url is not None
    executor = settings.executor_config() if "executor" in roles else None
    sinks = settings.sink_config() if "sinks" in roles else None
    asyncio.run(prepare(settings, roles))
    app = build_app(settings.broker_config(), roles=roles, database_url=settings.database_url,
                    executor=executor)
    if sinks is not None:
        register_sinks(app, sinks, metrics=EngineMetrics.default())
    if settings.worker_metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.worker_metrics_port, addr=settings.http_host)
    worker = _Worker(app, loglevel=settings.log_level, override_logging=False, quiet=True)
    log.info("worker starting with roles %s", ", ".join(sorted(roles)))
    worker.execute_from_commandline()  # raises SystemExit: 0 once stopped, 1 on a crash
    return 0
