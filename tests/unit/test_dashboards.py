"""The Grafana dashboards and the alert rules agree with the metrics the code exports and with
the provisioning, without a running Prometheus or Grafana (test_prometheus_eval.py evaluates
every expression on a real one)."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric

from ingress.metrics import IngressMetrics
from pipeline.metrics import EngineMetrics
from tests.dashboards import (
    ALERTS,
    DEPLOY,
    GRAFANA_VARIABLES,
    all_targets,
    dashboard_files,
    load,
    panels,
    to_promql,
)

PROVISIONING = DEPLOY / "grafana" / "provisioning"


def _sample_names(family: Metric) -> set[str]:
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
                "gauge": ("",), "summary": ("_sum", "_count", "")}[family.type]
    return {family.name + s for s in suffixes}


def exported_series() -> set[str]:
    engine, ingress = CollectorRegistry(), CollectorRegistry()
    EngineMetrics(engine)
    IngressMetrics(ingress)
    names: set[str] = set()
    for registry in (engine, ingress):
        for family in registry.collect():
            names |= _sample_names(family)
    return names


def metric_names(promql: str) -> set[str]:
    """The orderflow_* series an expression reads."""
    return set(re.findall(r"\b(orderflow_[a-z0-9_]+)\b", promql))


def test_dashboards_exist_and_have_queries() -> None:
    assert [p.name for p in dashboard_files()] == ["orderflow.json"]
    assert len(all_targets()) >= 30


def test_every_query_reads_only_series_the_code_exports() -> None:
    exported = exported_series()
    unknown = {f"{t}: {name}" for t in all_targets() for name in metric_names(t.expr)
               if name not in exported}
    assert not unknown, "dashboard queries name series nobody exports:\n" + "\n".join(
        sorted(unknown))


def test_every_alert_reads_only_series_the_code_exports() -> None:
    exported = exported_series()
    unknown = metric_names(ALERTS.read_text()) - exported
    assert not unknown, f"alerts.yml names series nobody exports: {sorted(unknown)}"


def test_every_exported_metric_is_on_the_dashboard() -> None:
    used = {name for t in all_targets() for name in metric_names(t.expr)}
    families = {f.name for f in EngineMetrics(CollectorRegistry()).registry.collect()}
    unused = {f for f in families if not any(u.startswith(f) for u in used)}
    assert not unused, f"worker metrics no panel shows: {sorted(unused)}"


def test_queries_use_only_grafana_builtin_variables() -> None:
    for target in all_targets():
        promql = to_promql(target.expr)  # raises on an unknown variable
        assert "$" not in promql, target
    with pytest.raises(ValueError):
        to_promql("rate(x[$interval])")
    assert set(GRAFANA_VARIABLES) >= {"$__rate_interval", "$__range"}


def test_queries_never_group_by_a_per_order_label() -> None:
    for target in all_targets():
        for forbidden in ("order_id", "orderId", "signature", "tx_hash", "wallet"):
            assert forbidden not in target.expr, target


def _datasource_uid() -> str:
    text = (PROVISIONING / "datasources" / "prometheus.yml").read_text()
    match = re.search(r"^\s*uid:\s*(\S+)\s*$", text, re.M)
    assert match is not None
    return match.group(1)


def test_every_panel_uses_the_provisioned_datasource() -> None:
    uid = _datasource_uid()
    for target in all_targets():
        assert target.datasource_uid == uid, target


def test_panel_layout_is_sound() -> None:
    for path in dashboard_files():
        doc = load(path)
        assert doc["uid"] and doc["title"] and doc["schemaVersion"] >= 36
        assert doc.get("id") is None  # provisioned dashboards must not carry a database id
        every = list(panels(doc))
        ids = Counter(p["id"] for p in every)
        assert all(n == 1 for n in ids.values()), f"duplicate panel ids in {path.name}"
        titles = Counter(p["title"] for p in every if p["type"] != "row")
        assert all(n == 1 for n in titles.values()), f"duplicate panel titles in {path.name}"
        boxes = []
        for p in every:
            g = p["gridPos"]
            assert 0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"]
            boxes.append((p["title"], g["x"], g["y"], g["x"] + g["w"], g["y"] + g["h"]))
            if p["type"] != "row":
                assert p.get("targets"), f"{p['title']} has no query"
                assert {t["refId"] for t in p["targets"]} == {
                    chr(ord("A") + i) for i in range(len(p["targets"]))}
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                overlap = a[1] < b[3] and b[1] < a[3] and a[2] < b[4] and b[2] < a[4]
                assert not overlap, f"panels {a[0]!r} and {b[0]!r} overlap"


def test_the_dashboard_covers_what_operators_asked_for() -> None:
    exprs = " ".join(t.expr for t in all_targets())
    for needle in (
        'orderflow_order_transitions_total{status=~"confirmed|failed"}',  # throughput
        "orderflow_order_end_to_end_seconds_bucket",
        "orderflow_order_stage_seconds_bucket",
        "orderflow_venue_chosen_total",
        "orderflow_venue_quote_spread_bps_bucket",
        "orderflow_order_retries_total",
        "orderflow_dead_letters_total",
        "orderflow_consumer_lag_messages",
        "orderflow_ingress_ws_clients",
        "orderflow_venue_quote_errors_total",
        "orderflow_rpc_errors_total",
    ):
        assert needle in exprs, needle
    for quantile in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({quantile}, sum by (le) (rate(" \
               "orderflow_order_end_to_end_seconds_bucket" in exprs
        assert f"histogram_quantile({quantile}, sum by (le, stage) (rate(" \
               "orderflow_order_stage_seconds_bucket" in exprs


def test_dashboard_provider_reads_the_folder_compose_mounts() -> None:
    provider = (PROVISIONING / "dashboards" / "orderflow.yml").read_text()
    match = re.search(r"^\s*path:\s*(\S+)\s*$", provider, re.M)
    assert match is not None
    compose = (DEPLOY.parent / "docker-compose.yml").read_text()
    assert f"./deploy/grafana/dashboards:{match.group(1)}:ro" in compose
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in compose
    datasource = (PROVISIONING / "datasources" / "prometheus.yml").read_text()
    assert "url: http://prometheus:9090" in datasource
    assert "./deploy/prometheus:/etc/prometheus:ro" in compose
