"""``orderflow bench`` on a small run, so that the command cannot rot.

The real command as a child process: it starts its own embedded system (Tansu broker,
localnet with its market, worker, ingress) on free ports, with its database on the
session's PostgreSQL server, sends 10 orders through both paths with the edge trace on,
measures the three ceilings briefly, and writes its JSON report.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_bench_runs_both_paths_and_reports_every_section(postgres_server: str,
                                                         tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = {
        **os.environ,
        "ORDERFLOW_DATA_DIR": str(tmp_path),
        "ORDERFLOW_LOCALNET_SLOT_MS": "100",
        "ORDERFLOW_LOCALNET_DRIFT_BPS": "0",
        "ORDERFLOW_CONFIRM_POLL_MS": "50",
        "ORDERFLOW_SESSION_TIMEOUT_S": "2",
        "ORDERFLOW_REBALANCE_TIMEOUT_S": "2",
    }
    argv = [sys.executable, "-m", "orderflow.cli", "bench", "--orders", "10", "--via", "both",
            "--warmup", "1", "--database-url", postgres_server, "--trace",
            "--ceiling-seconds", "1", "--chain-senders", "4", "--flow-concurrency", "8",
            "--broker-messages", "2000", "--timeout", "60", "--out", str(out)]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "orderflow bench: 10 orders via both" in proc.stdout
    report = json.loads(out.read_text())
    assert report["schema"] == "orderflow-bench/1"

    res = report["results"]
    assert (res["submitted"], res["confirmed"], res["failed"], res["lost"]) == (10, 10, 0, 0)
    assert {p: v["confirmed"] for p, v in res["by_path"].items()} == {"http": 5, "kafka": 5}
    assert res["throughput"]["overall_per_s"] > 0
    latency = res["latency_ms"]["submit_to_confirmed"]
    assert latency["n"] == 10 and 0 < latency["p50"] <= latency["p99"] <= latency["max"]
    for stage, summary in res["stages_ms"].items():
        assert summary["n"] == 10, (stage, summary)
    overhead = res["overhead_ms"]
    assert overhead["worker"]["n"] == 10 and overhead["total"]["n"] == 10
    # the overhead is what is left of the latency once venue and chain waits are taken out
    assert overhead["worker"]["p50"] < latency["p50"]
    assert overhead["waiting_on_venue_or_chain"]["p50"] > 0
    metrics = res["worker_metrics"]
    assert metrics["stage_ms"]["routing"]["count"] >= 10
    assert metrics["rpc_request_ms"]["sendTransaction"]["count"] >= 10
    assert res["processes"]["cpu_cores"]["worker-0"] > 0
    assert res["processes"]["workers_cpu_per_localnet_cpu"] > 0

    ceilings = report["ceilings"]
    assert ceilings["chain"]["tx_per_s"] > 0 and ceilings["chain"]["send_errors"] == 0
    assert ceilings["flow"]["orders_per_s"] > 0
    assert ceilings["broker"]["received"] == 2000 and ceilings["broker"]["msgs_per_s"] > 0
    ratios = report["ratios"]
    assert ratios["of_chain_raw_tx_rate"] > 0 and ratios["of_broker_raw_msg_rate"] > 0

    env_ = report["environment"]
    assert env_["machine"]["cores"] >= 1 and env_["workers"] == 1
    assert env_["orders_partitions"] == 8 and env_["order_status_partitions"] == 8
    assert env_["localnet_slot_ms_measured"] is not None
    assert all(v > 0 for v in env_["speed_probe_ms"].values())
    assert env_["versions"]["faust-streaming"]
