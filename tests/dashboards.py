"""The observability files as data, for the tests: every PromQL expression the Grafana
dashboards use, read from the JSON itself so the tests cannot drift from the dashboards."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DASHBOARDS = DEPLOY / "grafana" / "dashboards"
PROMETHEUS_DIR = DEPLOY / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERTS_TEST = PROMETHEUS_DIR / "alerts_test.yml"

# Grafana's built-in variables, as Grafana would expand them for a short time range on a
# 1 s scrape interval: wide enough to hold the samples from before a test's orders.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "5m",
}
_VARIABLE = re.compile(r"\$\{?\w+")


@dataclass(frozen=True, slots=True)
class Target:
    dashboard: str
    panel: str
    ref_id: str
    expr: str
    datasource_uid: str | None

    @property
    def promql(self) -> str:
        return to_promql(self.expr)

    def __str__(self) -> str:
        return f"{self.dashboard} / {self.panel!r} / {self.ref_id}"


def to_promql(expr: str) -> str:
    """The expression as Grafana sends it to Prometheus (built-in variables expanded)."""
    for name in sorted(GRAFANA_VARIABLES, key=len, reverse=True):
        expr = expr.replace(name, GRAFANA_VARIABLES[name])
    left = _VARIABLE.findall(expr)
    if left:
        raise ValueError(f"unknown Grafana variable(s) {left} in {expr!r}")
    return expr


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS.glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def panels(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in (collapsed) rows."""
    for panel in doc.get("panels", []):
        yield panel
        yield from panels(panel)


def targets(path: Path) -> list[Target]:
    doc = load(path)
    out = []
    for panel in panels(doc):
        default_uid = (panel.get("datasource") or {}).get("uid")
        for target in panel.get("targets", []):
            if "expr" not in target:
                continue
            uid = (target.get("datasource") or {}).get("uid", default_uid)
            out.append(Target(path.name, panel.get("title", "?"), target.get("refId", "?"),
                              target["expr"], uid))
    return out


def all_targets() -> list[Target]:
    return [t for path in dashboard_files() for t in targets(path)]


def scrape_jobs() -> list[str]:
    """The job names of deploy/prometheus/prometheus.yml (no YAML parser needed)."""
    return re.findall(r"^\s*-\s*job_name:\s*([\w.-]+)\s*$", PROMETHEUS_CONFIG.read_text(),
                      re.M)


def alert_names() -> list[str]:
    return re.findall(r"^\s*-\s*alert:\s*(\w+)\s*$", ALERTS.read_text(), re.M)
