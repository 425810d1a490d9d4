"""A minimal faust-streaming app that ``tests/integration/test_broker.py`` runs as a worker.

Run it as ``python -m tests.faust_probe_app worker -l info`` with the environment:

``PROBE_BROKER``     bootstrap ``host:port``
``PROBE_APP_ID``     faust app id (= consumer group id)
``PROBE_TOPIC``      source topic (created beforehand by the test)
``PROBE_OUT``        file to append one ``key partition offset`` line per processed record
``PROBE_SESSION_S``  broker session timeout in seconds (default 2)

The app is built by :func:`build_app` so nothing happens at import time; the module only
builds it under ``__main__``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TextIO

import faust


def build_app(
    *,
    app_id: str,
    bootstrap: str,
    topic: str,
    out_path: Path,
    session_timeout_s: float = 2.0,
    rebalance_timeout_s: float = 3.0,
) -> faust.App:
    """A faust app whose single agent records every event of ``topic`` into ``out_path``.

    The settings here are the ones that matter against Tansu (see the docstring of
    ``tests/integration/test_broker.py``).
    """
    app = faust.App(
        app_id,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        datadir=str(out_path.parent / f"{app_id}-data"),  # default is ./<id>-data in the cwd
        web_enabled=False,
        # Tansu holds every JoinGroup for about session_timeout / 2 (never less than ~1 s),
        # and evicts a dead member after session_timeout: faust's 60 s default means a
        # 30 s wait on every rebalance.
        broker_session_timeout=session_timeout_s,
        broker_heartbeat_interval=min(0.5, session_timeout_s / 4),
        broker_rebalance_timeout=rebalance_timeout_s,
        broker_request_timeout=max(30.0, session_timeout_s * 2),
        broker_commit_interval=0.5,
        consumer_auto_offset_reset="earliest",
        topic_replication_factor=1,
        topic_allow_declare=False,  # the test creates the topic explicitly
        topic_disable_leader=True,  # no "<id>-__assignor-__leader" topic
        processing_guarantee="at_least_once",  # exactly_once needs transactions: not on Tansu
    )
    source = app.topic(
        topic,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    out: TextIO = out_path.open("a", buffering=1, encoding="utf-8")

    @app.agent(source)
    async def record(stream: Any) -> None:
        async for event in stream.events():
            key = event.key.decode() if isinstance(event.key, bytes) else str(event.key)
            out.write(f"{key} {event.message.partition} {event.message.offset}\n")

    @app.on_partitions_assigned.connect
    async def on_assigned(_app: Any, assigned: Any, *, signal: Any, **_: Any) -> None:
        out.write(f"#assigned {sorted(tp.partition for tp in assigned)}\n")

    return app


def _from_env() -> faust.App:
    env = os.environ
    return build_app(
        app_id=env["PROBE_APP_ID"],
        bootstrap=env["PROBE_BROKER"],
        topic=env["PROBE_TOPIC"],
        out_path=Path(env["PROBE_OUT"]),
        session_timeout_s=float(env.get("PROBE_SESSION_S", "2")),
    )


if __name__ == "__main__":
    _from_env().main()
