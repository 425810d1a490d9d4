"""A new token and its pool(s), launched while the localnet runs: ``POST /admin/pools``
(admin-guarded, :mod:`localnet.admin`; ``orderflow market create-pool`` calls it), so
sniper orders can be tried without the real programs.

The token's mint is written at the address the caller names (a sniper order names the
mint it waits for before the launch) or at a fresh one, with the market's mint authority;
each pool gets its own maker, derived from the market seed like the listed pools' makers,
and its vaults are funded with real transactions (``MintTo``, SOL wrapped). The pools are
listed at once: ``GET /pools`` shows them with their ``createdSlot`` (the slot their vaults
were funded in), ``/quote`` and ``/swap-instructions`` trade them, and they are saved with
the market (:mod:`localnet.market.resume`). Launched pools do not drift: only trades move
them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from solders.keypair import Keypair

from dexmath import dlmm
from localnet.market.errors import U64_MAX, MarketError, bad_request, parse_pubkey
from localnet.market.pools import CpmmSpec, DlmmSpec, Pool, PoolSpec, raw_price
from localnet.market.tokens import NATIVE_MINT, MarketToken
from localnet.txerrors import ChainError

if TYPE_CHECKING:
    from localnet.market.market import Market

KINDS = ("cpmm", "dlmm")
DEFAULT_FEE_RATE = 2_500  # CP-Swap's 0.25 % tier
DLMM_BIN_STEP = 25
DLMM_BINS_EACH_SIDE = 30
_DECIMAL = re.compile(r"^[0-9]+(\.[0-9]+)?$")
_SYMBOL = re.compile(r"^[A-Za-z0-9]{1,10}$")


@dataclass(frozen=True, slots=True)
class Launch:
    """What to launch: ``token`` (new) against ``quote`` (listed), ``depth`` whole tokens
    in each pool at ``price`` quote per token (UI units)."""

    token: MarketToken
    quote: MarketToken
    price: Fraction
    depth: int
    kinds: tuple[str, ...]
    trade_fee_rate: int = DEFAULT_FEE_RATE

    def specs(self) -> list[PoolSpec]:
        """CP-Swap: ``depth`` tokens and their worth; DLMM: ``depth`` tokens spread over the
        bins above the price (and the active one), their worth in the bins below."""
        out: list[PoolSpec] = []
        if "cpmm" in self.kinds:
            out.append(CpmmSpec(self.token, self.quote, self.price, depth_x=self.depth,
                                trade_fee_rate=self.trade_fee_rate))
        if "dlmm" in self.kinds:
            out.append(DlmmSpec(self.token, self.quote, self.price, bin_step=DLMM_BIN_STEP,
                                params=dlmm.FeeParams(), bins_each_side=DLMM_BINS_EACH_SIDE,
                                x_per_bin=Fraction(self.depth, DLMM_BINS_EACH_SIDE + 1)))
        return out


def _price(value: Any) -> Fraction:
    if not isinstance(value, str) or not _DECIMAL.match(value):
        raise bad_request("price must be a decimal string such as \"0.001\" (quote per token)")
    price = Fraction(value)
    if price <= 0:
        raise bad_request("price must be greater than zero")
    return price


def _int(doc: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = doc.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise bad_request(f"{name} must be an integer in {low}..{high}")
    return value


def parse_launch(doc: Any, tokens: Mapping[str, MarketToken], taken: set[str]) -> Launch:
    """The request's launch, or a ``MarketError`` naming the field. ``tokens``: the listed
    tokens by mint; ``taken``: symbols in use."""
    if not isinstance(doc, dict):
        raise bad_request("body must be a JSON object")
    unknown = sorted(set(doc) - {"mint", "symbol", "decimals", "quoteMint", "price", "depth",
                                 "pools", "tradeFeeRate"})
    if unknown:
        raise bad_request(f"unknown field {unknown[0]!r}")
    mint = (parse_pubkey(doc["mint"], "mint") if doc.get("mint") is not None
            else Keypair().pubkey())
    if str(mint) in tokens:
        raise MarketError(409, f"the token {mint} is listed already", "TOKEN_EXISTS")
    symbol = doc.get("symbol") or f"T{str(mint)[:5]}"
    if not isinstance(symbol, str) or not _SYMBOL.match(symbol):
        raise bad_request("symbol must be 1 to 10 letters or digits")
    symbol = symbol.upper()
    if symbol in taken:
        raise MarketError(409, f"the symbol {symbol} is taken", "TOKEN_EXISTS")
    quote = tokens.get(str(doc.get("quoteMint", NATIVE_MINT)))
    if quote is None:
        raise MarketError(400, f"quoteMint {doc.get('quoteMint')} is not a listed token",
                          "TOKEN_NOT_TRADABLE")
    kinds = doc.get("pools", ["cpmm"])
    if (not isinstance(kinds, list) or not kinds or len(set(kinds)) != len(kinds)
            or any(k not in KINDS for k in kinds)):
        raise bad_request(f"pools must be a non-empty list of {', '.join(KINDS)}")
    launch = Launch(MarketToken(symbol, mint, _int(doc, "decimals", 6, 0, 12)), quote,
                    _price(doc.get("price")), _int(doc, "depth", 0, 1, U64_MAX),
                    tuple(kinds), _int(doc, "tradeFeeRate", DEFAULT_FEE_RATE, 0, 100_000))
    raw_depth = launch.depth * 10**launch.token.decimals
    worth = raw_depth * raw_price(launch.price, launch.token, quote)
    if raw_depth > U64_MAX // 2 or not 1 <= worth <= U64_MAX // 2:
        raise bad_request("depth at this price does not fit the pools (u64 reserves, at "
                          "least one base unit of the quote token)")
    return launch


def launch(market: Market, request: Launch) -> dict[str, Any]:
    """Create the mint, fund and list the pools; answer what ``GET /pools`` will show."""
    chain = market.chain
    try:
        chain.create_mint_at(request.token.mint, request.token.decimals,
                             market.mint_authority.pubkey())
    except ValueError:
        raise MarketError(409, f"{request.token.mint} is an existing account",
                          "TOKEN_EXISTS") from None
    market.tokens[str(request.token.mint)] = request.token
    specs = request.specs()
    pools = [Pool.from_spec(spec, market.seed) for spec in specs]
    try:
        for pool in pools:
            market.funding.fund_vaults(pool)
    except ChainError as exc:
        raise MarketError(500, f"funding the pools failed: {exc}", "LAUNCH_FAILED") from None
    for spec, pool in zip(specs, pools, strict=True):
        pool.created_slot = chain.slot
        market.list_pool(pool, spec)
    return {"mint": str(request.token.mint), "symbol": request.token.symbol,
            "decimals": request.token.decimals, "createdSlot": chain.slot,
            "pools": [pool.to_json() for pool in pools]}
