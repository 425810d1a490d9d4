"""The local market: Raydium CPMM and Meteora DLMM pools on the localnet, behind a
Jupiter Swap API v1 lookalike (``/swap/v1/quote``, ``/swap/v1/swap``) so the engine's one
venue client runs unchanged against it and against Jupiter.

Settlement is real: ``/swap`` returns a v0 transaction that moves tokens between the user
and the pool's vaults (see :mod:`txbuilder`), co-signed by the pool's maker. The amount it
pays is priced on the pool's *book* (settled state + swaps issued but not landed, see
:mod:`book`) and reserved there; the chain listener settles it when the transaction lands
and the slot listener releases it once its blockhash has expired. So the venue never pays
more than its curve gives, and after everything lands each vault balance equals its book.

Single-threaded like :class:`localnet.chain.Chain`: call everything from the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import orjson
from aiohttp import web
from solders.compute_budget import set_compute_unit_limit
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction
from solders.transaction_status import TransactionErrorType
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import create_idempotent_associated_token_account, sync_native
from spl.token.models import SyncNativeParams

from localnet import admin
from localnet.chain import Chain
from localnet.faults import VenueFaults, add_admin_routes
from localnet.market import cpmm, dlmm
from localnet.market.book import Fill, InsufficientVault, Record, SlippageExceeded
from localnet.market.drift import PriceWalk, trade_toward
from localnet.market.pools import DEFAULT_POOLS, LABELS, Pool, PoolSpec, decimal_string, derive
from localnet.market.tokens import BY_MINT, NATIVE_MINT, TOKENS, MarketToken
from localnet.market.txbuilder import (
    SwapLegs,
    ata,
    compile_message,
    partially_signed,
    signature_of,
    swap_instructions,
)
from localnet.memo import MemoError, check_memo, memo_instruction
from localnet.txerrors import ChainError

log = logging.getLogger(__name__)

PREFIX = "/swap/v1"
U64_MAX = 2**64 - 1
LAMPORTS_PER_SOL = 10**9
BASE_COMPUTE_UNITS = 200_000
FAUCET_SOL = 100 * LAMPORTS_PER_SOL
FAUCET_TOKENS_UI = 100_000
NOISE_TRADER_SOL = 1_000_000 * LAMPORTS_PER_SOL
NOISE_TRADER_TOKENS_UI = 1_000_000_000
MAX_DRIFT_TRADE_SHARE = Fraction(1, 20)
"""A drift trade never puts in more than 5% of the pool's input-side holdings."""


class MarketError(Exception):
    """An API error in Jupiter's shape: HTTP status, ``error`` text, ``errorCode``."""

    def __init__(self, status: int, error: str, error_code: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.error_code = error_code

    def to_json(self) -> dict[str, str]:
        return {"error": self.error, "errorCode": self.error_code}


def _no_route(detail: str = "Could not find any route") -> MarketError:
    return MarketError(400, detail, "COULD_NOT_FIND_ANY_ROUTE")


def _slippage() -> MarketError:
    # Jupiter's program error 6001 (0x1771) SlippageToleranceExceeded.
    return MarketError(422, "Slippage tolerance exceeded", "6001")


def _bad_request(detail: str) -> MarketError:
    return MarketError(400, detail, "INVALID_REQUEST")


@dataclass(frozen=True, slots=True)
class IssuedSwap:
    """A swap transaction handed out (maker-signed, user slot empty) and what it moves."""

    pool: Pool
    tx: VersionedTransaction
    last_valid_block_height: int
    fill: Fill[Any]
    compute_unit_limit: int


class Market:
    """Pools, books, the transaction builder and the noise trader, on one :class:`Chain`.

    ``seed`` fixes every key (makers, pool addresses, mint authority, noise trader) and the
    drift; ``drift_bps`` is the size of one drift step (0 disables drift) and
    ``drift_interval_s`` the time between steps when :meth:`run_drift` runs.
    """

    def __init__(
        self,
        chain: Chain,
        seed: int | None = None,
        drift_bps: int = 0,
        *,
        drift_interval_s: float = 2.0,
        pools: Sequence[PoolSpec] = DEFAULT_POOLS,
    ) -> None:
        if drift_bps < 0:
            raise ValueError("drift_bps must be >= 0")
        self.chain = chain
        self.seed = seed if seed is not None else secrets.randbits(63)
        self.drift_bps = drift_bps
        self.drift_interval_s = drift_interval_s
        self.mint_authority = Keypair.from_seed(derive(self.seed, "mint-authority"))
        self.noise_trader = Keypair.from_seed(derive(self.seed, "noise-trader"))
        self.pools = [Pool.from_spec(spec, self.seed) for spec in pools]
        self._by_amm = {str(p.amm_key): p for p in self.pools}
        self._inflight: dict[bytes, Pool] = {}
        # released before expiry (refused by the RPC): kept until their blockhash expires
        # in case the same transaction lands after all
        self._released: dict[bytes, tuple[Pool, Record[Any]]] = {}
        self._cu_nonce = 0
        self._walk = PriceWalk(self.pools, random.Random(self.seed), drift_bps)
        self._create_mints()
        for pool in self.pools:
            self._fund_vaults(pool)
        if drift_bps > 0:
            self._fund(self.noise_trader.pubkey(), NOISE_TRADER_SOL, NOISE_TRADER_TOKENS_UI)
        chain.add_listener(self._on_transaction)
        chain.add_slot_listener(self._on_slot)
        chain.add_reject_listener(self._on_reject)
        mismatches = self.reconcile()
        if mismatches:
            raise RuntimeError(f"vaults do not match books after setup: {mismatches}")

    # -- setup -------------------------------------------------------------------------------

    def _create_mints(self) -> None:
        for token in TOKENS:
            if not token.is_native:  # the chain writes the native mint itself
                self.chain.create_mint_at(token.mint, token.decimals, self.mint_authority.pubkey())

    def _fund_vaults(self, pool: Pool) -> None:
        total_x, total_y = pool.book.current_totals()
        for token, amount in ((pool.x, total_x), (pool.y, total_y)):
            if token.is_native:
                self._wrap(pool.maker, amount)
            else:
                self.chain.faucet.mint_to(token.mint, pool.maker.pubkey(), amount,
                                          self.mint_authority)

    def _wrap(self, owner: Keypair, lamports: int) -> None:
        """Put ``lamports`` of wrapped SOL in ``owner``'s wSOL ATA with a real transaction."""
        chain, key = self.chain, owner.pubkey()
        chain.faucet.airdrop(key, lamports + LAMPORTS_PER_SOL)  # + rent and fees
        wsol = ata(key, NATIVE_MINT)
        ixs = [
            create_idempotent_associated_token_account(key, key, NATIVE_MINT),
            transfer(TransferParams(from_pubkey=key, to_pubkey=wsol, lamports=lamports)),
            sync_native(SyncNativeParams(program_id=TOKEN_PROGRAM_ID, account=wsol)),
        ]
        msg = compile_message(key, ixs, chain.latest_blockhash()[0])
        self._send_checked(partially_signed(msg, [owner]))

    def _send_checked(self, tx: VersionedTransaction) -> Signature:
        sig = self.chain.send(tx)
        record = self.chain.transaction(sig)
        if record is not None and record.err is not None:
            raise ChainError(record.err)
        return sig

    def _fund(
        self,
        owner: Pubkey,
        lamports: int,
        tokens_ui: int | None,
        mint: MarketToken | None = None,
        amount: int | None = None,
    ) -> dict[str, Any]:
        """Airdrop SOL and/or mint SPL tokens into ``owner``'s ATAs with real transactions."""
        signatures: list[str] = []
        funded: dict[str, str] = {}
        wanted: list[tuple[MarketToken, int]] = []
        if mint is None:
            wanted.append((TOKENS[0], lamports))
            wanted += [(t, (tokens_ui or 0) * 10**t.decimals) for t in TOKENS if not t.is_native]
        else:
            wanted.append(
                (
                    mint,
                    amount
                    if amount is not None
                    else (lamports if mint.is_native else (tokens_ui or 0) * 10**mint.decimals),
                )
            )
        for token, raw in wanted:
            if raw <= 0:
                continue
            if token.is_native:
                sig = self.chain.faucet.airdrop(owner, raw)
            else:
                sig = self.chain.faucet.mint_to(token.mint, owner, raw, self.mint_authority)
            signatures.append(str(sig))
            funded[str(token.mint)] = str(raw)
        return {"owner": str(owner), "signatures": signatures, "funded": funded}

    # -- clock -------------------------------------------------------------------------------

    def now(self) -> int:
        """The chain's Clock sysvar ``unix_timestamp``: what the DLMM program would read."""
        return int(self.chain.svm.get_clock().unix_timestamp)

    # -- quotes ------------------------------------------------------------------------------

    def _candidates(
        self, input_mint: Pubkey, output_mint: Pubkey, dexes: Sequence[str] | None
    ) -> list[tuple[Pool, bool]]:
        out = []
        for pool in self.pools:
            if dexes is not None and pool.label not in dexes:
                continue
            x_to_y = pool.direction(input_mint, output_mint)
            if x_to_y is not None:
                out.append((pool, x_to_y))
        return out

    def best_fill(
        self,
        input_mint: Pubkey,
        output_mint: Pubkey,
        amount: int,
        dexes: Sequence[str] | None = None,
    ) -> tuple[Pool, Fill[Any]]:
        """The pool paying the most for ``amount`` on the current books (no reservation)."""
        for mint in (input_mint, output_mint):
            if str(mint) not in BY_MINT:
                raise MarketError(400, f"The token {mint} is not tradable", "TOKEN_NOT_TRADABLE")
        if input_mint == output_mint:
            raise MarketError(
                400, "inputMint cannot be same as outputMint", "CIRCULAR_ARBITRAGE_IS_DISABLED"
            )
        now = self.now()
        best: tuple[Pool, Fill[Any]] | None = None
        for pool, x_to_y in self._candidates(input_mint, output_mint, dexes):
            try:
                fill: Fill[Any] = pool.book.quote(x_to_y, amount, now)
            except (cpmm.CpmmError, dlmm.DlmmError):
                continue
            if fill.amount_out > 0 and (best is None or fill.amount_out > best[1].amount_out):
                best = (pool, fill)
        if best is None:
            raise _no_route()
        return best

    def quote(
        self,
        input_mint: str,
        output_mint: str,
        amount: int,
        slippage_bps: int = 50,
        dexes: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Jupiter's ``GET /quote`` response (ExactIn, one direct route)."""
        started = time.perf_counter()
        if not 0 <= slippage_bps <= 10_000:
            raise _bad_request("slippageBps must be between 0 and 10000")
        if not 0 < amount <= U64_MAX:
            raise _bad_request("amount must be a positive u64")
        in_mint, out_mint = _pubkey(input_mint, "inputMint"), _pubkey(output_mint, "outputMint")
        pool, fill = self.best_fill(in_mint, out_mint, amount, dexes)
        threshold = fill.amount_out * (10_000 - slippage_bps) // 10_000
        return {
            "inputMint": input_mint,
            "inAmount": str(amount),
            "outputMint": output_mint,
            "outAmount": str(fill.amount_out),
            "otherAmountThreshold": str(threshold),
            "swapMode": "ExactIn",
            "slippageBps": slippage_bps,
            "platformFee": None,
            "priceImpactPct": decimal_string(fill.price_impact),
            "routePlan": [
                {
                    "swapInfo": {
                        "ammKey": str(pool.amm_key),
                        "label": pool.label,
                        "inputMint": input_mint,
                        "outputMint": output_mint,
                        "inAmount": str(amount),
                        "outAmount": str(fill.amount_out),
                        "feeAmount": str(fill.fee),
                        "feeMint": input_mint,
                    },
                    "percent": 100,
                }
            ],
            "contextSlot": self.chain.slot,
            "timeTaken": round(time.perf_counter() - started, 6),
        }

    # -- swaps -------------------------------------------------------------------------------

    def _next_compute_unit_limit(self) -> int:
        """Jupiter sets a CU limit; varying it also keeps two identical swaps distinct."""
        self._cu_nonce = (self._cu_nonce + 1) % 100_000
        return BASE_COMPUTE_UNITS + self._cu_nonce

    def issue(
        self,
        pool: Pool,
        user: Pubkey,
        x_to_y: bool,
        amount_in: int,
        minimum_out: int,
        *,
        wrap_and_unwrap_sol: bool = True,
        extra_signers: Sequence[Keypair] = (),
        memo: str | None = None,
    ) -> IssuedSwap:
        """Price on the book, build and maker-sign the transaction, reserve it as pending.

        ``memo`` (checked by the caller) adds an SPL Memo instruction with that text.
        """
        try:
            fill: Fill[Any] = pool.book.fill(x_to_y, amount_in, self.now(), minimum_out)
        except SlippageExceeded:
            raise _slippage() from None
        except (cpmm.CpmmError, dlmm.DlmmError, InsufficientVault):
            raise (_slippage() if minimum_out > 0 else _no_route()) from None
        if fill.amount_out == 0:
            raise _no_route("Amount too small to swap")
        token_in, token_out = pool.tokens(x_to_y)
        vault_in, vault_out = pool.vaults(x_to_y)
        legs = SwapLegs(
            user,
            pool.maker.pubkey(),
            token_in,
            token_out,
            amount_in,
            fill.amount_out,
            vault_in,
            vault_out,
        )
        cu_limit = self._next_compute_unit_limit()
        ixs = [
            set_compute_unit_limit(cu_limit),
            *swap_instructions(legs, wrap_and_unwrap_sol=wrap_and_unwrap_sol),
        ]
        if memo is not None:
            ixs.append(memo_instruction(memo))
        blockhash, last_valid = self.chain.latest_blockhash()
        tx = partially_signed(compile_message(user, ixs, blockhash), [pool.maker, *extra_signers])
        maker_sig = signature_of(tx, pool.maker.pubkey())
        assert maker_sig is not None
        key = bytes(maker_sig)
        pool.book.commit(fill, key, last_valid)
        self._inflight[key] = pool
        return IssuedSwap(pool, tx, last_valid, fill, cu_limit)

    def swap(
        self,
        quote_response: Any,
        user_public_key: Any,
        wrap_and_unwrap_sol: bool = True,
        memo: Any = None,
    ) -> dict[str, Any]:
        """Jupiter's ``POST /swap`` response for a quote from :meth:`quote`.

        ``memo`` (ours, not Jupiter's; see :mod:`localnet.memo`): a text the transaction
        carries in an SPL Memo instruction, e.g. the engine's ``orderflow:<orderId>``.
        """
        if memo is not None:
            try:
                memo = check_memo(memo)
            except MemoError as exc:
                raise _bad_request(str(exc)) from None
        if not isinstance(quote_response, dict):
            raise _bad_request("quoteResponse must be an object")
        user = _pubkey(user_public_key, "userPublicKey")
        if quote_response.get("swapMode", "ExactIn") != "ExactIn":
            raise _bad_request("only swapMode=ExactIn is supported")
        try:
            plan = quote_response["routePlan"]
            info = plan[0]["swapInfo"]
            in_mint = _pubkey(quote_response["inputMint"], "inputMint")
            out_mint = _pubkey(quote_response["outputMint"], "outputMint")
            amount_in = _amount(quote_response["inAmount"], "inAmount")
            threshold = _amount(
                quote_response["otherAmountThreshold"], "otherAmountThreshold", allow_zero=True
            )
            amm_key = str(info["ammKey"])
        except (KeyError, IndexError, TypeError):
            raise _bad_request("quoteResponse is not a quote from /quote") from None
        if len(plan) != 1:
            raise _no_route("only single-hop routes are supported")
        pool = self._by_amm.get(amm_key)
        x_to_y = pool.direction(in_mint, out_mint) if pool is not None else None
        if pool is None or x_to_y is None:
            raise _no_route(f"no pool {amm_key} for this mint pair")
        issued = self.issue(
            pool,
            user,
            x_to_y,
            amount_in,
            threshold,
            wrap_and_unwrap_sol=wrap_and_unwrap_sol,
            memo=memo,
        )
        return {
            "swapTransaction": base64.b64encode(bytes(issued.tx)).decode(),
            "lastValidBlockHeight": issued.last_valid_block_height,
            "prioritizationFeeLamports": 0,
            "computeUnitLimit": issued.compute_unit_limit,
            "prioritizationType": {
                "computeBudget": {"microLamports": 0, "estimatedMicroLamports": 0}
            },
            "dynamicSlippageReport": None,
            "simulationError": None,
        }

    # -- settlement --------------------------------------------------------------------------

    def _on_transaction(
        self,
        signature: Signature,
        tx: VersionedTransaction,
        err: TransactionErrorType | None,
        slot: int,
    ) -> None:
        """Chain listener: a market transaction landed (settle) or landed failed (release)."""
        if not self._inflight and not self._released:
            return
        for sig in tx.signatures[: tx.message.header.num_required_signatures]:
            key = bytes(sig)
            late = self._released.pop(key, None)
            if late is not None and err is None:
                log.info("released swap %s on %s landed after all; booking it", signature,
                         late[0].name)
                late[0].book.land_released(late[1])
                continue
            pool = self._inflight.pop(key, None)
            if pool is None:
                continue
            if err is None:
                pool.book.settle(key)
            else:
                log.info("swap %s on %s failed on chain (%s); releasing", signature, pool.name, err)
                pool.book.release(key)

    def _on_reject(self, tx: VersionedTransaction, err: TransactionErrorType) -> None:
        """Reject listener: the RPC refused a market transaction (failed preflight, payer
        cannot pay the fee...). Release its reservation now: left in the book until its
        blockhash expires (a minute), it would price every quote and drift trade meanwhile
        as if it had landed. Should the same transaction land later, ``_on_transaction``
        books it again.
        """
        if not self._inflight:
            return
        for sig in tx.signatures[: tx.message.header.num_required_signatures]:
            key = bytes(sig)
            pool = self._inflight.pop(key, None)
            if pool is None:
                continue
            record = pool.book.release(key)
            log.info("swap on %s refused by the RPC (%s); reservation released", pool.name, err)
            if record is not None:
                self._released[key] = (pool, record)

    def _on_slot(self, slot: int, block_height: int) -> None:
        """Slot listener: swaps whose blockhash expired can never land; release them."""
        for pool in self.pools:
            for key in pool.book.expired(block_height):
                pool.book.release(key)
                self._inflight.pop(key, None)
        if self._released:
            for key in [k for k, (_, r) in self._released.items()
                        if r.last_valid_block_height < block_height]:
                del self._released[key]

    def close(self) -> None:
        """Stop listening to the chain (the pools' accounts stay where they are)."""
        self.chain.remove_listener(self._on_transaction)
        self.chain.remove_slot_listener(self._on_slot)
        self.chain.remove_reject_listener(self._on_reject)

    def pending_count(self) -> int:
        return len(self._inflight)

    def reconcile(self) -> list[str]:
        """Vaults whose on-chain balance differs from book minus in-flight swaps (empty: ok)."""
        problems = []
        for pool in self.pools:
            settled = pool.book.settled_totals()
            for side, vault, want in (
                ("X", pool.vault_x, settled[0]),
                ("Y", pool.vault_y, settled[1]),
            ):
                have = self.chain.token_balance(vault)
                if have != want:
                    problems.append(f"{pool.name} vault{side} {vault}: chain {have}, book {want}")
        return problems

    # -- drift -------------------------------------------------------------------------------

    def drift_step(self) -> list[Signature]:
        """One drift tick: trade every pool toward its next target price, on chain."""
        if self.drift_bps <= 0:
            return []
        sigs = []
        for pool, target in self._walk.step():
            if pool.book.pending():
                # Never trade against reserved state: the reserved swaps may not land, and
                # a drift trade priced on top of them would be replayed, at its fixed
                # amounts, onto a pool they never moved. The walk goes on; the pool
                # catches up once its book is settled.
                continue
            move = trade_toward(pool, target)
            if move is None:
                continue
            x_to_y, amount = move
            held = pool.book.current_totals()[0 if x_to_y else 1]
            amount = min(amount, int(held * MAX_DRIFT_TRADE_SHARE))
            sig = self._noise_trade(pool, x_to_y, amount)
            if sig is not None:
                sigs.append(sig)
        return sigs

    def _noise_trade(self, pool: Pool, x_to_y: bool, amount: int) -> Signature | None:
        trader = self.noise_trader
        for _ in range(4):
            if amount <= 0:
                return None
            try:
                issued = self.issue(
                    pool, trader.pubkey(), x_to_y, amount, 0, extra_signers=[trader]
                )
            except MarketError:
                amount //= 2  # ran past the pool's bins: move less
                continue
            key = bytes(signature_of(issued.tx, pool.maker.pubkey()) or Signature.default())
            try:
                return self.chain.send(issued.tx)
            except ChainError as exc:
                log.warning("drift trade on %s refused: %s", pool.name, exc)
                self._inflight.pop(key, None)
                pool.book.release(key)
                return None
        return None

    async def run_drift(self) -> None:
        """Drift every ``drift_interval_s`` until cancelled."""
        while True:
            await asyncio.sleep(self.drift_interval_s)
            try:
                self.drift_step()
            except Exception:
                log.exception("drift step failed")

    # -- faucet ------------------------------------------------------------------------------

    def faucet(self, owner: Any, mint: Any = None, amount: Any = None) -> dict[str, Any]:
        """Localnet only: fund a wallet (SOL airdrop and/or minted tokens into its ATAs).

        Without ``mint``: ``amount`` lamports of SOL (default 100 SOL) plus 100,000 of each
        SPL token. With ``mint``: ``amount`` raw units of that token (same defaults).
        """
        key = _pubkey(owner, "owner")
        token: MarketToken | None = None
        if mint is not None:
            token = BY_MINT.get(str(mint))
            if token is None:
                raise MarketError(400, f"The token {mint} is not tradable", "TOKEN_NOT_TRADABLE")
        raw = _amount(amount, "amount") if amount is not None else None
        try:
            if token is None:
                return self._fund(key, raw or FAUCET_SOL, FAUCET_TOKENS_UI)
            return self._fund(key, FAUCET_SOL, FAUCET_TOKENS_UI, token, raw)
        except ChainError as exc:
            raise MarketError(500, f"faucet transaction failed: {exc}", "FAUCET_FAILED") from None

    def pools_json(self) -> dict[str, Any]:
        return {
            "pools": [pool.to_json() for pool in self.pools],
            "contextSlot": self.chain.slot,
            "blockHeight": self.chain.block_height,
            "unixTimestamp": self.now(),
        }


# -- request parsing ---------------------------------------------------------------------------


def _pubkey(value: Any, name: str) -> Pubkey:
    if not isinstance(value, str):
        raise _bad_request(f"{name} must be a base58 public key")
    try:
        return Pubkey.from_string(value)
    except ValueError:
        raise _bad_request(f"{name} {value!r} is not a valid public key") from None


def _amount(value: Any, name: str, *, allow_zero: bool = False) -> int:
    """A raw token amount: a decimal-digit string (Jupiter's form) or a JSON integer."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _bad_request(f"{name} must be an integer amount")
    text = str(value)
    if not text.isdigit() or not text.isascii():
        raise _bad_request(f"{name} {value!r} is not a non-negative integer")
    number = int(text)
    if number > U64_MAX or (number == 0 and not allow_zero):
        raise _bad_request(f"{name} must be in {0 if allow_zero else 1}..{U64_MAX}")
    return number


# -- HTTP --------------------------------------------------------------------------------------

MARKET_KEY = web.AppKey("market", Market)
VENUE_FAULTS_KEY = web.AppKey("venue_faults", VenueFaults)
_FAULTED_ENDPOINTS = {f"{PREFIX}/quote": "quote", f"{PREFIX}/swap": "swap"}


def _json(doc: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(doc), status=status, content_type="application/json")


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except MarketError as exc:
        return _json(exc.to_json(), exc.status)


@web.middleware
async def _faults(request: web.Request, handler: Any) -> web.StreamResponse:
    """Venue fault switches (see :mod:`localnet.faults`) around ``quote`` and ``swap``."""
    faults = request.app[VENUE_FAULTS_KEY]
    endpoint = _FAULTED_ENDPOINTS.get(request.path)
    if endpoint is None or not faults.active:
        response: web.StreamResponse = await handler(request)
        return response
    plan = faults.plan([endpoint])
    if plan.empty:
        response = await handler(request)
        return response

    async def execute() -> web.StreamResponse:
        response: web.StreamResponse = await handler(request)
        return response

    return await faults.run(request, plan, execute)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        doc = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise _bad_request("body must be JSON") from None
    if not isinstance(doc, dict):
        raise _bad_request("body must be a JSON object")
    return doc


async def _quote(request: web.Request) -> web.Response:
    q = request.query
    for name in ("inputMint", "outputMint", "amount"):
        if name not in q:
            raise _bad_request(f"missing query parameter {name}")
    dexes = [d.strip() for d in q["dexes"].split(",") if d.strip()] if "dexes" in q else None
    if q.get("swapMode", "ExactIn") != "ExactIn":
        raise _bad_request("only swapMode=ExactIn is supported")
    slippage = q.get("slippageBps", "50")
    if not slippage.isdigit():
        raise _bad_request("slippageBps must be an integer")
    doc = request.app[MARKET_KEY].quote(
        q["inputMint"], q["outputMint"], _amount(q["amount"], "amount"), int(slippage), dexes
    )
    return _json(doc)


async def _swap(request: web.Request) -> web.Response:
    body = await _body(request)
    wrap = body.get("wrapAndUnwrapSol", True)
    if not isinstance(wrap, bool):
        raise _bad_request("wrapAndUnwrapSol must be a boolean")
    doc = request.app[MARKET_KEY].swap(
        body.get("quoteResponse"), body.get("userPublicKey"), wrap, body.get("memo")
    )
    return _json(doc)


async def _pools(request: web.Request) -> web.Response:
    return _json(request.app[MARKET_KEY].pools_json())


async def _faucet(request: web.Request) -> web.Response:
    body = await _body(request)
    return _json(
        request.app[MARKET_KEY].faucet(body.get("owner"), body.get("mint"), body.get("amount"))
    )


def build_market_app(
    market: Market,
    *,
    run_drift: bool = True,
    faults: VenueFaults | None = None,
    admin_token: str | None = None,
) -> web.Application:
    """The HTTP API under ``/swap/v1``: quote, swap, pools, and the localnet-only faucet.

    With ``run_drift`` (and ``market.drift_bps > 0``) the app runs :meth:`Market.run_drift`
    while it is up. The chain's clock is the server's business, not the market's.
    ``faults`` (default: all off) switch faults on ``quote``/``swap``, managed at
    ``/admin/faults`` (see :mod:`localnet.faults`). The faucet and ``/admin/*`` need
    ``admin_token`` from a loopback client (see :mod:`localnet.admin`; a random token,
    at ``app[admin.ADMIN_TOKEN_KEY]``, when None).
    """
    app = web.Application(middlewares=[_faults, _errors])
    admin.guard(app, admin_token, frozenset({f"{PREFIX}/faucet"}))
    app[MARKET_KEY] = market
    if faults is None:
        faults = VenueFaults()
    app[VENUE_FAULTS_KEY] = faults
    add_admin_routes(app, faults)
    app.router.add_get(f"{PREFIX}/quote", _quote)
    app.router.add_post(f"{PREFIX}/swap", _swap)
    app.router.add_get(f"{PREFIX}/pools", _pools)
    app.router.add_post(f"{PREFIX}/faucet", _faucet)
    if run_drift and market.drift_bps > 0:

        async def drift(app: web.Application) -> AsyncIterator[None]:
            task = asyncio.create_task(market.run_drift(), name="market-drift")
            yield
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

        app.cleanup_ctx.append(drift)
    return app


__all__ = [
    "LABELS",
    "MARKET_KEY",
    "PREFIX",
    "VENUE_FAULTS_KEY",
    "IssuedSwap",
    "Market",
    "MarketError",
    "build_market_app",
]
