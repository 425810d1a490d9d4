"""Small helpers shared by the tests (importable as ``tests.helpers``)."""

from __future__ import annotations

import asyncio
import inspect
import socket
import time
from collections.abc import Awaitable, Callable


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


async def wait_until(
    predicate: Callable[[], object | Awaitable[object]],
    timeout: float,
    what: str,
    *,
    interval: float = 0.05,
) -> object:
    """Poll ``predicate`` (sync or async) until it returns something truthy; return that.

    Fails with ``AssertionError("timed out after Ns waiting for <what>")`` at the
    deadline, with the predicate's last result. An exception raised by the predicate
    propagates at once (use that to fail fast, e.g. when a process under test died).
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        last = result
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout:g}s waiting for {what} (last result: {last!r})"
            )
        await asyncio.sleep(interval)
