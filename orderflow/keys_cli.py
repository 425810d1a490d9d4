"""``orderflow keys create|list|revoke``: the API's bearer keys, kept hashed in PostgreSQL.

The database is ``ORDERFLOW_DATABASE_URL``, else the embedded one ``orderflow up`` started
from this data directory (its address is saved there: orderflow/embedded/ports.py).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from orderflow.embedded.ports import saved_dsn
from orderflow.settings import Settings, redact
from pipeline.errors import ConfigError, InvalidOrder


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="keys_command", required=True, metavar="{create,list,revoke}")
    c = sub.add_parser("create", help="create a key and print its token (shown only once)",
                       description="Create an API key. The token is printed once: store it; "
                       "only its hash is kept.")
    c.add_argument("--name", required=True, help="a name for the key, e.g. bot1")
    c.add_argument("--scope", required=True, choices=("trade", "read"),
                   help="trade: submit orders and read; read: read only")
    c.add_argument("--rate", type=float, default=20.0, metavar="PER_S",
                   help="requests per second this key may make (default 20)")
    c.add_argument("--burst", type=int, default=40,
                   help="requests it may make at once above the rate (default 40)")
    sub.add_parser("list", help="list the keys (never their tokens)")
    r = sub.add_parser("revoke", help="revoke a key by name or id")
    r.add_argument("key", metavar="NAME_OR_ID")


def database_url(settings: Settings) -> str:
    dsn = settings.database_url or saved_dsn(settings.data_dir)
    if dsn is None:
        raise ConfigError(message="set ORDERFLOW_DATABASE_URL, or start `orderflow up` once "
                          f"with this data directory ({settings.data_dir})")
    return dsn


def run_keys(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_run(args, database_url(settings)))


async def _run(args: argparse.Namespace, dsn: str) -> int:
    from psycopg_pool import AsyncConnectionPool

    from ingress.api_keys import new_key
    from ingress.pg_api_keys import PostgresApiKeyStore
    from ingress.ports import StoreUnavailable
    from sinks.migrate import migrate

    try:
        await migrate(dsn)
    except OSError as exc:
        raise ConfigError(message=f"cannot reach the database {redact(dsn)}: {exc}") from None
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        dsn, min_size=1, max_size=1, open=False, kwargs={"autocommit": True})
    await pool.open(wait=True, timeout=10)
    try:
        store = PostgresApiKeyStore(pool)
        if args.keys_command == "create":
            try:
                new = new_key(args.name, args.scope, rate_per_s=args.rate, burst=args.burst)
                await store.create(new)
            except InvalidOrder as exc:
                raise ConfigError(message=exc.message) from None
            print(f"created key {new.key.name} (id {new.key.key_id}, scope {new.key.scope}, "
                  f"{new.key.rate_per_s:g}/s, burst {new.key.burst})")
            print("token (shown only now; send it as `Authorization: Bearer <token>`):")
            print(new.token)
            return 0
        if args.keys_command == "list":
            keys = await store.list_keys()
            if not keys:
                print("no keys (create one: orderflow keys create --name bot1 --scope trade)")
            for k in keys:
                state = "live" if k.revoked_at is None else f"revoked {k.revoked_at:%Y-%m-%d %H:%M}"
                created = f"{k.created_at:%Y-%m-%d %H:%M}" if k.created_at else "?"
                print(f"{k.key_id}  {k.name:<20} {k.scope:<5}  {k.rate_per_s:g}/s burst "
                      f"{k.burst:<4}  created {created}  {state}")
            return 0
        revoked = await store.revoke(args.key)
        if revoked is None:
            print(f"orderflow keys revoke: no live key named or with id {args.key!r}")
            return 1
        print(f"revoked key {revoked.name} (id {revoked.key_id})")
        return 0
    except StoreUnavailable as exc:
        raise ConfigError(message=exc.message) from None
    finally:
        await pool.close()
