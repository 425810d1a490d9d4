"""``orderflow market create-pool``: launch a new token and its pool(s) on the running local
market (``POST /admin/pools`` of the localnet's venue, with the localnet's admin token), for
tests and demos of sniper orders. Prints what ``GET /pools`` will show of the launch."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from localnet.admin import auth_headers, read_token
from orderflow.settings import Settings
from pipeline.errors import ConfigError, InvalidOrder
from pipeline.tokens import resolve_token


def add_create_pool(sub: Any) -> None:
    p = sub.add_parser("create-pool", help="launch a new token and its pool(s) on the "
                       "running local market (tests and demos of sniper orders)")
    p.add_argument("--venue-url", help="the local market (default: ORDERFLOW_VENUE_URL or "
                   "the localnet's venue port)")
    p.add_argument("--mint", help="the new token's mint address, e.g. the one a sniper "
                   "order waits for (default: a fresh address)")
    p.add_argument("--symbol", help="default: T and the mint's first letters")
    p.add_argument("--decimals", type=int, default=6, help="default 6")
    p.add_argument("--quote", default="SOL", help="the token it trades against (symbol or "
                   "mint), default SOL")
    p.add_argument("--price", required=True, help="quote per token in UI units, e.g. 0.001")
    p.add_argument("--depth", type=int, required=True,
                   help="whole tokens in each pool (with their worth in the quote token)")
    p.add_argument("--pools", default="cpmm", help="cpmm, dlmm or cpmm,dlmm (default cpmm)")


def _admin_url(args: argparse.Namespace, settings: Settings) -> str:
    venue = args.venue_url or settings.venue_url or (
        f"http://{settings.http_host}:{settings.localnet_venue_port}/swap/v1")
    parts = urlsplit(venue)
    return f"{parts.scheme}://{parts.netloc}/admin/pools"


def request_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {
        "decimals": args.decimals, "price": args.price, "depth": args.depth,
        "quoteMint": resolve_token(args.quote, field="--quote").mint,
        "pools": [k.strip() for k in args.pools.split(",") if k.strip()]}
    if args.mint:
        body["mint"] = args.mint
    if args.symbol:
        body["symbol"] = args.symbol
    return body


async def _launch(url: str, token: str | None, body: dict[str, Any]) -> dict[str, Any]:
    async with aiohttp.ClientSession() as s, s.post(
            url, json=body, headers=auth_headers(token),
            timeout=aiohttp.ClientTimeout(total=30)) as resp:
        doc = await resp.json(content_type=None)
        if resp.status != 201:
            raise ConfigError(message=f"the market refused the launch ({resp.status}): "
                              f"{doc.get('error', doc) if isinstance(doc, dict) else doc}")
        assert isinstance(doc, dict)
        return doc


def run_create_pool(args: argparse.Namespace, settings: Settings) -> int:
    try:
        body = request_body(args)
    except InvalidOrder as exc:
        raise ConfigError(message=exc.message) from None
    try:
        doc = asyncio.run(_launch(_admin_url(args, settings), read_token(settings.data_dir),
                                  body))
    except aiohttp.ClientError as exc:
        raise ConfigError(message=f"the local market is not reachable: {exc}") from None
    pools = [{k: p[k] for k in ("label", "ammKey", "mintX", "mintY", "reserveX", "reserveY",
                                "price", "createdSlot")} for p in doc["pools"]]
    print(json.dumps({**doc, "pools": pools}, indent=2))
    return 0
