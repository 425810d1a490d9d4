"""Topic names and their shape: the one place that says which topics exist.

Every topic is created explicitly at start (faust only auto-creates its own
internal topics), with the partition counts from settings.
"""

from __future__ import annotations

from dataclasses import dataclass

ORDERS = "orders"
ORDER_STATUS = "order-status"
RETRY_DELAYS_MS: tuple[int, ...] = (1000, 2000, 4000)
DEAD_LETTERS = "orders-dlt"
OPEN_ORDERS = "open-orders"
"""Open conditional orders, keyed and partitioned by token pair (pipeline/trigger_agent)."""


def retry_topic(delay_ms: int) -> str:
    return f"orders-retry-{delay_ms}"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    retention_ms: int = 7 * 24 * 3600 * 1000


def topic_specs(orders_partitions: int, status_partitions: int) -> tuple[TopicSpec, ...]:
    return (
        TopicSpec(ORDERS, orders_partitions),
        TopicSpec(ORDER_STATUS, status_partitions),
        *(TopicSpec(retry_topic(d), orders_partitions) for d in RETRY_DELAYS_MS),
        TopicSpec(DEAD_LETTERS, 1, retention_ms=30 * 24 * 3600 * 1000),
        TopicSpec(OPEN_ORDERS, orders_partitions),
    )
