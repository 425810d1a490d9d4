"""A short soak in ``make test``: 90 orders over HTTP and Kafka while the worker, PostgreSQL,
the broker, the ingress and the localnet are SIGKILLed (each at least once) and restarted.

``python -m tests.soak`` as a child process, on its own system (durable embedded PostgreSQL
and broker, localnet, two workers, ingress). The orders are a mix (tests/soak_mix.py):
market orders, limit orders under the market, over it (filled after a trader's real trade),
unreachable (expire) and cancelled, sniper orders whose pool is launched during the run or
never. The verdict comes from the chain: every landed swap found in the wallet's history by
its memo, compared with the read model and with each order's own limit. The kill points are
random; the assertions are not: whatever was killed when, no accepted order is lost, stuck
or doubled, none ended without trading but with a landed swap, no fill is below its limit,
and the wallet reconciles exactly.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

KILLED = ["worker", "postgres", "broker", "ingress", "localnet"]
MIX = "market=60,limit=25,sniper=15"


def test_short_soak_with_kills_loses_and_doubles_nothing(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    argv = [sys.executable, "-m", "tests.soak", "--orders", "90", "--rate", "6",
            "--kill", ",".join(KILLED), "--kill-every", "2.5", "--drain-timeout", "90",
            "--mix", MIX, "--expire-s", "12", "--wait-s", "75",
            "--accept-timeout", "60", "--data-dir", str(tmp_path / "soak"), "--out", str(out)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=240, check=False)
    assert out.exists(), f"no report (exit {done.returncode}):\n{done.stderr[-4000:]}"
    report = json.loads(out.read_text())
    detail = json.dumps({k: report[k] for k in ("failures", "orders", "byKind", "kills",
                                                 "examples", "neverAccepted")},
                        indent=1)[:6000]
    assert report["failures"] == dict.fromkeys(report["failures"], 0), detail
    assert done.returncode == 0, detail
    orders = report["orders"]
    assert orders["accepted"] + orders["neverAccepted"] == 90, detail
    assert orders["accepted"] >= 80, detail  # each kill is short; nearly all get through
    assert min(orders["acceptedVia"].values()) > 0, detail
    ended = orders["confirmed"] + orders["failed"] + orders["expired"] + orders["cancelled"]
    assert ended == orders["accepted"], detail
    assert report["chain"]["landed_swaps"] == orders["confirmed"], detail
    assert set(report["kills"]["byComponent"]) == set(KILLED), detail
    kinds = report["byKind"]
    for kind in ("limit_never", "sniper_never"):  # nothing can reach these: they expire
        assert set(kinds.get(kind, {"expired": 0})) <= {"expired", "landed_swaps",
                                                        "triggered"}, detail
    filled = {k for k, ends in kinds.items() if k != "market" and ends.get("confirmed")}
    # fills of limit and sniper orders were judged against their limits on chain
    assert any(k.startswith("limit") for k in filled), detail
    assert any(k.startswith("sniper") for k in filled), detail
