"""The local market: Raydium CPMM and Meteora DLMM pools on the localnet, behind a
Jupiter Swap API v1 lookalike (``/swap/v1/quote``, ``/swap/v1/swap-instructions``,
``/swap/v1/swap``) so the engine's one venue client runs unchanged against it and against
Jupiter (instructions: :mod:`localnet.market.instructions`, payouts escrowed).

Settlement is real: ``/swap`` returns a v0 transaction that moves tokens between the user
and the pool's vaults (see :mod:`txbuilder`), co-signed by the pool's maker. The amount it
pays is priced on the pool's *book* (settled state + swaps issued but not landed, see
:mod:`book`) and reserved there; the chain listener settles it when the transaction lands
and the slot listener releases it once its blockhash has expired. So the venue never pays
more than its curve gives, and after everything lands each vault balance equals its book.

Single-threaded like :class:`localnet.chain.Chain`: call everything from the event loop.
"""

from __future__ import annotations

import base64
import logging
import random
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from solders.compute_budget import set_compute_unit_limit
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from solders.transaction_status import TransactionErrorType

from dexmath import cpmm, dlmm
from localnet.chain import Chain
from localnet.market.book import Fill, InsufficientVault, Record, SlippageExceeded
from localnet.market.drift import Drifter, PriceWalk
from localnet.market.errors import (
    U64_MAX,
    MarketError,
    bad_request,
    no_route,
    parse_amount,
    parse_pubkey,
    slippage,
)
from localnet.market.escrow import Escrow
from localnet.market.funding import NOISE_TRADER_SOL, NOISE_TRADER_TOKENS_UI, Funding
from localnet.market.instructions import (
    close_finished,
    escrow_landed,
    escrowed,
    issue_instructions,
)
from localnet.market.pools import DEFAULT_POOLS, Pool, PoolSpec, decimal_string, derive
from localnet.market.resume import MarketSnapshot
from localnet.market.tokens import BY_MINT, MarketToken
from localnet.market.txbuilder import (
    SwapLegs,
    compile_message,
    partially_signed,
    signature_of,
    swap_instructions,
)
from localnet.memo import MemoError, check_memo, memo_instruction

log = logging.getLogger(__name__)

BASE_COMPUTE_UNITS = 200_000


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
        restore: MarketSnapshot | None = None,
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
        self.tokens: dict[str, MarketToken] = dict(BY_MINT)  # tradable, by mint
        self.launched: list[tuple[PoolSpec, int]] = []  # (spec, created slot): launch.py
        self._inflight: dict[bytes, Pool] = {}
        # released before expiry (refused by the RPC): kept until their blockhash expires
        # in case the same transaction lands after all
        self._released: dict[bytes, tuple[Pool, Record[Any]]] = {}
        # /swap-instructions payouts held out of the vaults, by escrow address (its key)
        self.escrows: dict[bytes, Escrow] = {}
        self._cu_nonce = 0
        self._drifter = Drifter(self, PriceWalk(list(self.pools), random.Random(self.seed),
                                                drift_bps))
        self.funding = Funding(chain, self.mint_authority, self.tokens)
        if restore is not None:  # a resumed chain already holds the mints and vaults
            restore.apply(self)
        else:
            self._set_up(drift_bps)
        chain.add_listener(self._on_transaction)
        chain.add_slot_listener(self._on_slot)
        chain.add_reject_listener(self._on_reject)
        mismatches = self.reconcile()
        if mismatches:
            raise RuntimeError(f"vaults do not match books after setup: {mismatches}")

    def _set_up(self, drift_bps: int) -> None:
        self.funding.create_mints()
        for pool in self.pools:
            self.funding.fund_vaults(pool)
        if drift_bps > 0:
            self.funding.fund(self.noise_trader.pubkey(), NOISE_TRADER_SOL, NOISE_TRADER_TOKENS_UI)

    def list_pool(self, pool: Pool, spec: PoolSpec) -> None:
        """List a launched pool (``localnet/market/launch.py``), its vaults funded."""
        self.tokens.setdefault(str(pool.x.mint), pool.x)
        self.tokens.setdefault(str(pool.y.mint), pool.y)
        self.pools.append(pool)
        self._by_amm[str(pool.amm_key)] = pool
        self.launched.append((spec, pool.created_slot))

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
            if str(mint) not in self.tokens:
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
            raise no_route()
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
            raise bad_request("slippageBps must be between 0 and 10000")
        if not 0 < amount <= U64_MAX:
            raise bad_request("amount must be a positive u64")
        in_mint = parse_pubkey(input_mint, "inputMint")
        out_mint = parse_pubkey(output_mint, "outputMint")
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
            raise slippage() from None
        except (cpmm.CpmmError, dlmm.DlmmError, InsufficientVault):
            raise (slippage() if minimum_out > 0 else no_route()) from None
        if fill.amount_out == 0:
            raise no_route("Amount too small to swap")
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
                raise bad_request(str(exc)) from None
        pool, x_to_y, user, amount_in, threshold = self.parse_swap_request(
            quote_response, user_public_key)
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

    def swap_instructions(
        self, quote_response: Any, user_public_key: Any, wrap_and_unwrap_sol: bool = True
    ) -> dict[str, Any]:
        """Jupiter's ``POST /swap-instructions`` response for a quote from :meth:`quote`."""
        return issue_instructions(self, quote_response, user_public_key, wrap_and_unwrap_sol)

    @property
    def inflight(self) -> dict[bytes, Pool]:
        """Issued swaps not landed yet, by key (maker signature or escrow address)."""
        return self._inflight

    def track_escrow(self, key: bytes, pool: Pool, escrow: Escrow) -> None:
        self._inflight[key] = pool
        self.escrows[key] = escrow

    def parse_swap_request(
        self, quote_response: Any, user_public_key: Any
    ) -> tuple[Pool, bool, Pubkey, int, int]:
        """(pool, x_to_y, user, amount in, minimum out) of a ``/swap``-style request."""
        if not isinstance(quote_response, dict):
            raise bad_request("quoteResponse must be an object")
        user = parse_pubkey(user_public_key, "userPublicKey")
        if quote_response.get("swapMode", "ExactIn") != "ExactIn":
            raise bad_request("only swapMode=ExactIn is supported")
        try:
            plan = quote_response["routePlan"]
            info = plan[0]["swapInfo"]
            in_mint = parse_pubkey(quote_response["inputMint"], "inputMint")
            out_mint = parse_pubkey(quote_response["outputMint"], "outputMint")
            amount_in = parse_amount(quote_response["inAmount"], "inAmount")
            threshold = parse_amount(
                quote_response["otherAmountThreshold"], "otherAmountThreshold", allow_zero=True
            )
            amm_key = str(info["ammKey"])
        except (KeyError, IndexError, TypeError):
            raise bad_request("quoteResponse is not a quote from /quote") from None
        if len(plan) != 1:
            raise no_route("only single-hop routes are supported")
        pool = self._by_amm.get(amm_key)
        x_to_y = pool.direction(in_mint, out_mint) if pool is not None else None
        if pool is None or x_to_y is None:
            raise no_route(f"no pool {amm_key} for this mint pair")
        return pool, x_to_y, user, amount_in, threshold

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
        if self.escrows:
            escrow_landed(self, tx, err)
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
        if self.escrows:
            close_finished(self)

    def close(self) -> None:
        """Stop listening to the chain (the pools' accounts stay where they are)."""
        self.chain.remove_listener(self._on_transaction)
        self.chain.remove_slot_listener(self._on_slot)
        self.chain.remove_reject_listener(self._on_reject)

    def pending_count(self) -> int:
        return len(self._inflight)

    def reconcile(self) -> list[str]:
        """Vaults whose on-chain balance differs from book minus in-flight swaps (empty: ok)."""
        held = escrowed(self) if self.escrows else {}
        problems = []
        for pool in self.pools:
            settled = pool.book.settled_totals()
            for side, vault, want in (
                ("X", pool.vault_x, settled[0]),
                ("Y", pool.vault_y, settled[1]),
            ):
                have = self.chain.token_balance(vault) + held.get(vault, 0)
                if have != want:
                    problems.append(f"{pool.name} vault{side} {vault}: chain {have}, book {want}")
        return problems

    # -- drift -------------------------------------------------------------------------------

    def drift_step(self) -> list[Signature]:
        """One drift tick: trade every pool toward its next target price, on chain."""
        return self._drifter.step()

    async def run_drift(self) -> None:
        """Drift every ``drift_interval_s`` until cancelled."""
        await self._drifter.run(self.drift_interval_s)

    def abandon(self, issued: IssuedSwap) -> None:
        """An issued swap that will not be sent (the chain refused it): release its reservation."""
        key = bytes(signature_of(issued.tx, issued.pool.maker.pubkey()) or Signature.default())
        self._inflight.pop(key, None)
        issued.pool.book.release(key)

    # -- faucet ------------------------------------------------------------------------------

    def faucet(self, owner: Any, mint: Any = None, amount: Any = None) -> dict[str, Any]:
        """Localnet only: fund a wallet; see :meth:`localnet.market.funding.Funding.faucet`."""
        return self.funding.faucet(owner, mint, amount)

    def pools_json(self) -> dict[str, Any]:
        return {
            "pools": [pool.to_json() for pool in self.pools],
            "contextSlot": self.chain.slot,
            "blockHeight": self.chain.block_height,
            "unixTimestamp": self.now(),
        }
