"""Every Prometheus metric of the worker (executor and sink roles), behind a small typed API.

The worker serves these on ``ORDERFLOW_WORKER_METRICS_PORT`` (``/metrics``,
:func:`prometheus_client.start_http_server` on the default registry, started by
``orderflow worker``). Ingress metrics (``orderflow_ingress_*``) live in
:mod:`ingress.metrics`. ``docs/metrics.md`` maps each dashboard panel to its metric.

Naming follows Prometheus conventions: base units (seconds), ``_total`` for counters,
and no label ever carries a per-order value (order id, signature, wallet): every
label below takes a small, bounded set of values.

Metrics (all prefixed ``orderflow_``)
-------------------------------------
``orders_received_total{source}``                    counter
    Orders whose first attempt started on a worker, by where they were submitted:
    ``http``, ``ws`` (through ingress) or ``kafka`` (a foreign producer); anything else
    is counted as ``other``. Redeliveries and retries are not counted again.
``order_transitions_total{status}``                  counter
    Status events published, by the status entered: ``pending``, ``routing``,
    ``building``, ``submitted``, ``confirmed``, ``failed``. ``confirmed`` + ``failed`` is
    the throughput of finished orders; a retry re-enters ``pending``.
``order_end_to_end_seconds``                         histogram
    From the order's ``submittedAt`` (ingress acceptance, or the producer's timestamp)
    to ``confirmed``, retries and back-off included.
``order_stage_seconds{stage}``                       histogram
    Time spent in one stage of one attempt: ``routing`` (quote both venues, choose),
    ``building`` (swap transaction, sign, journal), ``submit`` (``sendTransaction``),
    ``confirm`` (until the commitment is reached and balances are read).
``venue_quote_seconds{venue}``                       histogram
    Latency of one quote request to ``raydium`` / ``meteora``, successful or not.
``venue_quote_errors_total{venue,code}``             counter
    Quote requests that failed, by the engine's stable error code
    (``venue_unavailable``, ``venue_timeout``, ``no_route``, ...).
``venue_chosen_total{venue}``                        counter
    Orders routed to each venue (the best net output).
``venue_quote_spread_bps{best_venue}``               histogram
    How much better the chosen venue's quote was than the other's, in basis points of the
    worse one (:func:`pipeline.routing.spread_bps`); observed only when both venues quoted.
    Basis points rather than a ratio because every price tolerance in this system
    (``slippageBps``) is expressed in them.
``order_retries_total{level,reason}``                counter
    Attempts rescheduled on a retry topic: ``level`` is the topic's back-off in ms
    (``1000``, ``2000``, ``4000`` for ``orders-retry-{level}``), ``reason`` the
    transient error code that ended the attempt.
``dead_letters_total{reason}``                       counter
    Messages written to ``orders-dlt``: failed orders and unreadable messages, by error
    code (``slippage_exceeded``, ``no_route``, ``malformed_json``, ...).
``sink_batch_events``                                histogram
    Status events per PostgreSQL write (one transaction).
``sink_write_seconds``                               histogram
    Time to commit one sink batch, retries of a failed write included.
``sink_write_errors_total``                          counter
    Sink writes that failed and were retried.
``journal_batch_orders{op}``                          histogram
    Orders per execution-journal statement (group commit), by ``op`` (``claim``,
    ``advance``, ``record``, ``confirm``): 1 when idle, larger under load.
``rpc_request_seconds{method}``                      histogram
    Solana JSON-RPC call latency by method (``sendTransaction``, ``getBlockHeight``,
    ``getSignatureStatuses``, ``getTransaction``), successful or not.
``rpc_errors_total{method,code}``                    counter
    Solana JSON-RPC calls that failed, by method and error code (``rpc_unavailable``,
    ``transaction_failed``, ``slippage_exceeded``, ...).
``consumer_lag_messages{group,topic,partition}``     gauge
    Per partition assigned to this worker: log end offset (highwater) minus the
    consumer group's committed offset. Read at scrape time from a callable
    (:meth:`EngineMetrics.track_consumer_lag`, :func:`faust_consumer_lag`).
``orders_in_flight``                                 gauge
    Orders executing in this worker right now (bounded by ``ORDERFLOW_MAX_IN_FLIGHT``).
``confirmations_pending``                            gauge
    Signatures the batched confirmation watcher is waiting on.
``orders_held``                                      gauge
    Orders held unacknowledged because the journal or the broker does not answer; they
    run again when it is back (never failed for it).
``engine_unavailable_total{code}``                   counter
    Order runs stopped by ``journal_unavailable`` or ``broker_unavailable``.
``orders_recovered_from_chain_total``                counter
    Orders whose landed swap was found on chain by its memo with no journal record of
    it: each one a second swap prevented, and a sign that the journal lost rows.

Buckets are chosen for this system: quotes and RPC calls take milliseconds to a few
seconds (timeouts 5 s and 10 s), a stage up to tens of seconds (``confirm`` waits for
the commitment: ~0.4-1 s per slot on Solana, up to the blockhash expiry of ~60-90 s),
and an order end to end up to minutes when retries back off.

Recording never raises into the caller: an unexpected label value is mapped to
``other`` instead, so a metrics mistake cannot fail an order.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

from pipeline.lifecycle import OrderStatus
from pipeline.model import Venue
from pipeline.topics import RETRY_DELAYS_MS

log = logging.getLogger(__name__)

NAMESPACE = "orderflow"
OTHER = "other"

SOURCES = ("http", "ws", "kafka")
STATUSES = tuple(s.value for s in OrderStatus)
STAGES = ("routing", "building", "submit", "confirm")
VENUES = tuple(v.value for v in Venue)
RETRY_LEVELS = tuple(str(d) for d in RETRY_DELAYS_MS)
RPC_METHODS = ("sendTransaction", "getBlockHeight", "getSignatureStatuses", "getTransaction",
               "getSignaturesForAddress", "getBalance")
JOURNAL_OPS = ("claim", "advance", "record", "confirm")

# Seconds. One request (quote, RPC call): 1 ms .. 10 s (the clients' timeouts).
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0)
# Seconds. One stage of one attempt: 1 ms .. 90 s (a blockhash lives ~60-90 s).
STAGE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0,
                 30.0, 60.0, 90.0)
# Seconds. Submit -> confirmed: 50 ms .. 5 min (three attempts with back-off).
END_TO_END_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0,
                      20.0, 30.0, 60.0, 120.0, 300.0)
# Seconds. One PostgreSQL batch commit: 1 ms .. 30 s (with retries).
SINK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                30.0)
# Events per sink batch (max_batch is 500).
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500)
# Basis points between the two venues' quotes.
SPREAD_BUCKETS = (1, 2, 5, 10, 20, 30, 50, 75, 100, 200, 500, 1000)

LagReading = tuple[str, str, int, int]
"""(consumer group, topic, partition, lag in messages) of one assigned partition."""
LagSource = Callable[[], Iterable[LagReading]]


def _name(name: str) -> str:
    return f"{NAMESPACE}_{name}"


def _one_of(value: object, allowed: Sequence[str]) -> str:
    text = str(value.value if isinstance(value, Venue | OrderStatus) else value)
    return text if text in allowed else OTHER


def _code(code: str | None) -> str:
    """Error codes are a bounded, stable set (:mod:`pipeline.errors`); guard the format."""
    if not code:
        return "unknown"
    if len(code) > 64 or not code.replace("_", "").isalnum():
        return OTHER
    return code


class ConsumerLagCollector:
    """``orderflow_consumer_lag_messages{group,topic,partition}``, read at scrape time.

    The source is a callable returning ``(group, topic, partition, lag)`` for each
    partition this worker is assigned; it runs on the metrics server's thread, so it must
    only read.
    A failing source yields no samples (and is logged once per distinct error).
    """

    name = _name("consumer_lag_messages")
    documentation = ("Messages not yet committed by this worker's consumer group: "
                     "highwater minus committed offset, per assigned partition")

    def __init__(self) -> None:
        self.source: LagSource | None = None
        self._last_error: str | None = None

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self.name, self.documentation,
                                 labels=["group", "topic", "partition"])

    def describe(self) -> Iterator[Metric]:
        yield self._family()

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        source = self.source
        if source is not None:
            try:
                readings = {(str(g), str(t), int(p)): max(0, int(lag))
                            for g, t, p, lag in source()}
            except Exception as exc:
                text = f"{type(exc).__name__}: {exc}"
                if text != self._last_error:
                    log.warning("consumer lag could not be read: %s", text)
                self._last_error = text
            else:
                self._last_error = None
                for (group, topic, partition), lag in sorted(readings.items()):
                    family.add_metric([group, topic, str(partition)], lag)
        yield family


class EngineMetrics:
    """The worker's metrics on one registry (``None``: the default, which the worker serves).

    Create it once per registry: use :meth:`default` in the worker process, a fresh
    ``CollectorRegistry()`` in tests.
    """

    _default: EngineMetrics | None = None
    _default_lock = threading.Lock()

    @classmethod
    def default(cls) -> EngineMetrics:
        """The process-wide instance on prometheus_client's default registry."""
        with cls._default_lock:
            if cls._default is None:
                cls._default = cls(REGISTRY)
            return cls._default

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else REGISTRY
        r = self.registry
        self.orders_received = Counter(
            _name("orders_received"), "Orders whose first attempt started, by submission source",
            ["source"], registry=r)
        self.transitions = Counter(
            _name("order_transitions"), "Order status events published, by status entered",
            ["status"], registry=r)
        self.end_to_end_seconds = Histogram(
            _name("order_end_to_end_seconds"),
            "Time from submission to confirmed, retries included",
            buckets=END_TO_END_BUCKETS, registry=r)
        self.stage_seconds = Histogram(
            _name("order_stage_seconds"), "Time spent in one stage of one attempt",
            ["stage"], buckets=STAGE_BUCKETS, registry=r)
        self.quote_seconds = Histogram(
            _name("venue_quote_seconds"), "Latency of one venue quote request, by venue",
            ["venue"], buckets=REQUEST_BUCKETS, registry=r)
        self.quote_errors = Counter(
            _name("venue_quote_errors"), "Venue quote requests that failed, by venue and code",
            ["venue", "code"], registry=r)
        self.venues_chosen = Counter(
            _name("venue_chosen"), "Orders routed to each venue", ["venue"], registry=r)
        self.quote_spread_bps = Histogram(
            _name("venue_quote_spread_bps"),
            "How much better the chosen venue quoted than the other, in basis points",
            ["best_venue"], buckets=SPREAD_BUCKETS, registry=r)
        self.retries = Counter(
            _name("order_retries"),
            "Attempts rescheduled on a retry topic, by back-off level (ms) and reason",
            ["level", "reason"], registry=r)
        self.dead_letters = Counter(
            _name("dead_letters"), "Messages written to orders-dlt, by reason", ["reason"],
            registry=r)
        self.sink_batch_events = Histogram(
            _name("sink_batch_events"), "Status events per PostgreSQL sink write",
            buckets=BATCH_BUCKETS, registry=r)
        self.sink_write_seconds = Histogram(
            _name("sink_write_seconds"), "Time to commit one sink batch, retries included",
            buckets=SINK_BUCKETS, registry=r)
        self.sink_write_errors = Counter(
            _name("sink_write_errors"), "PostgreSQL sink writes that failed (and were retried)",
            registry=r)
        self.journal_batch_orders = Histogram(
            _name("journal_batch_orders"), "Orders per execution-journal statement, by op",
            ["op"], buckets=BATCH_BUCKETS, registry=r)
        self.rpc_seconds = Histogram(
            _name("rpc_request_seconds"), "Solana JSON-RPC call latency, by method",
            ["method"], buckets=REQUEST_BUCKETS, registry=r)
        self.rpc_errors = Counter(
            _name("rpc_errors"), "Solana JSON-RPC calls that failed, by method and code",
            ["method", "code"], registry=r)
        self.in_flight = Gauge(
            _name("orders_in_flight"), "Orders executing in this worker", registry=r)
        self.confirmations_pending = Gauge(
            _name("confirmations_pending"),
            "Signatures the confirmation watcher is waiting on", registry=r)
        self.recovered = Counter(
            _name("orders_recovered_from_chain"),
            "Orders whose landed swap was found on chain by its memo, with no journal record "
            "of it (each one is a second swap prevented)", registry=r)
        self.orders_held = Gauge(
            _name("orders_held"),
            "Orders held unacknowledged because the journal or the broker is unavailable",
            registry=r)
        self.engine_unavailable = Counter(
            _name("engine_unavailable"),
            "Times an order run stopped because the journal or the broker did not answer",
            ["code"], registry=r)
        self.consumer_lag = ConsumerLagCollector()
        r.register(self.consumer_lag)
        self._initialize()

    def _initialize(self) -> None:
        """Create every known label combination at zero, so ``rate``/``increase`` see the
        first event and dashboards show 0 rather than "no data"."""
        for source in SOURCES:
            self.orders_received.labels(source=source)
        for status in STATUSES:
            self.transitions.labels(status=status)
        for stage in STAGES:
            self.stage_seconds.labels(stage=stage)
        for venue in VENUES:
            self.quote_seconds.labels(venue=venue)
            self.venues_chosen.labels(venue=venue)
            self.quote_spread_bps.labels(best_venue=venue)
        for method in RPC_METHODS:
            self.rpc_seconds.labels(method=method)
        for op in JOURNAL_OPS:
            self.journal_batch_orders.labels(op=op)

    # ---- orders ----

    def order_received(self, source: str) -> None:
        self.orders_received.labels(source=_one_of(source, SOURCES)).inc()

    def transition(self, status: OrderStatus | str) -> None:
        self.transitions.labels(status=_one_of(status, STATUSES)).inc()

    def end_to_end(self, seconds: float) -> None:
        self.end_to_end_seconds.observe(max(0.0, seconds))

    def stage(self, stage: str, seconds: float) -> None:
        """Signature of :class:`pipeline.executor.StageTimer`'s ``observe``."""
        self.stage_seconds.labels(stage=_one_of(stage, STAGES)).observe(max(0.0, seconds))

    # ---- venues ----

    def quote(self, venue: Venue | str, seconds: float, error_code: str | None = None) -> None:
        label = _one_of(venue, VENUES)
        self.quote_seconds.labels(venue=label).observe(max(0.0, seconds))
        if error_code is not None:
            self.quote_errors.labels(venue=label, code=_code(error_code)).inc()

    def venue_chosen(self, venue: Venue | str) -> None:
        self.venues_chosen.labels(venue=_one_of(venue, VENUES)).inc()

    def quote_spread(self, best_venue: Venue | str, bps: int | float | None) -> None:
        """``bps`` from :func:`pipeline.routing.spread_bps`; ``None`` (one quote) is skipped."""
        if bps is not None:
            self.quote_spread_bps.labels(best_venue=_one_of(best_venue, VENUES)).observe(
                max(0.0, float(bps)))

    # ---- reliability ----

    def retry(self, level_ms: int, reason: str) -> None:
        """One attempt rescheduled on ``orders-retry-{level_ms}`` because of ``reason``."""
        self.retries.labels(level=_one_of(level_ms, RETRY_LEVELS), reason=_code(reason)).inc()

    def recovered_from_chain(self) -> None:
        self.recovered.inc()

    def unavailable(self, code: str) -> None:
        self.engine_unavailable.labels(code=_code(code)).inc()

    def dead_letter(self, reason: str) -> None:
        self.dead_letters.labels(reason=_code(reason)).inc()

    # ---- sinks ----

    def sink_batch(self, size: int, seconds: float) -> None:
        self.sink_batch_events.observe(size)
        self.sink_write_seconds.observe(max(0.0, seconds))

    def sink_write_error(self) -> None:
        self.sink_write_errors.inc()

    # ---- execution journal ----

    def journal_batch(self, op: str, calls: int) -> None:
        self.journal_batch_orders.labels(op=_one_of(op, JOURNAL_OPS)).observe(calls)

    # ---- Solana RPC ----

    def rpc(self, method: str, seconds: float, error_code: str | None = None) -> None:
        label = _one_of(method, RPC_METHODS)
        self.rpc_seconds.labels(method=label).observe(max(0.0, seconds))
        if error_code is not None:
            self.rpc_errors.labels(method=label, code=_code(error_code)).inc()

    # ---- read at scrape time ----

    def track_consumer_lag(self, source: LagSource | None) -> None:
        """Read consumer lag from ``source`` at each scrape (replaces any earlier source)."""
        self.consumer_lag.source = source

    def track_in_flight(self, orders: Callable[[], float],
                        confirmations: Callable[[], float] | None = None) -> None:
        """Gauges read at scrape time, e.g. ``lambda: len(engine.tasks)`` and
        ``lambda: watcher.in_flight``; they run on the metrics thread, so only read."""
        self.in_flight.set_function(orders)
        if confirmations is not None:
            self.confirmations_pending.set_function(confirmations)
