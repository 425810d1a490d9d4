"""The ingress process: HTTP + WebSocket API in front of Kafka, reading state from PostgreSQL.

:func:`build_app` wires routes to injected ports (tests pass doubles);
:func:`running_ingress` starts the real dependencies in order and stops them in
reverse; :func:`serve` runs that until SIGTERM/SIGINT or cancellation.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError
from aiokafka import AIOKafkaProducer
from psycopg import AsyncConnection
from psycopg.types.json import set_json_loads
from psycopg_pool import AsyncConnectionPool

from ingress.api_docs import register as register_docs
from ingress.api_keys import ApiKeyStore
from ingress.auth import Auth, is_loopback
from ingress.cancel_api import CancelApi
from ingress.chain_view import ChainView
from ingress.config import IngressConfig
from ingress.connections import start_site
from ingress.health import HealthApi
from ingress.hub import StatusHub
from ingress.idempotency import IdempotencyStore, InMemoryIdempotencyStore
from ingress.intake import OrderIntake
from ingress.kafka_bus import KafkaOrderBus
from ingress.market_api import MarketApi
from ingress.market_wiring import market_access
from ingress.metrics import IngressMetrics
from ingress.open_orders import TriggerDistance
from ingress.orders_api import MAX_BODY_BYTES, OrdersApi
from ingress.origin import OriginPolicy, origin_guard
from ingress.pg_api_keys import PostgresApiKeyStore
from ingress.pg_idempotency import PostgresIdempotencyStore
from ingress.pg_idempotency import configure_connection as configure_idempotency_connection
from ingress.pg_store import PostgresOrderStore
from ingress.pg_workers import PostgresWorkerRegistry
from ingress.pool_charts import PoolCharts
from ingress.ports import OrderBus, OrderStore, WorkerRegistry
from ingress.responses import error_response
from ingress.status_feed import StatusFeed
from ingress.ws_api import WebSocketApi
from pipeline.errors import InvalidOrder, TransientError
from pipeline.tasks import spawn
from pipeline.topic_admin import create_topics
from pipeline.topics import topic_specs
from pipeline.venue_set import VenueSet

log = logging.getLogger(__name__)

# Request bodies are small JSON: they are never decompressed. aiohttp would otherwise decode
# Content-Encoding in its HTTP parser, before any route runs, and answer a body that does not
# decode with a plain-text 400 (or drop the connection); this way the route sees the header
# and answers 415 unsupported_content_encoding in the API's error shape. Tests use it too.
RUNNER_OPTIONS: dict[str, Any] = {"auto_decompress": False}
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large",
               415: "unsupported_media_type"}


@web.middleware
async def api_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every /api error has the JSON error shape; nothing a client sends yields a bare 500."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except web.HTTPException as exc:
        if exc.status < 400 or not request.path.startswith("/api/"):
            raise
        response = error_response(exc.status, _HTTP_CODES.get(exc.status, f"http_{exc.status}"),
                                  exc.reason)
        if "Allow" in exc.headers:  # a 405 says which methods the resource has (RFC 9110)
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except InvalidOrder as exc:
        return error_response(400, exc.code, exc.message, exc.field)
    except (HttpProcessingError, RequestPayloadError) as exc:  # a body aiohttp could not decode
        if not request.path.startswith("/api/"):
            raise
        return error_response(400, "bad_request", str(exc).strip() or "malformed request")
    except TransientError as exc:
        return error_response(503, exc.code, exc.message)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal error; see the server log")


def build_app(config: IngressConfig, *, producer: OrderBus, store: OrderStore, hub: StatusHub,
              metrics: IngressMetrics | None = None,
              idempotency: IdempotencyStore | None = None,
              workers: WorkerRegistry | None = None,
              market: MarketApi | None = None,
              api_keys: ApiKeyStore | None = None) -> web.Application:
    """The routes on injected ports; ``idempotency`` defaults to an in-memory store;
    without ``workers`` /healthz does not check worker presence (reported as skipped);
    without ``market`` the quote, markets and wallet routes answer 503; ``api_keys``
    checks bearer keys (required unless ``config.host`` is loopback: ingress/auth.py)."""
    metrics = metrics if metrics is not None else IngressMetrics()
    keys = idempotency if idempotency is not None else InMemoryIdempotencyStore()
    intake = OrderIntake(producer, metrics, keys, market_ttl_ms=config.market_ttl_ms)
    market = market if market is not None else MarketApi(
        None, VenueSet(), balances=None, wallet=None)
    orders = OrdersApi(intake, store, metrics, api_keys, TriggerDistance(market.router))
    sockets = WebSocketApi(intake, store, hub, metrics, api_keys)
    health = HealthApi(config.rpc_url, producer, store, metrics, workers)

    auth = Auth(api_keys, required=not is_loopback(config.host))
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[
        origin_guard(OriginPolicy(config.allowed_origins)), api_errors, auth.middleware])
    # Literal paths before the {orderId} pattern: the router matches in this order.
    app.router.add_post("/api/orders/execute", orders.execute)
    app.router.add_get("/api/orders/execute", sockets.execute)
    app.router.add_get("/api/orders/ws", sockets.subscribe)
    app.router.add_get("/api/orders", orders.list_orders)
    app.router.add_get("/api/orders/{orderId}", orders.get_order)
    # not the literal paths above: DELETE /api/orders/execute stays a 405, not an order id
    app.router.add_delete("/api/orders/{orderId:(?!(?:execute|ws)$)[^{}/]+}",
                          CancelApi(intake, store, hub, api_keys).cancel)
    app.router.add_get("/api/quote", market.quote)
    app.router.add_get("/api/markets", market.markets)
    app.router.add_get("/api/wallet", market.wallet)
    ChainView(config.rpc_url, config.venues, keys_required=auth.required).register(app)
    PoolCharts(config.venues, onchain=market.onchain_pools,
               trades=market.pool_trades).register(app)
    app.router.add_get("/api/openapi.json", openapi_document)
    register_docs(app)  # /docs: the reference page over that document
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/metrics", health.metrics)
    if config.ui_dir is not None:
        _add_ui(app, config.ui_dir)
    app.cleanup_ctx.append(health.client_session)
    app.on_shutdown.append(sockets.close_all)
    return app


def _add_ui(app: web.Application, ui_dir: Path) -> None:
    index = ui_dir / "index.html"

    async def ui_index(_request: web.Request) -> web.StreamResponse:
        if not index.is_file():
            raise web.HTTPNotFound(text="ui/index.html is missing")
        return web.FileResponse(index)

    app.router.add_get("/", ui_index)
    if ui_dir.is_dir():
        app.router.add_static("/ui/", ui_dir)


@functools.cache
def _openapi_bytes() -> bytes:
    return resources.files("ingress").joinpath("openapi.json").read_bytes()


async def openapi_document(_request: web.Request) -> web.Response:
    """``GET /api/openapi.json``: the hand-written OpenAPI 3.1 description of this API."""
    return web.Response(body=_openapi_bytes(), content_type="application/json")


async def purge_expired_keys(keys: IdempotencyStore, *, interval_s: float) -> None:
    """Forget expired idempotency keys now and then; a failed round is retried next time."""
    while True:
        try:
            purged = await keys.purge_expired()
            if purged:
                log.info("purged %d expired idempotency keys", purged)
        except Exception:
            log.warning("purging expired idempotency keys failed", exc_info=True)
        await asyncio.sleep(interval_s)


@dataclass(frozen=True, slots=True)
class RunningIngress:
    app: web.Application
    hub: StatusHub
    metrics: IngressMetrics
    url: str
    feed_task: asyncio.Task[None]


async def _configure_connection(conn: AsyncConnection[Any]) -> None:
    set_json_loads(orjson.loads, conn)


async def _cancel_and_wait(task: asyncio.Task[Any]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@asynccontextmanager
async def running_ingress(config: IngressConfig) -> AsyncIterator[RunningIngress]:
    """Start producer, read pool, status feed and HTTP site; stop them in reverse order."""
    await create_topics(config.bootstrap,
                        topic_specs(config.orders_partitions, config.status_partitions))
    metrics = IngressMetrics()
    hub = StatusHub()
    async with AsyncExitStack() as stack:
        producer = AIOKafkaProducer(bootstrap_servers=config.bootstrap, acks="all",
                                    client_id=f"{config.app_id}-ingress",
                                    request_timeout_ms=config.producer_request_timeout_ms)
        await producer.start()
        stack.push_async_callback(producer.stop)

        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            config.database_url, min_size=1, max_size=config.db_pool_max, open=False,
            timeout=config.db_pool_timeout_s, kwargs={"autocommit": True},
            configure=_configure_connection, name="ingress-read")
        await pool.open(wait=True, timeout=config.db_open_timeout_s)
        stack.push_async_callback(pool.close)

        keys_pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            config.database_url, min_size=1, max_size=config.idempotency_pool_max,
            open=False, timeout=config.db_pool_timeout_s, kwargs={"autocommit": True},
            configure=configure_idempotency_connection, name="ingress-idempotency")
        await keys_pool.open(wait=True, timeout=config.db_open_timeout_s)
        stack.push_async_callback(keys_pool.close)
        keys = PostgresIdempotencyStore(keys_pool)
        purger = spawn(purge_expired_keys(keys, interval_s=config.purge_interval_s),
                       name="ingress.idempotency-purge")
        stack.push_async_callback(_cancel_and_wait, purger)

        feed = StatusFeed(config.bootstrap, hub, metrics,
                          client_id=f"{config.app_id}-ingress-status")
        await feed.start()
        stack.push_async_callback(feed.stop)
        feed_task = spawn(feed.run(), name="ingress.status-feed")
        stack.push_async_callback(_cancel_and_wait, feed_task)

        market = await stack.enter_async_context(market_access(config))
        app = build_app(config, producer=KafkaOrderBus(producer),
                        store=PostgresOrderStore(pool), hub=hub, metrics=metrics,
                        idempotency=keys, workers=PostgresWorkerRegistry(pool),
                        market=market, api_keys=PostgresApiKeyStore(pool))
        runner, _ = await start_site(app, config.host, config.port,
                                     handle_signals=False, access_log=None,
                                     shutdown_timeout=config.shutdown_timeout_s,
                                     **RUNNER_OPTIONS)
        stack.push_async_callback(runner.cleanup)
        host, port = runner.addresses[0][:2]
        url = f"http://{host}:{port}"
        log.info("ingress listening on %s", url)
        try:
            yield RunningIngress(app, hub, metrics, url, feed_task)
        finally:
            log.info("ingress stopping")


@contextmanager
def _stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            pass
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


async def serve(config: IngressConfig) -> None:
    """Run ingress until SIGTERM/SIGINT or cancellation; re-raise if the status feed dies."""
    async with running_ingress(config) as ingress:
        stop = asyncio.Event()
        with _stop_on_signals(stop):
            stopper = spawn(stop.wait(), name="ingress.stop-signal")
            try:
                await asyncio.wait({stopper, ingress.feed_task},
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopper.cancel()
        if ingress.feed_task.done():
            ingress.feed_task.result()  # re-raise the feed's failure (the stack still unwinds)
            raise RuntimeError("the status feed stopped unexpectedly")
