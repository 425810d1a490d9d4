"""The embedded broker's and PostgreSQL's ports, kept in the data directory so a restart
of ``orderflow up`` finds them where they were (clients configured with the printed
addresses keep working, and ``orderflow keys`` finds the database without being told).

``<data_dir>/ports.json``: ``{"broker": 41234, "postgres": 45678, "postgres_dsn": "…"}``.
A saved port another process holds now is not reused: a free one is chosen and saved.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from orderflow.embedded.processes import tcp_open

log = logging.getLogger(__name__)
PORTS_FILE = "ports.json"


def _read(data_dir: Path) -> dict[str, object]:
    try:
        doc = json.loads((data_dir / PORTS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def saved_port(data_dir: Path, name: str, host: str) -> int | None:
    """The port ``name`` had last time, if it is free now."""
    port = _read(data_dir).get(name)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        return None
    if tcp_open(host, port):
        log.warning("%s: port %d (saved in %s) is in use now; choosing another",
                    name, port, data_dir / PORTS_FILE)
        return None
    return port


def save(data_dir: Path, **values: int | str) -> None:
    doc = _read(data_dir)
    doc.update(values)
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = data_dir / f"{PORTS_FILE}.tmp"
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    tmp.replace(data_dir / PORTS_FILE)


def saved_dsn(data_dir: Path) -> str | None:
    """The embedded PostgreSQL's DSN as ``orderflow up`` last started it."""
    dsn = _read(data_dir).get("postgres_dsn")
    return dsn if isinstance(dsn, str) else None
