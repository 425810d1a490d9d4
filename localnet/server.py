"""``orderflow localnet``: a Solana cluster we run ourselves, and its market, in one process.

The JSON-RPC server (LiteSVM underneath) listens on ``config.rpc_port``, its PubSub
WebSocket on ``config.ws_port`` (the RPC port + 1, where Solana clients look for it) and the
Jupiter-shaped market on ``config.venue_port``. They share one :class:`Chain`
so the market sees every transaction land and settles its books.

Fault switches start from ``config.faults`` (``ORDERFLOW_FAULTS``; off when unset) and are
changed at runtime with ``/admin/faults`` on either server; see :mod:`localnet.faults`.
Those, the clock and the faucet answer loopback clients with the admin token only; see
:mod:`localnet.admin`.

The configuration is a :class:`~localnet.config.LocalnetConfig` built by the caller (the
``orderflow`` command); this package imports nothing of the engine.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from localnet import admin
from localnet.config import LocalnetConfig, LocalnetConfigError
from localnet.faults import FaultConfigError, RpcFaults, VenueFaults, parse_env
from localnet.market import Market, build_market_app
from localnet.market import resume as market_resume
from localnet.pubsub import build_pubsub_app
from localnet.rpc import build_rpc_app
from localnet.startup import build_chain

log = logging.getLogger(__name__)


async def serve(config: LocalnetConfig, *, fund: list[str] | None = None) -> None:
    """Run the localnet until SIGTERM/SIGINT; :class:`LocalnetConfigError` if it cannot start."""
    try:
        rpc_faults, venue_faults = parse_env(config.faults)
    except FaultConfigError as exc:
        raise LocalnetConfigError(f"ORDERFLOW_FAULTS: {exc}") from None
    token, token_file = admin.resolve_token(config.admin_token, config.data_dir)
    chain, store, saved = build_chain(config)  # resumed, forked, preloaded: localnet.startup
    market = Market(chain, seed=saved.seed if saved else config.seed,
                    drift_bps=config.drift_bps, restore=saved)
    if store is not None:
        market_resume.attach(market, store)
    for owner in fund or []:
        market.faucet(owner)
        log.info("funded %s with SOL, USDC and USDT", owner)
    runners = []
    clock = asyncio.create_task(chain.run_clock(), name="localnet-clock")
    try:
        apps = ((build_rpc_app(chain, RpcFaults(chain, rpc_faults), admin_token=token,
                               rpc_address=f"{config.host}:{config.rpc_port}",
                               pubsub_address=f"{config.host}:{config.ws_port}"),
                 config.rpc_port),
                (build_pubsub_app(chain), config.ws_port),
                (build_market_app(market, faults=VenueFaults(venue_faults), admin_token=token),
                 config.venue_port))
        for app, port in apps:
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, config.host, port).start()
            runners.append(runner)
        log.info("localnet RPC on http://%s:%d (PubSub ws://%s:%d), market on "
                 "http://%s:%d/swap/v1 (slot %d ms, drift %d bps)", config.host, config.rpc_port,
                 config.host, config.ws_port, config.host, config.venue_port, config.slot_ms,
                 config.drift_bps)
        log.info("fault switches: /admin/faults on both servers (%s), clock: /admin/clock on "
                 "the RPC", "set from ORDERFLOW_FAULTS" if rpc_faults.active
                 or venue_faults.active else "all off")
        log.info("admin endpoints and the faucet: loopback only, bearer token %s",
                 f"in {token_file} (0600)" if token_file else f"from ${admin.TOKEN_ENV}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        done, _ = await asyncio.wait(
            [asyncio.create_task(stop.wait(), name="localnet-stop"), clock],
            return_when=asyncio.FIRST_COMPLETED)
        if clock in done and clock.exception() is not None:
            raise clock.exception()  # type: ignore[misc]
    finally:
        clock.cancel()
        for runner in reversed(runners):
            await runner.cleanup()
        market.close()
        if store is not None:
            store.close()  # the current slot too: a clean stop loses nothing
