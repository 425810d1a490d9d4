"""The soak's order mix: market, limit and sniper orders, and the real market events that
decide the conditional ones.

``--mix market=70,limit=20,sniper=10`` (weights). A limit order is one of four kinds, in
turn: ``limit_now`` (10 % under the market's quote: there already, and still after the
trader's lifts), ``limit_move`` (SOL sold 1 % above the quote: it fills only once a
trader's real trade has lifted SOL on the CP-Swap pool), ``limit_never`` (three times the
quote: it expires) and ``limit_cancel`` (as unreachable, cancelled by
``DELETE /api/orders/{id}``). A sniper
order (SOL into a token that does not exist yet) is ``sniper_launch`` (its token and
CP-Swap pool are launched while the soak runs, ``POST /admin/pools``) or ``sniper_never``
(its token never launches: it expires). Each limit's minimum output and each sniper's
least tokens are kept here, by order id, for the judge: what the chain says each got is
compared with them, never the engine's own numbers.

The trader is another wallet, funded by the local market's faucet, so its trades are not
the soak wallet's and the audit's reconciliation of that wallet is untouched.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiohttp
from solders.keypair import Keypair

from pipeline.model import LimitTerms, OrderType, SniperTerms
from pipeline.solana_rpc import sign_as
from pipeline.tokens import SOL, USDC, token_by_mint
from pipeline.wire import ExecuteOrder, iso_ms, now_ms

log = logging.getLogger("tests.soak")

LIMIT_KINDS = ("limit_now", "limit_move", "limit_never", "limit_cancel")
SNIPER_KINDS = ("sniper_launch", "sniper_launch", "sniper_never")  # 2 of 3 launch
SNIPER_SOL = 50_000_000  # 0.05 SOL per sniper order
SNIPER_MIN_TOKENS = 40 * 10**6  # at most 0.00125 SOL per token; the pool asks 0.001
LAUNCH = {"decimals": 6, "price": "0.001", "depth": 20_000, "pools": ["cpmm"],
          "quoteMint": SOL.mint}  # 20 SOL deep
TRADE_USDC = 8_000 * 10**6  # lifts SOL ~2 % on the 750k-USDC CP-Swap pool
TRIES_S = 90.0  # how long a quote, trade, launch or cancel is retried through outages


@dataclass(frozen=True)
class Plan:
    """One order the soak submits, and what it must never get less than (``min_out``)."""

    kind: str
    order_type: OrderType
    token_in: str
    token_out: str
    amount_in: int
    min_out: int | None = None
    expires_s: float | None = None

    @property
    def conditional(self) -> bool:
        return self.order_type is not OrderType.MARKET

    def command(self, order_id: str, source: str) -> ExecuteOrder:
        now = now_ms()
        expires = None if self.expires_s is None else now + int(self.expires_s * 1000)
        limit = sniper = None
        if self.order_type is OrderType.LIMIT:
            assert self.min_out is not None
            limit = LimitTerms(self.min_out)
        elif self.order_type is OrderType.SNIPER:
            sniper = SniperTerms(5 * 10**9, min_out=self.min_out, max_price_impact_bps=2_000)
        return ExecuteOrder(order_id, self.token_in, self.token_out, self.amount_in, 300, now,
                            source, order_type=self.order_type, expires_at_ms=expires,
                            limit=limit, sniper=sniper)

    def http_body(self) -> dict[str, Any]:
        decimals = token_by_mint(self.token_in).decimals  # type: ignore[union-attr]
        body: dict[str, Any] = {"tokenIn": self.token_in, "tokenOut": self.token_out,
                                "amount": format(Decimal(self.amount_in).scaleb(-decimals), "f"),
                                "slippageBps": 300}
        if self.order_type is not OrderType.MARKET:
            body["type"] = self.order_type.value
        if self.expires_s is not None:
            body["expiresAt"] = iso_ms(now_ms() + int(self.expires_s * 1000))
        if self.order_type is OrderType.LIMIT:
            body["minAmountOut"] = str(self.min_out)
        elif self.order_type is OrderType.SNIPER:
            body["sniper"] = {"minQuoteLiquidity": "5", "minAmountOut": str(self.min_out),
                              "maxPriceImpactBps": 2_000}
        return body


def parse_mix(text: str) -> dict[str, float]:
    weights = {"market": 0.0, "limit": 0.0, "sniper": 0.0}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        if name not in weights or not value:
            raise ValueError(f"--mix takes market=W,limit=W,sniper=W, not {part!r}")
        weights[name] = float(value)
    if sum(weights.values()) <= 0:
        raise ValueError("--mix: every weight is zero")
    return weights


async def retried(what: str, attempt: Any, deadline_s: float = TRIES_S) -> Any:
    """``attempt()`` until it returns something other than None (outages are the point)."""
    deadline = time.monotonic() + deadline_s
    error = ""
    while time.monotonic() < deadline:
        try:
            result = await attempt()
            if result is not None:
                return result
        except (aiohttp.ClientError, OSError, TimeoutError, KeyError, ValueError) as exc:
            error = repr(exc)
        await asyncio.sleep(0.3)
    raise TimeoutError(f"{what}: gave up after {deadline_s:.0f}s ({error})")


class Market:
    """The real outside world the conditional orders wait on: quotes, a trader, launches."""

    def __init__(self, venue: str, rpc: str, admin_token: str, mix: dict[str, float],
                 seed: int, *, expire_s: float, wait_s: float) -> None:
        self.venue, self.rpc, self.token = venue, rpc, admin_token
        self.root = venue.rsplit("/swap/", 1)[0]
        self.weights = mix
        self.rng = random.Random(seed)
        self.expire_s, self.wait_s = expire_s, wait_s
        self.launch_mints = [str(Keypair().pubkey()) for _ in range(2)]
        self.never_mint = str(Keypair().pubkey())
        self.trader = Keypair()
        self.plans: dict[str, Plan] = {}  # order id -> plan, once accepted
        self.trades: list[str] = []
        self.launched: list[dict[str, Any]] = []
        self.to_cancel: list[str] = []
        self.cancels: dict[str, int] = {}  # order id -> the DELETE's final HTTP status
        self._n = {"limit": 0, "sniper": 0}
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def conditional(self) -> bool:
        return self.weights["limit"] > 0 or self.weights["sniper"] > 0

    def wants(self, kind: str) -> bool:
        """Whether orders of ``kind`` (a limit or sniper kind) can be in this mix."""
        return self.weights[kind.split("_")[0]] > 0

    def _admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}

    async def quote_out(self, tin: str, tout: str, amount: int, dexes: str | None = None
                        ) -> int:
        params = {"inputMint": tin, "outputMint": tout, "amount": str(amount),
                  "slippageBps": "100"} | ({"dexes": dexes} if dexes else {})

        async def once() -> int | None:
            async with self.session.get(f"{self.venue}/quote", params=params) as r:
                doc = await r.json(content_type=None)
                return int(doc["outAmount"]) if r.status == 200 else None
        return int(await retried(f"quote {amount} {tin[:4]}->{tout[:4]}", once))

    async def plan(self, i: int, market: tuple[str, str, int]) -> Plan:
        """Order ``i``'s plan: a market order on ``market``'s pair, or a conditional one."""
        kind = self.rng.choices(list(self.weights), list(self.weights.values()))[0]
        tin, tout, amount = market
        if kind == "market":
            return Plan("market", OrderType.MARKET, tin, tout, amount + i)
        n = self._n[kind]
        self._n[kind] += 1
        if kind == "sniper":
            sub = SNIPER_KINDS[n % len(SNIPER_KINDS)]
            mint = (self.launch_mints[n % len(self.launch_mints)] if sub == "sniper_launch"
                    else self.never_mint)
            return Plan(sub, OrderType.SNIPER, SOL.mint, mint, SNIPER_SOL + i,
                        SNIPER_MIN_TOKENS, self.wait_s if sub == "sniper_launch"
                        else self.expire_s)
        sub = LIMIT_KINDS[n % len(LIMIT_KINDS)]
        if sub == "limit_move" or n % 8 < 4:
            tin, tout, amount = SOL.mint, USDC.mint, 100_000_000 + i
        else:
            tin, tout, amount = USDC.mint, SOL.mint, 15_000_000 + i
        out = await self.quote_out(tin, tout, amount)
        factor = {"limit_now": (90, 100), "limit_move": (101, 100)}.get(sub, (3, 1))
        expires = {"limit_never": self.expire_s}.get(sub, self.wait_s)
        return Plan(sub, OrderType.LIMIT, tin, tout, amount,
                    out * factor[0] // factor[1], expires)

    # ---- events of the outside world ----

    async def fund_trader(self) -> None:
        async def once() -> dict[str, Any] | None:
            async with self.session.post(f"{self.venue}/faucet", headers=self._admin(),
                                         json={"owner": str(self.trader.pubkey())}) as r:
                return dict(await r.json(content_type=None)) if r.status == 200 else None
        await retried("faucet for the trader", once)

    async def lift_sol(self) -> str:
        """The trader buys SOL with USDC on the CP-Swap pool, confirmed on chain."""
        async def once() -> str | None:
            async with self.session.get(f"{self.venue}/quote", params={
                    "inputMint": USDC.mint, "outputMint": SOL.mint,
                    "amount": str(TRADE_USDC), "slippageBps": "300",
                    "dexes": "Raydium CP"}) as r:
                quote = await r.json(content_type=None)
                if r.status != 200:
                    return None
            async with self.session.post(f"{self.venue}/swap", json={
                    "quoteResponse": quote, "userPublicKey": str(self.trader.pubkey())}) as r:
                swap = await r.json(content_type=None)
                if r.status != 200:
                    return None
            tx = sign_as(base64.b64decode(swap["swapTransaction"]), self.trader)
            sig = str(tx.signatures[0])
            sent = await self._rpc("sendTransaction", [base64.b64encode(bytes(tx)).decode(),
                                                       {"encoding": "base64"}])
            if "result" not in sent:
                return None
            for _ in range(50):
                status = (await self._rpc("getSignatureStatuses", [[sig]]))["result"]
                value = status["value"][0]
                if value and value.get("confirmationStatus") in ("confirmed", "finalized"):
                    return sig if value.get("err") is None else None
                await asyncio.sleep(0.1)
            return None
        sig = str(await retried("the trader's trade", once))
        self.trades.append(sig)
        log.warning("trader lifted SOL on the CP-Swap pool: %s", sig)
        return sig

    async def _rpc(self, method: str, params: list[Any]) -> dict[str, Any]:
        async with self.session.post(self.rpc, json={"jsonrpc": "2.0", "id": 1,
                                                     "method": method, "params": params}) as r:
            return dict(await r.json(content_type=None))

    async def launch(self, mint: str) -> dict[str, Any]:
        """The token a sniper waits for, and its CP-Swap pool (a real launch)."""
        async def once() -> dict[str, Any] | None:
            async with self.session.post(f"{self.root}/admin/pools", headers=self._admin(),
                                         json={**LAUNCH, "mint": mint}) as r:
                doc = await r.json(content_type=None)
                if r.status == 201:
                    return dict(doc)
                if r.status == 409:  # launched, but the answer was cut by a kill
                    return {"mint": mint, "relaunch": str(doc)}
                return None
        done = dict(await retried(f"launch of {mint}", once))
        self.launched.append({"mint": mint, "createdSlot": [
            p.get("createdSlot") for p in done.get("pools", [])]})
        log.warning("launched %s: %s", mint, self.launched[-1])
        return done

    async def cancel(self, http: str, order_id: str) -> None:
        """``DELETE /api/orders/{id}`` until the ingress answers 202 (requested) or 409
        (finished); a 404 means the read model has not the order yet."""
        async def once() -> int | None:
            async with self.session.delete(f"{http}/api/orders/{order_id}") as r:
                return r.status if r.status in (202, 409) else None
        try:
            self.cancels[order_id] = int(await retried(f"cancel {order_id}", once))
        except TimeoutError as exc:
            log.warning("%s", exc)
            self.cancels[order_id] = 0
