"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sinks.migrate import migrate
from tests.cluster import Cluster


@pytest.fixture
async def cluster(own_broker: str, own_database_url: str,
                  tmp_path: Path) -> AsyncIterator[Cluster]:
    """A localnet with workers started by the test, on a broker and database of its own: a
    worker resumes every unfinished order it can see, so orders other tests left behind
    would run here, with this test's wallet."""
    await migrate(own_database_url)
    c = Cluster(own_broker, own_database_url, tmp_path)
    await c.start_localnet()
    try:
        yield c
    finally:
        c.stop()
