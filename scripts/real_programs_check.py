"""Hand check: the engine's on-chain venues against the REAL Raydium CP-Swap and Meteora
DLMM programs, on a real ``orderflow localnet`` process.

    .venv/bin/python -m scripts.real_programs_check \\
        --dlmm /work/binaries/lb_clmm_prod.so --cpswap /work/binaries/raydium_cp_swap.so

No registry ships the binaries, so CI cannot run this (docs/real-programs.md says where
they come from). Both are loaded at their mainnet ids (each checks its ``declare_id``);
the pools are laid out by ``scripts/real_programs_accounts.py``. For each venue, every
swap goes the engine's own way: ``OnchainVenues.quote`` -> ``swap_transaction`` ->
``sign_as`` -> ``sendTransaction`` -> confirmed -> ``getTransaction``; the amount the
program paid (the pool's output vault and the wallet, from the pre/post token balances,
through ``pipeline.reconcile``) must equal the quote exactly. A swap built before another
trader moves the pool, sent afterwards without preflight, must land refused by the
program with its slippage code, which ``pipeline.errors`` maps to ``slippage_exceeded``.
Exits non-zero on the first disagreement.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from solana.rpc.async_api import AsyncClient
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from pipeline import reconcile
from pipeline.accounts import RpcAccounts
from pipeline.errors import METEORA_DLMM, RAYDIUM_CP_MAINNET, chain_error
from pipeline.model import Quote, Venue
from pipeline.solana_rpc import sign_as
from pipeline.tokens import SOL, USDC
from pipeline.venues import meteora_dlmm as dlmm
from pipeline.venues.onchain import OnchainVenues
from pipeline.venues.onchain_pools import MeteoraDlmmPools, RaydiumCpPools
from pipeline.venues.pools import PoolQuote
from scripts import real_programs_accounts as lay

REPO = Path(__file__).resolve().parent.parent
CP_PROGRAM = Pubkey.from_string(RAYDIUM_CP_MAINNET)
DLMM_PROGRAM = Pubkey.from_string(METEORA_DLMM)
COMPUTE_BUDGET = "ComputeBudget111111111111111111111111111111"
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
SLIPPAGE_CODES = {str(CP_PROGRAM): 6005, str(DLMM_PROGRAM): 6003}


class CheckFailed(AssertionError):
    pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Localnet:
    """``orderflow localnet`` as a child process on free ports, ephemeral."""

    def __init__(self, work: Path, args: list[str]) -> None:
        self.rpc_port = _free_port()
        self.url = f"http://127.0.0.1:{self.rpc_port}"
        self.log_path = work / "localnet.log"
        env = {**os.environ, "ORDERFLOW_DATA_DIR": str(work / "data"),
               "ORDERFLOW_LOCALNET_RPC_PORT": str(self.rpc_port),
               "ORDERFLOW_LOCALNET_VENUE_PORT": str(_free_port()),
               "ORDERFLOW_LOCALNET_DRIFT_BPS": "0"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "orderflow.cli", "localnet", "--ephemeral", *args],
            env=env, cwd=REPO, stdout=self.log_path.open("wb"), stderr=subprocess.STDOUT)

    async def rpc(self, method: str, *params: Any) -> Any:
        async with aiohttp.ClientSession() as s, s.post(self.url, json={
                "jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}) as r:
            doc: dict[str, Any] = await r.json()
        if "error" in doc:
            raise CheckFailed(f"{method}: {doc['error']}")
        return doc["result"]

    async def wait_up(self) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CheckFailed(f"localnet exited {self.proc.returncode}:\n"
                                  f"{self.log_path.read_text()[-3000:]}")
            try:
                await self.rpc("getSlot")
                return
            except (aiohttp.ClientError, OSError):
                await asyncio.sleep(0.2)
        raise CheckFailed("the localnet RPC did not come up in 90 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Check:
    def __init__(self, net: Localnet, client: AsyncClient) -> None:
        self.net = net
        self.reader = RpcAccounts(client)
        self.cp = RaydiumCpPools(CP_PROGRAM)
        self.dlmm = MeteoraDlmmPools(DLMM_PROGRAM)
        self.venues = OnchainVenues(self.reader, {Venue.RAYDIUM: self.cp,
                                                  Venue.METEORA: self.dlmm})
        self._memo = 0

    def memo(self) -> str:
        self._memo += 1
        return f"orderflow:real-programs-{self._memo}"

    async def quote(self, venue: Venue, mint_in: str, mint_out: str, amount: int,
                    slippage_bps: int = 50) -> Quote:
        return await self.venues.quote(venue, mint_in, mint_out, amount, slippage_bps)

    async def build(self, quote: Quote, signer: Keypair) -> bytes:
        built = await self.venues.swap_transaction(quote, str(signer.pubkey()),
                                                   memo=self.memo())
        return bytes(sign_as(built.tx_bytes, signer))

    async def send(self, raw: bytes, *, preflight: bool = True) -> tuple[str, dict[str, Any]]:
        sig: str = await self.net.rpc("sendTransaction", base64.b64encode(raw).decode(),
                                      {"encoding": "base64", "skipPreflight": not preflight})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = (await self.net.rpc("getSignatureStatuses", [sig]))["value"][0]
            if status and status["confirmationStatus"] in ("confirmed", "finalized"):
                tx: dict[str, Any] = await self.net.rpc(
                    "getTransaction", sig, {"encoding": "json", "commitment": "confirmed",
                                            "maxSupportedTransactionVersion": 0})
                return sig, tx
            await asyncio.sleep(0.1)
        raise CheckFailed(f"{sig} not confirmed in 30 s")

    async def swap(self, label: str, venue: Venue, mint_in: str, mint_out: str,
                   amount: int, signer: Keypair) -> Quote:
        """Quote, build, sign, send, confirm; the program must pay exactly the quote."""
        quote = await self.quote(venue, mint_in, mint_out, amount)
        pq = quote.raw["poolQuote"]
        assert isinstance(pq, PoolQuote)
        walked = (await self.walk(pq.pool, amount, mint_in == SOL.mint)
                  if venue is Venue.METEORA else ())
        sig, tx = await self.send(await self.build(quote, signer))
        meta = tx["meta"]
        if meta["err"] is not None:
            raise CheckFailed(f"{label}: {sig} failed {meta['err']}\n"
                              + "\n".join(meta["logMessages"][-12:]))
        keys = tx["transaction"]["message"]["accountKeys"]
        fill = reconcile.fill_of(reconcile.balances_from_rpc_meta(
            keys, keys[0], meta), str(signer.pubkey()), mint_in, mint_out)
        vault_paid = _vault_paid(meta, keys, str(pq.pool), mint_out)
        ok = fill.amount_out == vault_paid == quote.out_amount and fill.amount_in == amount
        extra = ""
        if venue is Venue.METEORA:
            extra = f"; walks bin arrays {list(walked)}, carries {_dlmm_arrays(pq)}"
        print(f"  {label}: sig {sig} (block time {tx['blockTime']})\n"
              f"    in {amount} {_sym(mint_in)} -> quoted {quote.out_amount} {_sym(mint_out)}, "
              f"program paid {vault_paid} (vault), wallet received {fill.amount_out}; "
              f"spent {fill.amount_in}; CU {meta.get('computeUnitsConsumed')} of "
              f"{_cu_limit(tx)}{extra} "
              f"-> {'EXACT' if ok else 'MISMATCH'}")
        if not ok:
            raise CheckFailed(f"{label}: quoted {quote.out_amount}, paid {vault_paid}, "
                              f"received {fill.amount_out}, spent {fill.amount_in}")
        return quote

    async def stale_swap(self, label: str, venue: Venue, mint_in: str, mint_out: str,
                         amount: int, signer: Keypair, mover: Keypair, move: int) -> None:
        """A swap built on the pool's state, sent after ``mover`` traded ``move`` the same
        way: its minimum no longer holds, the program must refuse it on chain."""
        quote = await self.quote(venue, mint_in, mint_out, amount, slippage_bps=10)
        stale = await self.build(quote, signer)
        print(f"  {label}: built with min out {quote.raw['otherAmountThreshold']} "
              f"(quote {quote.out_amount}, 10 bps)")
        await self.swap(f"{label} / the pool moves", venue, mint_in, mint_out, move, mover)
        requote = await self.quote(venue, mint_in, mint_out, amount, slippage_bps=10)
        if requote.out_amount >= int(str(quote.raw["otherAmountThreshold"])):
            raise CheckFailed(f"{label}: the move left {requote.out_amount}, not below the "
                              "minimum: move the pool further")
        sig, tx = await self.send(stale, preflight=False)
        err = tx["meta"]["err"]
        logs = [line for line in tx["meta"]["logMessages"] if "Error" in line]
        program = str(CP_PROGRAM if venue is Venue.RAYDIUM else DLMM_PROGRAM)
        mapped = chain_error(json.dumps(err), program_id=program)
        print(f"  {label}: sig {sig}\n    requote now {requote.out_amount} < min; landed "
              f"with err {err} after {tx['meta'].get('computeUnitsConsumed')} of "
              f"{_cu_limit(tx)} CU\n    program log: {logs[-1] if logs else '-'}\n"
              f"    engine error: {type(mapped).__name__}({mapped.code})")
        want = {"InstructionError": [_swap_index(tx), {"Custom": SLIPPAGE_CODES[program]}]}
        if err != want or mapped.code != "slippage_exceeded":
            raise CheckFailed(f"{label}: expected {want} -> slippage_exceeded")


    async def walk(self, pool: Pubkey, amount: int, swap_for_y: bool) -> tuple[int, ...]:
        """The bin arrays a DLMM swap of ``amount`` walks now (the adapter's own quote)."""
        pair = await _pair_state(self, pool)
        wanted = dlmm.bin_arrays_for_swap(pair, None, swap_for_y, 6)
        raw = await self.reader.accounts([dlmm.bin_array_pda(pool, i, DLMM_PROGRAM)
                                          for i in wanted])
        arrays = {i: dlmm.decode_bin_array(d) for i, d in zip(wanted, raw, strict=True)
                  if d is not None}
        slot, now = await self.reader.clock()
        quote = dlmm.quote_exact_in(dlmm.DlmmPool(pool, pair, arrays), amount, swap_for_y,
                                    now=now, slot=slot)
        return quote.walked_arrays


def _cu_limit(tx: dict[str, Any]) -> int:
    """The transaction's ``SetComputeUnitLimit`` (the envelope's first instruction)."""
    msg = tx["transaction"]["message"]
    for ix in msg["instructions"]:
        data = base58_decode(ix["data"])
        if (msg["accountKeys"][ix["programIdIndex"]] == COMPUTE_BUDGET and len(data) == 5
                and data[0] == 2):
            return int.from_bytes(data[1:], "little")
    raise CheckFailed("no SetComputeUnitLimit in the transaction")


def base58_decode(text: str) -> bytes:
    n = 0
    for ch in text:
        n = n * 58 + _B58.index(ch)
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes(len(text) - len(text.lstrip("1"))) + raw


def _sym(mint: str) -> str:
    return {SOL.mint: "SOL", USDC.mint: "USDC"}.get(mint, mint)


def _vault_paid(meta: dict[str, Any], keys: list[str], pool: str, mint: str) -> int:
    """How much the pool's token account of ``mint`` (owned by the pool or its authority)
    went down in the transaction."""
    def amounts(which: str) -> dict[int, int]:
        return {int(b["accountIndex"]): int(b["uiTokenAmount"]["amount"])
                for b in meta[which] if b["mint"] == mint
                and b.get("owner") in (pool, str(_cp_authority()))}
    pre, post = amounts("preTokenBalances"), amounts("postTokenBalances")
    paid = [pre[i] - post.get(i, 0) for i in pre if pre[i] > post.get(i, 0)]
    if len(paid) != 1:
        raise CheckFailed(f"no single pool vault of {mint} paid out: {pre} -> {post}")
    return paid[0]


def _cp_authority() -> Pubkey:
    return Pubkey.find_program_address([b"vault_and_lp_mint_auth_seed"], CP_PROGRAM)[0]


def _dlmm_arrays(pq: PoolQuote) -> list[int]:
    """The bin array indexes the swap2 leg carries (its writable remaining accounts)."""
    ix = pq.build_leg(Pubkey.default(), Pubkey.default(), Pubkey.default(), 0)
    index = {dlmm.bin_array_pda(pq.pool, i, DLMM_PROGRAM): i for i in range(-450, 450)}
    return [index[m.pubkey] for m in ix.accounts[16:]]


def _swap_index(tx: dict[str, Any]) -> int:
    """Index of the venue instruction in the transaction."""
    msg = tx["transaction"]["message"]
    programs = [msg["accountKeys"][ix["programIdIndex"]] for ix in msg["instructions"]]
    for i, p in enumerate(programs):
        if p in SLIPPAGE_CODES:
            return i
    raise CheckFailed(f"no venue instruction in {programs}")


async def _pair_state(check: Check, pool: Pubkey) -> dlmm.LbPair:
    [data] = await check.reader.accounts([pool])
    assert data is not None
    return dlmm.decode_lb_pair(data)


async def run(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="real-programs-"))
    trader, mover = Keypair(), Keypair()
    cp = lay.cp_swap_pool(CP_PROGRAM, reserve_sol=5_000 * 10**9, reserve_usdc=750_000 * 10**6)
    pair = lay.dlmm_pair()
    placed = [*cp.accounts, *pair.accounts,
              *lay.wallet(trader.pubkey(), 2_000 * 10**9, 1_000_000 * 10**6),
              *lay.wallet(mover.pubkey(), 2_000 * 10**9, 1_000_000 * 10**6)]
    switches = ["--bpf-program", str(DLMM_PROGRAM), str(args.dlmm),
                "--bpf-program", str(CP_PROGRAM), str(args.cpswap),
                *lay.write_account_files(placed, work / "accounts")]
    net = Localnet(work, switches)
    print(f"localnet {net.url} (log {net.log_path}); {len(placed)} accounts placed\n"
          f"  DLMM {DLMM_PROGRAM} <- {args.dlmm}\n  CP-Swap {CP_PROGRAM} <- {args.cpswap}\n"
          f"  trader {trader.pubkey()}  mover {mover.pubkey()}")
    try:
        await net.wait_up()
        async with AsyncClient(net.url) as client:
            check = Check(net, client)
            await _raydium(check, trader, mover, cp)
            await _meteora(check, trader, mover, pair)
    finally:
        net.stop()
    print("ALL CHECKS PASSED")


async def _raydium(check: Check, trader: Keypair, mover: Keypair, cp: lay.CpPool) -> None:
    print(f"Raydium CP-Swap pool {cp.pool} (token 0 {cp.state.token_0_mint})")
    await check.swap("SOL->USDC (wrap)", Venue.RAYDIUM, SOL.mint, USDC.mint, 2 * 10**9, trader)
    await check.swap("USDC->SOL (unwrap)", Venue.RAYDIUM, USDC.mint, SOL.mint, 300 * 10**6,
                     trader)
    await check.swap("SOL->USDC large", Venue.RAYDIUM, SOL.mint, USDC.mint, 250 * 10**9, trader)
    await check.stale_swap("slippage SOL->USDC", Venue.RAYDIUM, SOL.mint, USDC.mint,
                           10**9, trader, mover, 50 * 10**9)


async def _meteora(check: Check, trader: Keypair, mover: Keypair, pair: lay.DlmmPair) -> None:
    state = await _pair_state(check, pair.pool)
    print(f"Meteora DLMM pair {pair.pool} active bin {state.active_id}, bin step "
          f"{state.bin_step}, v_params {state.v_parameters}")
    await check.swap("SOL->USDC x->y (wrap)", Venue.METEORA, SOL.mint, USDC.mint, 10**9, trader)
    await _show_pair(check, pair.pool)
    await check.swap("USDC->SOL y->x (unwrap)", Venue.METEORA, USDC.mint, SOL.mint,
                     100 * 10**6, trader)
    await _show_pair(check, pair.pool)
    await asyncio.sleep(1.5)  # let the cluster clock tick: does a same-bin swap move it?
    await check.swap("SOL->USDC inside the active bin", Venue.METEORA, SOL.mint, USDC.mint,
                     10**6, trader)
    await _show_pair(check, pair.pool)
    crossing = await _crossing_amount(check, pair.pool)
    await check.swap("SOL->USDC across a bin array boundary", Venue.METEORA, SOL.mint,
                     USDC.mint, crossing, trader)
    await _show_pair(check, pair.pool)
    await check.stale_swap("slippage USDC->SOL", Venue.METEORA, USDC.mint, SOL.mint,
                           50 * 10**6, trader, mover, 10_000 * 10**6)


async def _show_pair(check: Check, pool: Pubkey) -> None:
    state = await _pair_state(check, pool)
    _, now = await check.reader.clock()
    print(f"    pair now: active {state.active_id}, {state.v_parameters} (cluster time {now})")


async def _crossing_amount(check: Check, pool: Pubkey) -> int:
    """The smallest multiple of 10 SOL whose swap walks two bin arrays."""
    for sol in range(10, 400, 10):
        try:
            walked = await check.walk(pool, sol * 10**9, True)
        except ValueError:  # the walk reaches what the quote refuses: stop there
            break
        if len(walked) >= 2:
            return sol * 10**9
    raise CheckFailed("no SOL amount crosses a bin array boundary on this pair")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts.real_programs_check", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dlmm", type=Path, required=True, help="lb_clmm_prod.so (Meteora DLMM)")
    p.add_argument("--cpswap", type=Path, required=True, help="raydium_cp_swap.so")
    args = p.parse_args(argv)
    for path in (args.dlmm, args.cpswap):
        if not path.is_file():
            p.error(f"{path}: no such program binary")
    try:
        asyncio.run(run(args))
    except CheckFailed as exc:
        print(f"CHECK FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
