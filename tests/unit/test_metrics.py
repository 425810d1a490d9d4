"""pipeline.metrics: names and labels follow the conventions, the API records what it says,
the consumer-lag collector and the instrumented edges behave, nothing raises into callers."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import pipeline.metrics as metrics_module
from pipeline.errors import RpcUnavailable, VenueUnavailable
from pipeline.faust_compat import faust_consumer_lag
from pipeline.instrumented import InstrumentedChain, InstrumentedVenues
from pipeline.lifecycle import OrderStatus
from pipeline.metrics import (
    RPC_METHODS,
    STAGES,
    STATUSES,
    EngineMetrics,
)
from pipeline.model import Quote, Venue
from pipeline.reconcile import TxBalances
from pipeline.venues import SwapTransaction

ALLOWED_LABELS = {"source", "status", "stage", "venue", "best_venue", "code", "level", "reason",
                  "method", "group", "topic", "partition", "op"}


@pytest.fixture
def m() -> EngineMetrics:
    return EngineMetrics(CollectorRegistry())


def value(m: EngineMetrics, name: str, **labels: str) -> float:
    got = m.registry.get_sample_value(name, labels)
    return 0.0 if got is None else got


def test_every_metric_follows_the_naming_conventions(m: EngineMetrics) -> None:
    families = list(m.registry.collect())
    assert len(families) >= 18
    for family in families:
        assert family.name.startswith("orderflow_"), family.name
        assert re.fullmatch(r"[a-z][a-z0-9_]*", family.name), family.name
        assert family.documentation, family.name
        if family.type == "counter":
            assert not family.name.endswith("_total")  # the client appends it to samples
        if family.type == "histogram":
            assert family.name.endswith(("_seconds", "_events", "_orders", "_bps")), family.name
        assert "milliseconds" not in family.name and "_ms" not in family.name
    text = generate_latest(m.registry).decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            assert set(sample.labels) - {"le"} <= ALLOWED_LABELS, sample
            if family.type == "counter" and not sample.name.endswith("_created"):
                assert sample.name.endswith("_total"), sample.name


def test_the_module_docstring_documents_every_metric(m: EngineMetrics) -> None:
    doc = metrics_module.__doc__ or ""
    for family in m.registry.collect():
        short = family.name.removeprefix("orderflow_")
        if family.type == "counter":
            short += "_total"
        assert re.search(rf"``{re.escape(short)}(\{{|``)", doc), f"{short} is not documented"


def test_known_label_values_start_at_zero(m: EngineMetrics) -> None:
    for status in STATUSES:
        assert m.registry.get_sample_value("orderflow_order_transitions_total",
                                           {"status": status}) == 0
    for stage in STAGES:
        assert m.registry.get_sample_value("orderflow_order_stage_seconds_count",
                                           {"stage": stage}) == 0
    for venue in ("raydium", "meteora"):
        assert m.registry.get_sample_value("orderflow_venue_chosen_total", {"venue": venue}) == 0
    for method in RPC_METHODS:
        assert m.registry.get_sample_value("orderflow_rpc_request_seconds_count",
                                           {"method": method}) == 0
    assert m.registry.get_sample_value("orderflow_order_end_to_end_seconds_count") == 0


def test_orders_and_transitions(m: EngineMetrics) -> None:
    m.order_received("http")
    m.order_received("kafka")
    m.order_received("kafka")
    m.order_received("carrier-pigeon")
    m.transition(OrderStatus.CONFIRMED)
    m.transition("failed")
    m.transition("exploded")
    assert value(m, "orderflow_orders_received_total", source="http") == 1
    assert value(m, "orderflow_orders_received_total", source="kafka") == 2
    assert value(m, "orderflow_orders_received_total", source="other") == 1
    assert value(m, "orderflow_order_transitions_total", status="confirmed") == 1
    assert value(m, "orderflow_order_transitions_total", status="failed") == 1
    assert value(m, "orderflow_order_transitions_total", status="other") == 1


def test_latencies_land_in_their_buckets(m: EngineMetrics) -> None:
    m.end_to_end(1.2)
    m.end_to_end(-3)  # a clock step never yields a negative observation
    m.stage("confirm", 0.4)
    m.stage("routing", 0.004)
    assert value(m, "orderflow_order_end_to_end_seconds_count") == 2
    assert value(m, "orderflow_order_end_to_end_seconds_bucket", le="1.5") == 2
    assert value(m, "orderflow_order_end_to_end_seconds_bucket", le="1.0") == 1
    assert value(m, "orderflow_order_stage_seconds_bucket", stage="confirm", le="0.5") == 1
    assert value(m, "orderflow_order_stage_seconds_bucket", stage="confirm", le="0.25") == 0
    assert value(m, "orderflow_order_stage_seconds_sum", stage="routing") == pytest.approx(0.004)


def test_venues(m: EngineMetrics) -> None:
    m.quote(Venue.RAYDIUM, 0.02)
    m.quote("meteora", 5.0, "venue_timeout")
    m.venue_chosen(Venue.RAYDIUM)
    m.quote_spread(Venue.RAYDIUM, 12)
    m.quote_spread("meteora", None)  # one venue quoted: no spread
    assert value(m, "orderflow_venue_quote_seconds_count", venue="raydium") == 1
    assert value(m, "orderflow_venue_quote_seconds_count", venue="meteora") == 1
    assert value(m, "orderflow_venue_quote_errors_total", venue="meteora",
                 code="venue_timeout") == 1
    assert value(m, "orderflow_venue_chosen_total", venue="raydium") == 1
    assert value(m, "orderflow_venue_quote_spread_bps_bucket", best_venue="raydium",
                 le="20.0") == 1
    assert value(m, "orderflow_venue_quote_spread_bps_count", best_venue="meteora") == 0


def test_reliability_and_sinks(m: EngineMetrics) -> None:
    m.retry(2000, "rpc_unavailable")
    m.retry(8000, "rpc_unavailable")  # not a retry topic
    m.dead_letter("slippage_exceeded")
    m.dead_letter("")
    m.dead_letter("a message with spaces, not a code")
    m.sink_batch(37, 0.012)
    m.sink_write_error()
    assert value(m, "orderflow_order_retries_total", level="2000", reason="rpc_unavailable") == 1
    assert value(m, "orderflow_order_retries_total", level="other", reason="rpc_unavailable") == 1
    assert value(m, "orderflow_dead_letters_total", reason="slippage_exceeded") == 1
    assert value(m, "orderflow_dead_letters_total", reason="unknown") == 1
    assert value(m, "orderflow_dead_letters_total", reason="other") == 1
    assert value(m, "orderflow_sink_batch_events_bucket", le="50.0") == 1
    assert value(m, "orderflow_sink_batch_events_bucket", le="25.0") == 0
    assert value(m, "orderflow_sink_write_seconds_count") == 1
    assert value(m, "orderflow_sink_write_errors_total") == 1
    m.journal_batch("advance", 7)
    m.journal_batch("bogus", 1)
    assert value(m, "orderflow_journal_batch_orders_bucket", op="advance", le="10.0") == 1
    assert value(m, "orderflow_journal_batch_orders_bucket", op="advance", le="5.0") == 0
    assert value(m, "orderflow_journal_batch_orders_count", op="other") == 1


def test_rpc(m: EngineMetrics) -> None:
    m.rpc("getSignatureStatuses", 0.003)
    m.rpc("sendTransaction", 0.05, "transaction_failed")
    m.rpc("getFoo", 0.01)
    assert value(m, "orderflow_rpc_request_seconds_count", method="getSignatureStatuses") == 1
    assert value(m, "orderflow_rpc_errors_total", method="sendTransaction",
                 code="transaction_failed") == 1
    assert value(m, "orderflow_rpc_request_seconds_count", method="other") == 1


def test_gauges_read_at_scrape_time(m: EngineMetrics) -> None:
    tasks = {1, 2, 3}
    m.track_in_flight(lambda: len(tasks), lambda: 7)
    assert value(m, "orderflow_orders_in_flight") == 3
    tasks.clear()
    assert value(m, "orderflow_orders_in_flight") == 0
    assert value(m, "orderflow_confirmations_pending") == 7


# ---- consumer lag ----

def test_consumer_lag_is_read_from_the_source_at_each_scrape(m: EngineMetrics) -> None:
    assert "orderflow_consumer_lag_messages{" not in generate_latest(m.registry).decode()
    readings = [("of", "orders", 0, 3), ("of", "orders", 1, 0), ("of-sinks", "order-status", 2, -4)]
    m.track_consumer_lag(lambda: readings)
    lag = "orderflow_consumer_lag_messages"
    assert value(m, lag, group="of", topic="orders", partition="0") == 3
    assert value(m, lag, group="of", topic="orders", partition="1") == 0
    assert value(m, lag, group="of-sinks", topic="order-status", partition="2") == 0
    readings[0] = ("of", "orders", 0, 10)
    assert value(m, lag, group="of", topic="orders", partition="0") == 10


def test_a_failing_lag_source_yields_no_samples_and_never_raises(
        m: EngineMetrics, caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> list[tuple[str, str, int, int]]:
        raise RuntimeError("consumer is rebalancing")
    m.track_consumer_lag(broken)
    text = generate_latest(m.registry).decode()
    assert "# TYPE orderflow_consumer_lag_messages gauge" in text
    assert "orderflow_consumer_lag_messages{" not in text
    generate_latest(m.registry)
    assert sum("consumer lag could not be read" in r.message for r in caplog.records) == 1


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


@dataclass
class FakeConsumer:
    assigned: set[TP]
    highwaters: dict[TP, int | None]
    _committed_offset: dict[TP, int | None] = field(default_factory=dict)
    _read_offset: dict[TP, int | None] = field(default_factory=dict)

    def assignment(self) -> set[TP]:
        return set(self.assigned)

    def highwater(self, tp: TP) -> int | None:
        if tp not in self.highwaters:
            raise AssertionError("partition is not assigned")  # as aiokafka does
        return self.highwaters[tp]


@dataclass
class FakeConf:
    id: str = "orderflow"


@dataclass
class FakeApp:
    _consumer: Any = None
    conf: FakeConf = field(default_factory=FakeConf)


def test_faust_consumer_lag_uses_highwater_minus_committed() -> None:
    a, b, c, d = TP("orders", 0), TP("orders", 1), TP("order-status", 3), TP("orders", 2)
    consumer = FakeConsumer(
        assigned={a, b, c, d, TP("orders", 9)},
        highwaters={a: 120, b: 50, c: None, d: 10},
        _committed_offset={a: 100, b: None, d: None},
        _read_offset={b: 44})
    app = FakeApp(consumer)
    source = faust_consumer_lag(app)
    # a: committed; b: never committed, read up to 44; c: not fetched yet; d: nothing known;
    # orders[9]: revoked between assignment() and highwater().
    assert sorted(source()) == [("orderflow", "orders", 0, 20), ("orderflow", "orders", 1, 5)]
    assert list(faust_consumer_lag(FakeApp(None))()) == []


# ---- instrumented edges ----

class FakeVenues:
    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail

    async def quote(self, venue: Venue, input_mint: str, output_mint: str, amount: int,
                    slippage_bps: int) -> Quote:
        await asyncio.sleep(0)
        if self.fail is not None:
            raise self.fail
        return Quote(venue, amount, amount * 2, 0, "fee-mint", "0", "amm", 1)

    async def swap_transaction(self, quote: Quote, user_public_key: str, *,
                               memo: str | None = None,
                               priority_fee_micro_lamports: int | None = None
                               ) -> SwapTransaction:
        return SwapTransaction(b"tx", 99)


async def test_instrumented_venues_time_every_quote(m: EngineMetrics) -> None:
    ok = InstrumentedVenues(FakeVenues(), m)
    quote = await ok.quote(Venue.METEORA, "a", "b", 10, 50)
    assert quote.out_amount == 20
    assert (await ok.swap_transaction(quote, "me")).last_valid_block_height == 99
    bad = InstrumentedVenues(FakeVenues(VenueUnavailable("venue_timeout", "slow")), m)
    with pytest.raises(VenueUnavailable):
        await bad.quote(Venue.RAYDIUM, "a", "b", 10, 50)
    boom = InstrumentedVenues(FakeVenues(KeyError("x")), m)
    with pytest.raises(KeyError):
        await boom.quote(Venue.RAYDIUM, "a", "b", 10, 50)
    assert value(m, "orderflow_venue_quote_seconds_count", venue="meteora") == 1
    assert value(m, "orderflow_venue_quote_seconds_count", venue="raydium") == 2
    assert value(m, "orderflow_venue_quote_errors_total", venue="raydium",
                 code="venue_timeout") == 1
    assert value(m, "orderflow_venue_quote_errors_total", venue="raydium",
                 code="internal_error") == 1


class FakeChain:
    def __init__(self) -> None:
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise RpcUnavailable(message="connection refused")

    async def send(self, tx: Any) -> str:
        self._check()
        return "sig"

    async def resend(self, tx_bytes: bytes) -> None:
        self._check()

    async def block_height(self) -> int:
        self._check()
        return 42

    async def statuses(self, signatures: Sequence[str]) -> list[tuple[int, str | None, int] | None]:
        self._check()
        return [None for _ in signatures]

    async def balances(self, signature: str) -> TxBalances:
        self._check()
        return TxBalances([], 5000, "payer", [], [], [], [])


async def test_instrumented_chain_times_every_call_by_method(m: EngineMetrics) -> None:
    inner = FakeChain()
    chain = InstrumentedChain(inner, m)
    assert await chain.send(object()) == "sig"  # type: ignore[arg-type]
    await chain.resend(b"tx")
    assert await chain.block_height() == 42
    assert await chain.statuses(["a", "b"]) == [None, None]
    assert (await chain.balances("sig")).fee == 5000
    inner.down = True
    with pytest.raises(RpcUnavailable):
        await chain.statuses(["a"])
    assert value(m, "orderflow_rpc_request_seconds_count", method="sendTransaction") == 2
    assert value(m, "orderflow_rpc_request_seconds_count", method="getBlockHeight") == 1
    assert value(m, "orderflow_rpc_request_seconds_count", method="getTransaction") == 1
    assert value(m, "orderflow_rpc_request_seconds_count", method="getSignatureStatuses") == 2
    assert value(m, "orderflow_rpc_errors_total", method="getSignatureStatuses",
                 code="rpc_unavailable") == 1


async def test_a_cancelled_call_is_not_counted_as_an_error(m: EngineMetrics) -> None:
    entered = asyncio.Event()

    class Hanging(FakeChain):
        async def block_height(self) -> int:
            entered.set()
            await asyncio.Event().wait()  # never answers
            return 0

    chain = InstrumentedChain(Hanging(), m)
    task = asyncio.ensure_future(chain.block_height())
    await entered.wait()  # the call is in flight
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert value(m, "orderflow_rpc_request_seconds_count", method="getBlockHeight") == 0


def test_default_is_one_instance_on_the_default_registry() -> None:
    from prometheus_client import REGISTRY

    first = EngineMetrics.default()
    assert EngineMetrics.default() is first
    assert first.registry is REGISTRY
    assert REGISTRY.get_sample_value("orderflow_order_transitions_total",
                                     {"status": "pending"}) is not None
