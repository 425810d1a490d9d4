"""The faust-streaming application: wiring only.

``execute-orders`` consumes ``orders`` and ``retry-orders`` the retry topics, both with
manual acknowledgement; each message runs as its own task in the
:class:`~pipeline.engine.Engine` (see there for when a message is acknowledged).
``trigger-orders`` holds the open conditional orders of the pairs this worker owns
(``open-orders``, :mod:`pipeline.trigger_agent`). The
sinks role is added by ``sinks.status_sink.register`` (``orderflow/worker.py`` composes
the roles). Every worker beats in ``worker_heartbeats`` (readiness).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterable

import faust
from faust.types import StreamT

from pipeline import topics
from pipeline.config import BrokerConfig, ExecutorConfig
from pipeline.engine import Engine
from pipeline.faust_compat import (
    HeldOffsets,
    faust_consumer_lag,
    guard_commit_gaps,
    shorten_fetch_wait,
)
from pipeline.heartbeat import Heartbeat
from pipeline.kafka_outbox import PRODUCE_TIMEOUT_S
from pipeline.metrics import EngineMetrics
from pipeline.trigger_agent import TriggerService
from pipeline.trigger_agent import register as register_trigger

log = logging.getLogger(__name__)

ROLES = frozenset({"executor", "sinks"})
HELD = HeldOffsets()
"""Offsets delivered to this process and not yet acknowledged (see pipeline/faust_compat)."""


def app_id_for(broker: BrokerConfig, roles: frozenset[str]) -> str:
    """Workers with different roles subscribe to different topics, so each role set is its
    own consumer group; workers running all roles share the plain app id."""
    return broker.app_id if roles == ROLES else f"{broker.app_id}-{'-'.join(sorted(roles))}"


def build_app(broker: BrokerConfig, *, roles: Iterable[str], database_url: str,
              executor: ExecutorConfig | None = None) -> faust.App:
    """The faust app with the executor role (when asked) and the worker's heartbeat;
    nothing here runs until the worker starts."""
    roles = frozenset(roles)
    unknown = roles - ROLES
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}; choose from {sorted(ROLES)}")
    shorten_fetch_wait(broker.fetch_max_wait_ms)
    guard_commit_gaps(HELD)
    app = faust.App(app_id_for(broker, roles),
                    **broker.faust_settings(produce_timeout_s=PRODUCE_TIMEOUT_S))
    metrics = EngineMetrics.default()
    metrics.track_consumer_lag(faust_consumer_lag(app))
    worker_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    app.service(Heartbeat(database_url, worker_id, roles))  # type: ignore[arg-type]
    if "executor" in roles:
        if executor is None:
            raise ValueError("the executor role needs an ExecutorConfig")
        engine = Engine(app, executor, metrics=metrics, owner=worker_id, held=HELD)
        _executor_agents(app, engine)
        trigger = TriggerService(app, engine, executor, partitions=broker.orders_partitions,
                                 metrics=metrics)
        register_trigger(app, trigger)
    return app


def _executor_agents(app: faust.App, engine: Engine) -> None:
    app.service(engine)  # type: ignore[arg-type]
    orders_topic = app.topic(topics.ORDERS, key_type=bytes, value_type=bytes)

    @app.agent(orders_topic, name="execute-orders")
    async def execute_orders(stream: StreamT[bytes]) -> None:
        async for ev in stream.noack().events():  # type: ignore[attr-defined]
            await engine.slots.acquire()
            engine.spawn(ev, retry=False)

    retry_topics = app.topic(*(topics.retry_topic(d) for d in topics.RETRY_DELAYS_MS),
                             key_type=bytes, value_type=bytes)

    @app.agent(retry_topics, name="retry-orders")
    async def retry_orders(stream: StreamT[bytes]) -> None:
        # Each retry waits for its due time in its own task: a retry never blocks live
        # orders, and never runs early.
        async for ev in stream.noack().events():  # type: ignore[attr-defined]
            await engine.retry_slots.acquire()
            engine.spawn(ev, retry=True)
