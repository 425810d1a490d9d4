"""Prometheus metrics of one ingress instance, in their own registry so apps never collide."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class IngressMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.orders_accepted = Counter(
            "orderflow_ingress_orders_accepted", "Orders acknowledged by the broker, by source",
            ["source"], registry=r)
        self.orders_rejected = Counter(
            "orderflow_ingress_orders_rejected", "Order submissions refused, by error code",
            ["code"], registry=r)
        self.ws_clients = Gauge(
            "orderflow_ingress_ws_clients", "Open WebSocket connections", registry=r)
        self.ws_messages_sent = Counter(
            "orderflow_ingress_ws_messages_sent", "Messages sent to WebSocket clients",
            registry=r)
        self.ws_clients_dropped = Counter(
            "orderflow_ingress_ws_clients_dropped", "WebSocket clients closed for being too slow",
            registry=r)
        self.status_events = Counter(
            "orderflow_ingress_status_events", "Status events consumed from order-status",
            registry=r)
        self.status_decode_errors = Counter(
            "orderflow_ingress_status_decode_errors",
            "order-status records that could not be decoded (skipped)", registry=r)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
