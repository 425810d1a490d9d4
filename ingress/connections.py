"""Bounded connections: slow clients cannot hold the ingress's sockets or fill its log.

aiohttp waits for a request's headers as long as the connection's keep-alive timer
allows (3630 s by default) and accepts connections until the process runs out of file
descriptors; then ``/healthz`` stops answering and asyncio logs "socket.accept() out of
system resource" on every accept retry. Three bounds (issue 9, defect 6):

* **Header deadline.** Every connection must complete its first request's headers
  within ``header_timeout_s`` or it is aborted (a timer per connection, cancelled by the
  first request). Later requests on a keep-alive connection are bounded by aiohttp's
  ``keepalive_timeout`` (:data:`KEEPALIVE_TIMEOUT_S`), which closes a connection that
  is idle, or still sending headers, that long after its last response. Bodies are
  bounded where they are read (``BODY_TIMEOUT_S`` in ``orders_api``); WebSockets by
  their first-message timeout and heartbeat.
* **Connection cap.** At most ``max_connections`` at once (and never more than the
  file-descriptor limit leaves room for). When a new connection would exceed it, the
  oldest connection that has not sent a complete request yet is aborted to make room:
  those are the ones an attack opens, so ``/healthz`` and real clients keep being
  served. Only when every connection is a real one is the newcomer answered at once
  with a bare 503 and closed (cheap, and a client can tell it from a hang).
* **Rate-limited accept errors.** :class:`RateLimitedLog` lets the accept-error line
  through once per interval with the count of those it swallowed.

The hooks are the ``Server`` instance's ``connection_made``/``connection_lost`` (which
every aiohttp ``RequestHandler`` calls) and its ``request_factory`` (called once per
request, with the connection), so no aiohttp class is subclassed or copied.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_server import Server

log = logging.getLogger(__name__)

HEADER_TIMEOUT_S = 10.0
KEEPALIVE_TIMEOUT_S = 15.0
BODY_TIMEOUT_S = 15.0
MAX_CONNECTIONS = 4096
FD_RESERVE = 256  # descriptors kept free for the database pools, Kafka, files and logs
BUSY_RESPONSE = (b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n"
                 b"Retry-After: 1\r\nContent-Length: 0\r\n\r\n")
ACCEPT_ERROR = "socket.accept() out of system resource"


def fd_headroom(reserve: int = FD_RESERVE) -> int:
    """How many more descriptors this process may open, minus ``reserve``."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    try:
        in_use = len(os.listdir("/proc/self/fd"))
    except OSError:
        in_use = 64
    return max(1, soft - in_use - reserve)


class ConnectionGuard:
    def __init__(self, *, max_connections: int = MAX_CONNECTIONS,
                 header_timeout_s: float = HEADER_TIMEOUT_S) -> None:
        self.max_connections = max_connections
        self.header_timeout_s = header_timeout_s
        self.open = 0
        self.evicted = 0  # header-pending connections aborted to make room
        self.refused = 0  # newcomers answered 503 because every slot was a real client
        self.timed_out = 0  # connections aborted at the header deadline
        # connections that have not started a request yet, oldest first -> deadline timer
        self._waiting: dict[RequestHandler, asyncio.TimerHandle] = {}

    def install(self, server: Server) -> None:
        made, lost, factory = server.connection_made, server.connection_lost, \
            server.request_factory

        def connection_made(handler: RequestHandler, transport: asyncio.Transport) -> None:
            made(handler, transport)
            self._admit(handler, transport)

        def connection_lost(handler: RequestHandler, exc: BaseException | None = None) -> None:
            self._forget(handler)
            self.open -= 1
            lost(handler, exc)

        def request_factory(*args: Any) -> Any:
            self._forget(args[2])  # (message, payload, protocol, writer, task)
            return factory(*args)

        # Instance attributes shadow the methods; RequestHandler reads request_factory
        # from the server when it is created, i.e. after this.
        server.connection_made = connection_made  # type: ignore[method-assign]
        server.connection_lost = connection_lost  # type: ignore[method-assign]
        server.request_factory = request_factory

    def _admit(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        self.open += 1
        if self.open > self.max_connections:
            if self._waiting:
                oldest = next(iter(self._waiting))
                self.evicted += 1
                self._abort(oldest)
            else:
                self.refused += 1
                transport.write(BUSY_RESPONSE)
                transport.close()
                return
        loop = asyncio.get_running_loop()
        self._waiting[handler] = loop.call_later(self.header_timeout_s, self._deadline,
                                                 handler)

    def _deadline(self, handler: RequestHandler) -> None:
        if handler in self._waiting:
            self.timed_out += 1
            self._abort(handler)

    def _abort(self, handler: RequestHandler) -> None:
        self._forget(handler)
        transport = handler.transport
        if transport is not None:
            transport.abort()  # no lingering: the peer is not reading politely anyway

    def _forget(self, handler: RequestHandler) -> None:
        timer = self._waiting.pop(handler, None)
        if timer is not None:
            timer.cancel()


class RateLimitedLog(logging.Filter):
    """Pass a matching record at most once per ``interval_s``, noting how many it dropped.

    Installed on the ``asyncio`` logger for the accept-error line: when descriptors run
    out, asyncio retries accept() and logs each failure with a traceback.
    """

    def __init__(self, matches: Callable[[logging.LogRecord], bool], interval_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._matches = matches
        self._interval_s = interval_s
        self._clock = clock
        self._next = 0.0
        self.suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._matches(record):
            return True
        now = self._clock()
        if now < self._next:
            self.suppressed += 1
            return False
        self._next = now + self._interval_s
        if self.suppressed:
            record.msg = f"{record.msg} ({self.suppressed} more like it suppressed)"
            self.suppressed = 0
        return True


def is_accept_error(record: logging.LogRecord) -> bool:
    return ACCEPT_ERROR in str(record.msg)


_accept_filter = RateLimitedLog(is_accept_error)


def limit_accept_error_log() -> RateLimitedLog:
    """Install (once) the rate limit on asyncio's accept-error line; return the filter."""
    logger = logging.getLogger("asyncio")
    if _accept_filter not in logger.filters:
        logger.addFilter(_accept_filter)
    return _accept_filter


async def start_site(app: web.Application, host: str, port: int, *,
                     max_connections: int = MAX_CONNECTIONS,
                     header_timeout_s: float = HEADER_TIMEOUT_S,
                     **runner_kwargs: Any) -> tuple[web.AppRunner, ConnectionGuard]:
    """Set up ``app`` behind a :class:`ConnectionGuard` on ``host:port``; the caller cleans
    the runner up. The cap never exceeds the descriptors the process has left."""
    limit_accept_error_log()
    runner = web.AppRunner(app, keepalive_timeout=KEEPALIVE_TIMEOUT_S, **runner_kwargs)
    await runner.setup()
    guard = ConnectionGuard(max_connections=min(max_connections, fd_headroom()),
                            header_timeout_s=header_timeout_s)
    assert runner.server is not None
    guard.install(runner.server)
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, guard
