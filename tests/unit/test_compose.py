"""The production topology files agree with themselves and with the code.

``docker-compose config -q`` validates docker-compose.yml when Debian's docker-compose
is installed (.ci/run installs it); the other checks need nothing but the files.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from pipeline.topics import topic_specs

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
TOPICS = ROOT / "deploy" / "kafka" / "topics.txt"
CREATE_TOPICS = ROOT / "deploy" / "kafka" / "create-topics.sh"
SERVICES = {"kafka", "kafka-init", "postgres", "migrate", "ingress", "worker", "sinks",
            "localnet", "prometheus", "grafana"}


def _compose(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (apt-get install -y docker-compose)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}
    return subprocess.run(
        [binary, "-f", str(COMPOSE), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_compose_file_is_valid() -> None:
    result = _compose("config", "-q")
    assert result.returncode == 0, result.stderr


def test_compose_has_every_service_with_its_wiring() -> None:
    services = _compose("config", "--services")
    assert services.returncode == 0, services.stderr
    assert set(services.stdout.split()) == SERVICES

    resolved = _compose("config")
    assert resolved.returncode == 0, resolved.stderr
    text = resolved.stdout
    for needle in (
        "ORDERFLOW_KAFKA_BOOTSTRAP: kafka:9092",
        "ORDERFLOW_VENUE_URL: http://localnet:8090/swap/v1",
        "ORDERFLOW_SOLANA_RPC_URL: http://localnet:8899",
        "ORDERFLOW_WALLET: /run/secrets/wallet",
        "condition: service_completed_successfully",
        "condition: service_healthy",
        "image: postgres:16",
        "KAFKA_PROCESS_ROLES: broker,controller",
        "ORDERFLOW_WORKER_METRICS_PORT: '9100'",
        "--config.file=/etc/prometheus/prometheus.yml",
        "deploy/prometheus:/etc/prometheus:ro",
        "deploy/grafana/provisioning:/etc/grafana/provisioning:ro",
        "deploy/grafana/dashboards:/etc/grafana/dashboards:ro",
    ):
        assert needle in text, f"{needle!r} not in the resolved compose config"


def _service_block(name: str) -> str:
    """One service's text in docker-compose.yml (up to the next top-level service)."""
    match = re.search(rf"^  {re.escape(name)}:\n(.*?)(?=^  \S|^\S)", COMPOSE.read_text(),
                      re.M | re.S)
    assert match is not None, f"no service {name}"
    return match.group(1)


def test_every_long_running_service_has_a_healthcheck() -> None:
    for name in SERVICES - {"kafka-init", "migrate"}:
        assert "healthcheck:" in _service_block(name), f"{name} has no healthcheck"


def test_prometheus_scrapes_the_services_on_their_metrics_ports() -> None:
    config = (ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text()
    worker = _service_block("worker")
    port = re.search(r"ORDERFLOW_WORKER_METRICS_PORT: \"(\d+)\"", worker)
    assert port is not None
    assert f'- "{port.group(1)}"' in worker  # exposed on the compose network
    jobs = re.findall(r"names: \[(\w+)\]\s+type: A\s+port: (\d+)", config)
    assert ("worker", port.group(1)) in jobs  # every scaled worker, through Docker's DNS
    assert ("sinks", port.group(1)) in jobs
    ingress_port = re.search(r'ORDERFLOW_HTTP_PORT: "(\d+)"', _service_block("ingress"))
    assert ingress_port is not None and ("ingress", ingress_port.group(1)) in jobs
    assert "rule_files:\n  - alerts.yml" in config


def test_compose_names_only_settings_that_exist() -> None:
    settings_source = (ROOT / "orderflow" / "settings.py").read_text()
    names = set(re.findall(r"\bORDERFLOW_[A-Z_]+\b", COMPOSE.read_text()))
    names -= {"ORDERFLOW_WALLET_FILE"}  # a compose-side variable: the host path of the wallet
    unknown = sorted(n for n in names if f'"{n}"' not in settings_source)
    assert not unknown, f"docker-compose.yml sets variables Settings never reads: {unknown}"


def _topics_file() -> list[tuple[str, int, int]]:
    rows = []
    for line in TOPICS.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, partitions, retention = line.split()
            rows.append((name, int(partitions), int(retention)))
    return rows


def test_topics_file_matches_the_pipeline_topics() -> None:
    expected = [(s.name, s.partitions, s.retention_ms) for s in topic_specs(8, 8)]
    assert _topics_file() == expected


FAKE_KAFKA_TOPICS = textwrap.dedent(
    """\
    #!/bin/sh
    # Stands in for kafka-topics.sh: remembers created topics in $STATE.
    echo "$*" >> "$STATE/calls"
    topic=""; partitions=""; mode=""
    while [ $# -gt 0 ]; do
        case "$1" in
            --create) mode=create ;;
            --describe) mode=describe ;;
            --topic) topic=$2; shift ;;
            --partitions) partitions=$2; shift ;;
        esac
        shift
    done
    if [ "$mode" = create ] && [ ! -f "$STATE/$topic" ]; then
        echo "$partitions" > "$STATE/$topic"
    fi
    if [ "$mode" = describe ]; then
        printf 'Topic: %s\\tTopicId: x\\tPartitionCount: %s\\tReplicationFactor: 1\\n' \\
            "$topic" "$(cat "$STATE/$topic")"
    fi
    """
)


def _run_create_topics(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    fake = tmp_path / "kafka-topics.sh"
    fake.write_text(FAKE_KAFKA_TOPICS)
    fake.chmod(0o755)
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "STATE": str(state),
        "KAFKA_TOPICS": str(fake),
        "KAFKA_BOOTSTRAP": "kafka:9092",
    }
    return subprocess.run(
        ["sh", str(CREATE_TOPICS)], env=env, capture_output=True, text=True, timeout=30, check=False
    )


def test_create_topics_script_creates_every_listed_topic_with_its_retention(
    tmp_path: Path,
) -> None:
    result = _run_create_topics(tmp_path)
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "state" / "calls").read_text().splitlines()
    creates = [c for c in calls if "--create" in c]
    assert len(creates) == len(_topics_file())
    for (name, partitions, retention), call in zip(_topics_file(), creates, strict=True):
        assert f"--topic {name} --partitions {partitions} " in call
        assert f"--config retention.ms={retention}" in call
        assert "--if-not-exists" in call
    assert f"{len(creates)} topics ready" in result.stdout


def test_create_topics_script_fails_on_a_partition_count_mismatch(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "orders").write_text("3\n")  # pre-existing with the wrong count
    result = _run_create_topics(tmp_path)
    assert result.returncode == 1
    assert "orders has 3 partitions, want 8" in result.stderr


def test_dockerfile_copies_every_package() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    pyproject = (ROOT / "pyproject.toml").read_text()
    include = re.search(r"include\s*=\s*\[([^\]]*)\]", pyproject)
    assert include is not None
    packages = [p.strip().strip('"').rstrip("*") for p in include.group(1).split(",") if p.strip()]
    for package in packages:
        assert f"COPY {package} ./{package}" in dockerfile, f"Dockerfile does not copy {package}/"
    assert "-c constraints.txt" in dockerfile
    assert re.search(r"^USER (?!root)", dockerfile, re.M), "the image must not run as root"


def test_published_contract_schemas_are_the_pipelines_own() -> None:
    """deploy/kafka/ hands producers the JSON Schemas; they must be the ones the pipeline
    validates against, every version of them."""
    contracts = ROOT / "pipeline" / "contracts"
    published = ROOT / "deploy" / "kafka"
    names = sorted(p.name for p in contracts.glob("*.schema.json"))
    assert names == sorted(p.name for p in published.glob("*.schema.json"))
    for name in names:
        assert (published / name).read_bytes() == (contracts / name).read_bytes(), name
