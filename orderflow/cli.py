"""The ``orderflow`` command: one entry point, one settings object built here (the words it
shows people are in :mod:`orderflow.cli_help`)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import sys
from typing import TYPE_CHECKING

from orderflow.settings import Settings
from pipeline.errors import ConfigError
from pipeline.tokens import parse_tokens, register_tokens

if TYPE_CHECKING:
    from localnet.config import LocalnetConfig


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "httpx2", "aiokafka.consumer.fetcher"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _parser() -> argparse.ArgumentParser:
    from orderflow import cli_help

    p = argparse.ArgumentParser(prog="orderflow", description=cli_help.DESCRIPTION,
                                epilog=cli_help.EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=cli_help.version())
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = sub.add_parser("up", help="run everything on this machine: page, API, engine, "
                        "a local Solana cluster", description=cli_help.DESCRIPTION,
                        epilog=cli_help.up_epilog(),
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    up.add_argument("--reset-localnet", action="store_true",
                    help="start the localnet from a new genesis (deletes its saved chain)")
    sub.add_parser("ingress", help="HTTP API + WebSocket + UI")
    w = sub.add_parser("worker", help="faust worker: order execution and/or status sinks")
    w.add_argument("--role", action="append", choices=["executor", "sinks"],
                   help="roles to run (default: both)")
    ln = sub.add_parser("localnet", help="LiteSVM Solana JSON-RPC + local Raydium/Meteora market")
    ln.add_argument("--fund", action="append", default=[], metavar="PUBKEY",
                    help="airdrop SOL and mint USDC/USDT to this wallet at start")
    ln.add_argument("--bpf-program", action="append", nargs=2, default=[],
                    metavar=("ADDRESS", "PATH.so"),
                    help="deploy this SBF program at ADDRESS (repeatable; as test-validator)")
    ln.add_argument("--account", action="append", nargs=2, default=[],
                    metavar=("ADDRESS", "PATH.json"),
                    help="write this account (`solana account --output json` file; repeatable)")
    ln.add_argument("--fork-url", metavar="URL",
                    help="fetch every account the localnet lacks from this cluster on first use")
    ln.add_argument("--reset", action="store_true",
                    help="start from a new genesis (deletes the chain saved in the data dir)")
    ln.add_argument("--ephemeral", action="store_true",
                    help="keep the chain in memory only (nothing saved, nothing resumed)")
    sub.add_parser("migrate", help="apply database migrations")
    from orderflow.keys_cli import add_arguments as keys_arguments

    keys_arguments(sub.add_parser("keys", help="API keys for bots: create, list, revoke"))
    from orderflow.market.cli import add_arguments as market_arguments

    market_arguments(sub.add_parser("market", help="our own CP-Swap pool and DLMM pair on "
                                    "the real programs (configs, create, status); a new "
                                    "token and pool on the local market (create-pool)"))
    from orderflow.bench import add_arguments as bench_arguments

    bench_arguments(sub.add_parser("bench", help="measure throughput and latency, with ceilings"))
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env(os.environ)
        # ORDERFLOW_TOKENS: tokens beyond SOL/USDC/USDT (e.g. a devnet market's test
        # mints), registered before any order is read, in every process the command runs.
        register_tokens(parse_tokens(os.environ.get("ORDERFLOW_TOKENS")))
    except ConfigError as exc:
        print(f"orderflow: configuration error: {exc.message}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"orderflow: configuration error: {exc}", file=sys.stderr)
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

        if args.reset_localnet:
            from localnet.persist import reset

            reset(settings.data_dir / "localnet")
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
            asyncio.run(serve_localnet(_localnet_config(args, settings), fund=list(args.fund)))
        except LocalnetConfigError as exc:
            raise ConfigError(message=str(exc)) from None
        return 0
    if args.command == "bench":
        from orderflow.bench import run_bench

        return run_bench(args, settings)
    if args.command == "market":
        from orderflow.market.cli import run_market

        return run_market(args, settings)
    if args.command == "keys":
        from orderflow.keys_cli import run_keys

        return run_keys(args, settings)
    if args.command == "migrate":
        from sinks.migrate import migrate

        settings.require("database_url")
        assert settings.database_url
        applied = asyncio.run(migrate(settings.database_url))
        print(f"migrations applied: {', '.join(applied) or 'none (up to date)'}")
        return 0
    raise AssertionError(args.command)


def _localnet_config(args: argparse.Namespace, settings: Settings) -> LocalnetConfig:
    """The settings' localnet configuration plus this command's switches."""
    from pathlib import Path

    config = settings.localnet_config()
    return dataclasses.replace(
        config, reset=args.reset, persist=not args.ephemeral,
        fork_url=args.fork_url or config.fork_url,
        programs=config.programs + tuple((a, Path(p)) for a, p in args.bpf_program),
        accounts=config.accounts + tuple((a, Path(p)) for a, p in args.account))


async def _migrate_then(settings: Settings, coro: object) -> None:
    from collections.abc import Coroutine
    from typing import Any, cast

    from sinks.migrate import migrate

    assert settings.database_url
    await migrate(settings.database_url)
    await cast(Coroutine[Any, Any, None], coro)


if __name__ == "__main__":
    sys.exit(main())
