"""Slow clients on real loopback sockets (issue 9 defect 6): nothing is held forever.

Connections that dribble their headers are aborted at the header deadline; with the
connection cap reached by such connections ``/healthz`` still answers (the oldest
header-pending connection makes room); a slow body is a 408; the accept-error line
asyncio logs when descriptors run out is rate-limited.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from ingress import orders_api
from ingress.app import RUNNER_OPTIONS, build_app
from ingress.connections import ConnectionGuard, limit_accept_error_log, start_site
from ingress.hub import StatusHub
from tests.helpers import wait_until
from tests.unit.test_ingress_fakes import FakeBus, FakeStore, ingress_config

SLOW = 20  # slow connections per test: small, the mechanism is the same for 1,000


class Site:
    def __init__(self, runner: web.AppRunner, guard: ConnectionGuard) -> None:
        self.runner, self.guard = runner, guard
        self.port: int = runner.addresses[0][1]


@pytest.fixture
async def site(request: pytest.FixtureRequest) -> AsyncIterator[Site]:
    max_connections, header_timeout_s = getattr(request, "param", (1000, 0.5))
    app = build_app(ingress_config(), producer=FakeBus(), store=FakeStore(), hub=StatusHub())
    runner, guard = await start_site(app, "127.0.0.1", 0, max_connections=max_connections,
                                     header_timeout_s=header_timeout_s, access_log=None,
                                     **RUNNER_OPTIONS)
    try:
        yield Site(runner, guard)
    finally:
        await runner.cleanup()


async def slow_client(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection that has sent half a request's headers (and would go on, slowly)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1\r\n")
    await writer.drain()
    return reader, writer


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1024), 0.01) == b""
    except TimeoutError:
        return False
    except ConnectionError:
        return True


async def healthz(port: int, timeout: float = 3.0) -> int:
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        status_line = await reader.readline()
        writer.close()
    return int(status_line.split()[1])


async def test_slow_header_connections_are_closed_at_the_deadline(site: Site) -> None:
    clients = [await slow_client(site.port) for _ in range(SLOW)]
    try:
        async def all_closed() -> bool:
            for reader, writer in clients:
                writer.write(b"X-More: 1\r\n")  # still "sending headers", slowly
                if not await closed_by_server(reader):
                    return False
            return True

        await wait_until(all_closed, 10, "the server to close every slow-header connection")
        assert site.guard.timed_out >= SLOW
        assert await healthz(site.port) == 200  # a complete request is not cut off
    finally:
        for _, writer in clients:
            writer.close()


@pytest.mark.parametrize("site", [(SLOW, 60.0)], indirect=True)
async def test_with_the_cap_reached_healthz_still_answers(site: Site) -> None:
    clients = [await slow_client(site.port) for _ in range(SLOW)]
    try:
        await wait_until(lambda: site.guard.open == SLOW, 5, "every slow connection accepted")
        for _ in range(3):
            assert await healthz(site.port) == 200
        assert site.guard.evicted >= 1 and site.guard.open <= SLOW
    finally:
        for _, writer in clients:
            writer.close()


@pytest.mark.parametrize("site", [(2, 60.0)], indirect=True)
async def test_when_every_slot_is_a_real_client_a_newcomer_gets_a_fast_503(site: Site) -> None:
    busy = []
    for _ in range(2):  # two WebSocket clients: real, long-lived, past their headers
        reader, writer = await asyncio.open_connection("127.0.0.1", site.port)
        writer.write(b"GET /api/orders/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     b"Sec-WebSocket-Version: 13\r\n\r\n")
        assert b" 101 " in await asyncio.wait_for(reader.readline(), 5)
        busy.append(writer)
    try:
        assert await healthz(site.port) == 503
        assert site.guard.refused == 1
    finally:
        for writer in busy:
            writer.close()


async def test_a_slow_body_is_408(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(orders_api, "BODY_TIMEOUT_S", 0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", site.port)
    writer.write(b"POST /api/orders/execute HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
    status_line = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    assert int(status_line.split()[1]) == 408


async def test_the_accept_error_line_is_rate_limited() -> None:
    """The very call asyncio makes when accept() fails with EMFILE, 1,000 times in a row."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    limiter = limit_accept_error_log()
    handler = Keep()
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    loop = asyncio.get_running_loop()
    listener = socket.socket()
    try:
        context: dict[str, Any] = {
            "message": "socket.accept() out of system resource",
            "exception": OSError(errno.EMFILE, "Too many open files"), "socket": listener}
        for _ in range(1000):
            loop.default_exception_handler(context)
        loop.default_exception_handler({"message": "something else"})
    finally:
        logger.removeHandler(handler)
        listener.close()
    accept = [r for r in records if "out of system resource" in r.getMessage()]
    assert 1 <= len(accept) <= 2, len(accept)
    assert limiter.suppressed >= 998
    assert any("something else" in r.getMessage() for r in records)  # others untouched
