"""Small helpers shared by the tests (importable as ``tests.helpers``)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

from orderflow.embedded import free_port

__all__ = ["free_port", "wait_until"]


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


class TcpProxy:
    """A real TCP proxy whose link can be cut: connections reset, new ones refused.

    Used to make a real server (PostgreSQL) unreachable for one client, as a network
    partition or a database restart would, without touching the server itself.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()

    async def restore(self) -> None:
        await self.start()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update({writer, up_writer})

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()
                self._writers.discard(dst)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def read_dead_letters(bootstrap: str, keys: set[str], timeout: float
                            ) -> dict[str, dict[str, object]]:
    """Read ``orders-dlt`` from the start until a record exists for every key; key → record."""
    import orjson
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer("orders-dlt", bootstrap_servers=bootstrap,
                                auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    found: dict[str, dict[str, object]] = {}
    try:
        async def all_found() -> bool:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for r in records:
                    key = (r.key or b"").decode()
                    if key in keys:
                        found.setdefault(key, orjson.loads(r.value))
            return keys <= found.keys()
        await wait_until(all_found, timeout, f"{len(keys)} records on orders-dlt")
    finally:
        await consumer.stop()
    return found
