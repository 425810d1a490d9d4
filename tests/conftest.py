"""Session-wide real infrastructure: a Kafka-compatible broker and a PostgreSQL database.

``broker``        bootstrap ``host:port``: ``ORDERFLOW_TEST_KAFKA_BOOTSTRAP`` if set, else
                  an embedded Tansu broker on a free port, started once per session, on
                  MEMORY storage (fast; nothing survives a kill): for tests that never
                  kill the broker. Tests that kill it start their own durable one with
                  ``orderflow.embedded.start_durable_broker``.
``own_broker``, ``own_database_url``: the same, but per test, for tests whose workers
must not see what other tests left behind (unfinished orders on shared topics, journal rows).
``database_url``  DSN of a fresh database ``orderflow_test_<random>`` (dropped at the
                  end) on the server of ``ORDERFLOW_TEST_DATABASE_URL`` if set, else on
                  ``postgresql://postgres@127.0.0.1:5432/postgres`` if that answers, else
                  on an embedded PostgreSQL started for the session.

Both are started lazily: a run of unit tests alone starts nothing.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from orderflow.embedded import MEMORY_STORAGE, EmbeddedProcess, start_broker, start_postgres

log = logging.getLogger("tests.conftest")

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


def _embedded_broker(data_dir: Path) -> Iterator[str]:
    proc = start_broker(None, data_dir, storage=MEMORY_STORAGE)  # explicit: speed, no kills
    try:
        yield proc.url
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("ORDERFLOW_TEST_KAFKA_BOOTSTRAP")
    if configured:
        yield configured
        return
    yield from _embedded_broker(tmp_path_factory.mktemp("tansu"))


def _answers(dsn: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.OperationalError as exc:
        log.info("no PostgreSQL at %s: %s", dsn, str(exc).strip())
        return False


def _with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An admin DSN (database ``postgres`` or the configured one) of a running server."""
    configured = os.environ.get("ORDERFLOW_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    if _answers(LOCAL_POSTGRES):
        yield LOCAL_POSTGRES
        return
    proc: EmbeddedProcess
    proc, dsn = start_postgres(tmp_path_factory.mktemp("postgres"), database="postgres")
    try:
        yield dsn
    finally:
        proc.stop(30)


def _fresh_database(server: str) -> Iterator[str]:
    import psycopg
    from psycopg import sql

    name = f"orderflow_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _with_database(server, name)
    finally:
        with psycopg.connect(server, autocommit=True, connect_timeout=10) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def database_url(postgres_server: str) -> Iterator[str]:
    yield from _fresh_database(postgres_server)


@pytest.fixture
def own_database_url(postgres_server: str) -> Iterator[str]:
    """A database of this test's own: nothing another test left unfinished in the journal."""
    yield from _fresh_database(postgres_server)


@pytest.fixture
def own_broker(tmp_path_factory: pytest.TempPathFactory, broker: str) -> Iterator[str]:
    """A broker of this test's own (embedded Tansu, ~1 s to start), so its workers never see
    orders another test left on the shared topics. With ORDERFLOW_TEST_KAFKA_BOOTSTRAP set,
    the configured broker is shared instead."""
    if os.environ.get("ORDERFLOW_TEST_KAFKA_BOOTSTRAP"):
        yield broker
        return
    yield from _embedded_broker(tmp_path_factory.mktemp("tansu-own"))
