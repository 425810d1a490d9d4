"""The ``orderflow`` command: one entry point, one settings object built here."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from orderflow.settings import Settings
from pipeline.errors import ConfigError


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "httpx2", "aiokafka.consumer.fetcher"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="orderflow", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start the whole system on embedded defaults")
    sub.add_parser("ingress", help="HTTP API + WebSocket + UI")
    w = sub.add_parser("worker", help="faust worker: order execution and/or status sinks")
    w.add_argument("--role", action="append", choices=["executor", "sinks"],
                   help="roles to run (default: both)")
    ln = sub.add_parser("localnet", help="LiteSVM Solana JSON-RPC + local Raydium/Meteora market")
    ln.add_argument("--fund", action="append", default=[], metavar="PUBKEY",
                    help="airdrop SOL and mint USDC/USDT to this wallet at start")
    sub.add_parser("migrate", help="apply database migrations")
    from orderflow.bench import add_arguments as bench_arguments

    bench_arguments(sub.add_parser("bench", help="measure throughput and latency, with ceilings"))
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as exc:
        print(f"orderflow: configuration error: {exc.message}", file=sys.stderr)
        return 2
    _configure_logging(settings.log_level)
    try:
        return _dispatch(args, settings)
    except ConfigError as exc:
        print(f"orderflow {args.command}: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "up":
        from orderflow.supervisor import run_up

        return run_up(settings)
    if args.command == "ingress":
        from ingress.app import serve

        asyncio.run(_migrate_then(settings, serve(settings.ingress_config())))
        return 0
    if args.command == "worker":
        from orderflow.worker import run_worker

        return run_worker(settings, frozenset(args.role or ("executor", "sinks")))
    if args.command == "localnet":
        from localnet.config import LocalnetConfigError
        from localnet.server import serve as serve_localnet

        try:
            asyncio.run(serve_localnet(settings.localnet_config(), fund=list(args.fund)))
        except LocalnetConfigError as exc:
            raise ConfigError(message=str(exc)) from None
        return 0
    if args.command == "bench":
        from orderflow.bench import run_bench

        return run_bench(args, settings)
    if args.command == "migrate":
        from sinks.migrate import migrate

        settings.require("database_url")
        assert settings.database_url
        applied = asyncio.run(migrate(settings.database_url))
        print(f"migrations applied: {', '.join(applied) or 'none (up to date)'}")
        return 0
    raise AssertionError(args.command)


async def _migrate_then(settings: Settings, coro: object) -> None:
    from collections.abc import Coroutine
    from typing import Any, cast

    from sinks.migrate import migrate

    assert settings.database_url
    await migrate(settings.database_url)
    await cast(Coroutine[Any, Any, None], coro)


if __name__ == "__main__":
    sys.exit(main())
