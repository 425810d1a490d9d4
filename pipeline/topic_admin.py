"""Creating the topics :mod:`pipeline.topics` declares: explicit, checked, idempotent.

Production code (the worker and the ingress create their topics at start), so it lives
with the topics, not with the embedded infrastructure. Producing to a topic that does
not exist would auto-create it on some brokers (Tansu: with ONE partition), so every
topic is created first, and an existing topic with another partition count is an error:
changing it would move keys between partitions.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from pipeline.errors import ConfigError

if TYPE_CHECKING:
    from aiokafka.admin import AIOKafkaAdminClient

log = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = 36


class TopicSpecLike(Protocol):
    """What :func:`create_topics` needs of a spec (``pipeline.topics.TopicSpec`` fits).

    Optional attributes read when present: ``retention_ms`` (int), ``replication``
    (int, default 1), ``config`` (mapping of extra topic configs).
    """

    @property
    def name(self) -> str: ...

    @property
    def partitions(self) -> int: ...


def _topic_config(spec: TopicSpecLike) -> dict[str, str]:
    config: dict[str, str] = {}
    retention = getattr(spec, "retention_ms", None)
    if retention is not None:
        config["retention.ms"] = str(int(retention))
    extra: Mapping[str, Any] | None = getattr(spec, "config", None)
    if extra:
        config.update({str(k): str(v) for k, v in extra.items()})
    return config


async def create_topics(
    bootstrap: str, specs: Iterable[TopicSpecLike], *, timeout_s: float = 30.0
) -> None:
    """Create every topic explicitly (already existing is fine) and verify its partitions.

    Raises :class:`ConfigError` if the broker refuses a topic, or if a topic exists
    with a different partition count than asked for (partitions are never changed
    here: that would move keys between partitions).
    """
    from aiokafka.admin import AIOKafkaAdminClient

    wanted = {spec.name: spec for spec in specs}
    if not wanted:
        return
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15_000)
    await admin.start()
    try:
        await _create(admin, wanted, timeout_s)
        await _await_leaders(admin, wanted, timeout_s)
    finally:
        await admin.close()


async def _create(admin: AIOKafkaAdminClient, wanted: Mapping[str, TopicSpecLike],
                  timeout_s: float) -> None:
    from aiokafka.admin import NewTopic

    new = [
        NewTopic(
            name,
            spec.partitions,
            int(getattr(spec, "replication", 1) or 1),
            topic_configs=_topic_config(spec),
        )
        for name, spec in wanted.items()
    ]
    response = await admin.create_topics(new, timeout_ms=int(timeout_s * 1000))
    for entry in response.topic_errors:
        name, code = entry[0], entry[1]
        message = entry[2] if len(entry) > 2 else None
        if code == 0:
            log.info("created topic %s (%d partitions)", name, wanted[name].partitions)
        elif code != TOPIC_ALREADY_EXISTS:
            raise ConfigError(
                message=f"creating topic {name!r} failed: error {code} {message or ''}".strip()
            )


async def _await_leaders(admin: AIOKafkaAdminClient, wanted: Mapping[str, TopicSpecLike],
                         timeout_s: float) -> None:
    """Metadata can lag creation on a real cluster: poll until every partition has a
    leader, with a deadline; a partition count other than wanted is an error."""
    end = time.monotonic() + timeout_s
    while True:
        described = await admin.describe_topics(list(wanted))
        pending: list[str] = []
        for topic in described:
            name = topic["topic"]
            parts = [p for p in topic["partitions"] if p.get("leader", -1) >= 0]
            want = wanted[name].partitions
            if topic["error_code"] != 0 or len(parts) < len(topic["partitions"]):
                pending.append(name)
            elif len(topic["partitions"]) != want:
                raise ConfigError(
                    message=f"topic {name!r} exists with {len(topic['partitions'])} "
                    f"partitions, not {want}: delete it or set the partition count to match"
                )
        if not pending:
            return
        if time.monotonic() > end:
            raise ConfigError(
                message=f"topics {pending} have no leader for every partition "
                f"after {timeout_s:.0f}s"
            )
        await asyncio.sleep(0.1)
