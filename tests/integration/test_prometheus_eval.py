"""Every dashboard query and alert rule, evaluated by a real Prometheus against a real run.

The system under test is the real ``orderflow up`` (as in test_end_to_end.py) with the
worker's metrics server on, scraped every second by Debian's ``prometheus`` binary (the
rules of deploy/prometheus/alerts.yml loaded). After a few orders are confirmed, every
PromQL expression of deploy/grafana/dashboards/*.json (read from the JSON, Grafana's
built-in variables expanded) and every alert rule must parse and evaluate through the
HTTP API, and the throughput, latency, venue, lag, sink and WebSocket panels must show
real data. ``promtool`` checks the production config and rules and runs their unit tests.

Skips only when the ``prometheus``/``promtool`` binaries are absent (``apt-get install -y
prometheus``; .ci/run installs it).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry
from solders.keypair import Keypair

from orderflow.embedded import EmbeddedProcess, spawn_child
from pipeline.metrics import STAGES, EngineMetrics
from pipeline.wallet import write_keypair
from tests.dashboards import (
    ALERTS,
    ALERTS_TEST,
    PROMETHEUS_CONFIG,
    Target,
    alert_names,
    all_targets,
    scrape_jobs,
)
from tests.helpers import free_port, wait_until

pytestmark = pytest.mark.integration

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
NO_PROMETHEUS = "Debian's prometheus is not installed (apt-get install -y prometheus)"
ORDERS = 4
TERMINAL = {"confirmed", "failed"}

# What each panel must show once orders have been confirmed: "positive" = some series
# with a finite value > 0; "finite" = some finite value; "series" = any series at all.
# Panels not listed (errors, retries, dead letters) must only evaluate: a healthy run
# has nothing to show there.
MUST_SHOW = {
    "Throughput: finished orders/s by outcome": "positive",
    "Orders received/s by source": "positive",
    "Success ratio": "positive",
    "Status transitions/s": "positive",
    "End-to-end latency (submit → confirmed)": "positive",
    "Latency per stage": "positive",
    "Quote latency by venue": "positive",
    "RPC latency by method": "positive",
    "Venue share": "positive",
    "Orders routed per venue": "positive",
    "Quote spread Raydium vs Meteora": "finite",
    "Consumer lag by topic": "series",
    "Consumer lag by partition": "series",
    "WebSocket clients": "positive",
    "WebSocket messages sent/s": "positive",
    "Sink batch size": "positive",
    "Sink write latency": "positive",
    "Scrape targets up": "positive",
}


@dataclass
class System:
    ui: str
    worker_metrics: str
    http_port: int
    worker_metrics_port: int
    proc: subprocess.Popen[bytes]
    log_path: Path


@dataclass
class Prometheus:
    url: str
    proc: EmbeddedProcess
    config: Path


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60,
                          check=False)


# ---- promtool on the production files (no running system needed) ----

@pytest.mark.skipif(PROMTOOL is None, reason=NO_PROMETHEUS)
def test_promtool_checks_the_production_config_and_rules() -> None:
    config = _promtool("check", "config", str(PROMETHEUS_CONFIG))
    assert config.returncode == 0, config.stdout + config.stderr
    assert "1 rule files found" in config.stdout, config.stdout  # alerts.yml is wired in
    rules = _promtool("check", "rules", str(ALERTS))
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert f"{len(alert_names())} rules found" in rules.stdout, rules.stdout


@pytest.mark.skipif(PROMTOOL is None, reason=NO_PROMETHEUS)
def test_alert_rules_unit_tests_pass() -> None:
    result = _promtool("test", "rules", str(ALERTS_TEST))
    assert result.returncode == 0, result.stdout + result.stderr
    tested = set(re.findall(r"alertname:\s*(\w+)", ALERTS_TEST.read_text()))
    assert tested == set(alert_names()), "every alert rule needs a unit test in alerts_test.yml"


# ---- the running system, scraped by a real Prometheus ----

@pytest.fixture(scope="module")
def system(broker: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[System]:
    if PROMETHEUS is None:
        pytest.skip(NO_PROMETHEUS)
    data = tmp_path_factory.mktemp("up-metrics")
    write_keypair(data / "wallet.json", Keypair())
    http, metrics_port = free_port(), free_port()
    env = {
        **os.environ,
        "ORDERFLOW_HTTP_PORT": str(http),
        "ORDERFLOW_WORKER_METRICS_PORT": str(metrics_port),
        "ORDERFLOW_KAFKA_BOOTSTRAP": broker,
        "ORDERFLOW_DATABASE_URL": database_url,
        "ORDERFLOW_WALLET": str(data / "wallet.json"),
        "ORDERFLOW_DATA_DIR": str(data),
        "ORDERFLOW_LOCALNET_RPC_PORT": str(free_port(span=2)),
        "ORDERFLOW_LOCALNET_VENUE_PORT": str(free_port()),
        "ORDERFLOW_LOCALNET_SLOT_MS": "100",
        "ORDERFLOW_LOCALNET_DRIFT_BPS": "0",
        "ORDERFLOW_LOCALNET_SEED": "5",
        "ORDERFLOW_CONFIRM_POLL_MS": "50",
        "ORDERFLOW_SESSION_TIMEOUT_S": "2",
        "ORDERFLOW_REBALANCE_TIMEOUT_S": "2",
        "ORDERFLOW_APP_ID": f"orderflow-metrics-{uuid.uuid4().hex[:6]}",
    }
    log_path = data / "up.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "orderflow.cli", "up"], env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    s = System(f"http://127.0.0.1:{http}", f"http://127.0.0.1:{metrics_port}/metrics", http,
               metrics_port, proc, log_path)
    try:
        asyncio.run(_wait_ready(s))
        yield s
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        assert proc.returncode == 0, log_path.read_text()[-4000:]


async def _wait_ready(s: System) -> None:
    async with aiohttp.ClientSession() as http:
        async def ready() -> bool:
            if s.proc.poll() is not None:
                raise AssertionError("orderflow up exited:\n" + s.log_path.read_text()[-4000:])
            try:
                async with http.get(f"{s.ui}/healthz") as health:
                    if health.status != 200:
                        return False
                async with http.get(s.worker_metrics) as metrics:
                    return metrics.status == 200
            except aiohttp.ClientError:
                return False
        await wait_until(ready, 120, "orderflow up to be healthy with worker metrics",
                         interval=0.2)


def _scrape_config(s: System, jobs: list[str], tmp: Path) -> Path:
    """The production jobs, with the local processes as static targets and 1 s scrapes.

    JSON is YAML, so no YAML library is needed to write it."""
    targets = {"orderflow-ingress": f"127.0.0.1:{s.http_port}",
               "orderflow-worker": f"127.0.0.1:{s.worker_metrics_port}"}
    missing = sorted(set(targets) - set(jobs))
    assert not missing, f"deploy/prometheus/prometheus.yml has no job {missing}"
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s",
                   "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [target]}]}
                           for job, target in targets.items()],
    }
    path = tmp / "prometheus.yml"
    path.write_text(json.dumps(config, indent=2))
    return path


@pytest.fixture(scope="module")
def prometheus(system: System, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[Prometheus]:
    assert PROMETHEUS is not None
    tmp = tmp_path_factory.mktemp("prometheus")
    config = _scrape_config(system, scrape_jobs(), tmp)
    port = free_port()
    proc = spawn_child("prometheus", [
        PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
        "--storage.tsdb.retention.time=1h"], None, tmp / "logs")
    prom = Prometheus(f"http://127.0.0.1:{port}", proc, config)
    try:
        asyncio.run(_wait_scraping(prom))
        yield prom
    finally:
        proc.stop(10)


async def _wait_scraping(p: Prometheus) -> None:
    """Ready, and both targets scraped successfully twice since they were first up (so
    counters have a sample before the test's orders, and rate() sees them rise)."""
    async with aiohttp.ClientSession() as http:
        async def last_scrapes() -> dict[str, str] | None:
            """scrapeUrl -> lastScrape of every target, once both are up; else None."""
            if not p.proc.running():
                raise AssertionError("prometheus exited:\n" + p.proc.log_tail())
            try:
                async with http.get(f"{p.url}/api/v1/targets") as resp:
                    if resp.status != 200:
                        return None
                    doc = await resp.json()
            except aiohttp.ClientError:
                return None
            active = doc["data"]["activeTargets"]
            if len(active) != 2 or any(t["health"] != "up" for t in active):
                return None
            return {t["scrapeUrl"]: t["lastScrape"] for t in active}

        first = await wait_until(last_scrapes, 30, "prometheus to scrape ingress and worker",
                                 interval=0.2)
        assert isinstance(first, dict)

        async def scraped_again() -> bool:
            now = await last_scrapes()
            return now is not None and all(now[url] != at for url, at in first.items())
        await wait_until(scraped_again, 30, "one more scrape of each target", interval=0.2)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _query(http: aiohttp.ClientSession, p: Prometheus, promql: str) -> dict[str, Any]:
    async with http.post(f"{p.url}/api/v1/query", data={"query": promql}) as resp:
        doc: dict[str, Any] = await resp.json(content_type=None)
    return doc


def _values(doc: dict[str, Any]) -> list[float]:
    data = doc.get("data") or {}
    if data.get("resultType") == "scalar":
        return [float(data["result"][1])]
    return [float(series["value"][1]) for series in data.get("result", [])]


def _shows(kind: str, values: list[float]) -> bool:
    finite = [v for v in values if math.isfinite(v)]
    if kind == "positive":
        return any(v > 0 for v in finite)
    if kind == "finite":
        return bool(finite)
    return bool(values)


async def _submit_and_confirm(http: aiohttp.ClientSession, s: System) -> list[str]:
    bodies = [{"tokenIn": "SOL", "tokenOut": "USDC", "amount": f"0.{i + 2}", "slippageBps": 300}
              if i % 2 == 0 else
              {"tokenIn": "USDC", "tokenOut": "SOL", "amount": f"{i + 3}.5", "slippageBps": 300}
              for i in range(ORDERS)]

    async def post(body: dict[str, Any]) -> str:
        async with http.post(f"{s.ui}/api/orders/execute", json=body) as resp:
            doc = await resp.json()
            assert resp.status == 202, doc
            return str(doc["orderId"])

    ids = await asyncio.gather(*(post(b) for b in bodies))
    statuses: dict[str, str] = {}

    async def finished() -> bool:
        for order_id in ids:
            async with http.get(f"{s.ui}/api/orders/{order_id}") as resp:
                if resp.status == 200:
                    statuses[order_id] = (await resp.json())["status"]
        return all(statuses.get(i) in TERMINAL for i in ids)

    await wait_until(finished, 90, "the orders to finish", interval=0.2)
    assert set(statuses.values()) == {"confirmed"}, statuses
    return ids


async def _worker_families(http: aiohttp.ClientSession, s: System) -> set[str]:
    async with http.get(s.worker_metrics) as resp:
        text = await resp.text()
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


def _expected_worker_families() -> set[str]:
    registry = CollectorRegistry()
    EngineMetrics(registry)
    return {m.name for m in registry.collect()}


async def test_every_dashboard_query_and_alert_rule_evaluates_on_real_data(
        system: System, prometheus: Prometheus, http: aiohttp.ClientSession) -> None:
    dashboard = all_targets()
    assert dashboard, "no dashboard targets found"
    titles = {t.panel for t in dashboard}
    assert set(MUST_SHOW) <= titles, f"panels missing from the dashboard: " \
                                     f"{sorted(set(MUST_SHOW) - titles)}"

    # A WebSocket client follows every order while they run (and stays open for the
    # WebSocket panels).
    async with http.ws_connect(f"{system.ui}/api/orders/ws") as ws:
        await ws.send_json({"action": "subscribe", "all": True})
        await _submit_and_confirm(http, system)

        # 1. Prometheus has the data: wait for the panels that must show something.
        missing: dict[str, list[tuple[Target, dict[str, Any]]]] = {}

        async def panels_show_data() -> bool:
            missing.clear()
            by_panel: dict[str, list[tuple[Target, dict[str, Any]]]] = {}
            for t in dashboard:
                if t.panel in MUST_SHOW:
                    by_panel.setdefault(t.panel, []).append((t, await _query(http, prometheus,
                                                                             t.promql)))
            for panel, results in by_panel.items():
                values = [v for _, doc in results for v in _values(doc)]
                if not _shows(MUST_SHOW[panel], values):
                    missing[panel] = results
            return not missing

        try:
            await wait_until(panels_show_data, 20, "the dashboard panels to show data",
                             interval=1.0)
        except AssertionError:
            have = await _worker_families(http, system)
            absent = sorted(_expected_worker_families() - have)
            detail = "\n".join(
                f"  {panel!r} ({MUST_SHOW[panel]}):\n" + "\n".join(
                    f"    {t.ref_id}: {t.promql}\n       -> {json.dumps(doc.get('data'))[:300]}"
                    for t, doc in results)
                for panel, results in missing.items())
            pytest.fail(
                "dashboard panels without the data they must show after "
                f"{ORDERS} confirmed orders:\n{detail}\n"
                + (f"worker /metrics lacks {absent}: the worker does not create or record "
                   "them (EngineMetrics.default() must be wired into pipeline/app.py and "
                   "pipeline/executor.py)" if absent
                   else "every worker metric family is exported"))

        # 2. Every dashboard expression parses and evaluates.
        failures = []
        for t in dashboard:
            doc = await _query(http, prometheus, t.promql)
            if doc.get("status") != "success":
                failures.append(f"{t}: {t.promql}\n    {doc.get('errorType')}: "
                                f"{doc.get('error')}")
        assert not failures, "dashboard queries Prometheus rejects:\n" + "\n".join(failures)

        # Per-stage latency shows every stage.
        stage_p95 = next(t for t in dashboard if t.panel == "Latency per stage"
                         and "0.95" in t.expr)
        doc = await _query(http, prometheus, stage_p95.promql)
        seen = {r["metric"].get("stage") for r in doc["data"]["result"]
                if math.isfinite(float(r["value"][1]))}
        assert set(STAGES) <= seen, f"stages with latency data: {seen}"

    # 3. Every alert rule is loaded, evaluates without error, and parses as a query.
    async def evaluated() -> list[dict[str, Any]] | None:
        async with http.get(f"{prometheus.url}/api/v1/rules") as resp:
            doc = await resp.json()
        rules: list[dict[str, Any]] = [r for g in doc["data"]["groups"] for r in g["rules"]]
        never = "0001-01-01T00:00:00Z"  # Prometheus' zero time: not evaluated yet
        if rules and all(r.get("lastEvaluation", never) != never for r in rules):
            return rules
        return None

    rules = await wait_until(evaluated, 10, "the alert rules to be evaluated")
    assert isinstance(rules, list)
    assert sorted(r["name"] for r in rules) == sorted(alert_names())
    broken = [f"{r['name']}: {r['health']} {r.get('lastError')}" for r in rules
              if r["health"] != "ok"]
    assert not broken, "alert rules failing to evaluate:\n" + "\n".join(broken)
    for rule in rules:
        doc = await _query(http, prometheus, rule["query"])
        assert doc.get("status") == "success", (rule["name"], rule["query"], doc)

    # A healthy run does not page for missing workers or targets.
    async with http.get(f"{prometheus.url}/api/v1/alerts") as resp:
        active = {a["labels"]["alertname"] for a in (await resp.json())["data"]["alerts"]}
    assert not active & {"OrderflowNoWorkers", "OrderflowTargetDown"}, active

    # 4. The generated scrape config is valid too.
    if PROMTOOL is not None:
        check = _promtool("check", "config", str(prometheus.config))
        assert check.returncode == 0, check.stdout + check.stderr
