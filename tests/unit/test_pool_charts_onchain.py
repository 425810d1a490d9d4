"""``GET /api/markets/pools`` on on-chain venues: the venue adapters' snapshots
(``RaydiumCpPools.snapshots``, ``MeteoraDlmmPools.snapshots``) of pool accounts laid out
as the programs lay them out (a CP-Swap pool from the source layout, the real mainnet
DLMM SOL/USDC pair checked against the independent ``meteora-dlmm`` oracle), the pools'
trades from their history (``PoolTrades``), every answer validated against the OpenAPI
document. The RPC is a small in-memory reader; tests/integration/test_pool_charts_localnet.py
runs the same on a real localnet process."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import meteora_dlmm
import pytest
from meteora_dlmm import fees as oracle_fees
from solders.pubkey import Pubkey

from ingress.app import build_app
from ingress.hub import StatusHub
from ingress.market_api import MarketApi
from pipeline.chain_history import SignatureEntry
from pipeline.errors import RpcUnavailable
from pipeline.model import Venue
from pipeline.reconcile import TokenBalance, TxBalances
from pipeline.tokens import SOL, USDC, USDT
from pipeline.venue_set import VenueSet
from pipeline.venues.onchain_charts import ChartedVenue, OnchainPoolCharts
from pipeline.venues.onchain_pools import MeteoraDlmmPools, RaydiumCpPools
from pipeline.venues.pool_snapshot import CpSnapshot, DlmmSnapshot
from pipeline.venues.pool_trades import PoolTrades
from pipeline.venues.pools import ClusterTime
from tests.pool_layouts import CP_PROGRAM, Accounts, cp_pool, dlmm_pair, dlmm_reference
from tests.unit.test_ingress_chain_view import get, serve
from tests.unit.test_ingress_fakes import FakeBus, FakeStore, ingress_config

SOL_KEY, USDC_KEY, USDT_KEY = (Pubkey.from_string(t.mint) for t in (SOL, USDC, USDT))
PAIRS = [(SOL_KEY, USDC_KEY), (SOL_KEY, USDT_KEY), (USDC_KEY, USDT_KEY)]
NOW = int(dlmm_reference()["clockTs"]) + 45  # inside the pair's decay period


class MemoryReader:
    """The accounts a test laid out, a clock, and which keys were asked for."""

    def __init__(self, accounts: Accounts, *, down: bool = False) -> None:
        self._accounts = accounts
        self.down = down
        self.asked: list[Pubkey] = []

    async def accounts(self, keys: Sequence[Pubkey]) -> list[bytes | None]:
        if self.down:
            raise RpcUnavailable(message="getMultipleAccounts: connection refused")
        self.asked += keys
        return [self._accounts[k][0] if k in self._accounts else None for k in keys]

    async def clock(self) -> tuple[int, int]:
        return 9_000, NOW

    async def program_accounts(self, *_: Any) -> list[tuple[Pubkey, bytes]]:
        raise AssertionError("explicit pools are never scanned for")

    async def latest_blockhash(self) -> Any:
        raise AssertionError

    async def simulate_units(self, _tx: Any) -> int:
        raise AssertionError

    async def prioritization_fees(self, _w: Any) -> list[int]:
        raise AssertionError


def oracle() -> meteora_dlmm.PoolState:
    ref = dlmm_reference()
    return meteora_dlmm.PoolState.from_accounts(
        base64.b64decode(ref["lbPairB64"]),
        [base64.b64decode(a["data"]) for a in ref["binArraysB64"]], 9, 6)


def oracle_fee_now(pool: meteora_dlmm.PoolState, now: int) -> int:
    vp = oracle_fees.VariableParams(**vars(pool.variable_params))
    oracle_fees.update_reference(pool.active_id, vp, pool.static_params, now)
    oracle_fees.update_va(pool.active_id, vp, pool.static_params)
    return int(oracle_fees.total_fee(pool.bin_step, pool.static_params, vp))


async def test_a_cp_swap_pool_shows_the_reserves_its_quote_uses_and_its_fee() -> None:
    cp = cp_pool(Pubkey.new_unique())
    other = cp_pool(Pubkey.new_unique(), tokens=(SOL, USDT))  # listed, another pair
    reader = MemoryReader({**cp.accounts, **other.accounts})
    venue = RaydiumCpPools(CP_PROGRAM, explicit=[cp.pool, other.pool])
    [shown] = await venue.snapshots(reader, [(SOL_KEY, USDC_KEY)], ClusterTime(1, NOW))
    assert isinstance(shown, CpSnapshot)
    assert (shown.pool, shown.venue) == (str(cp.pool), Venue.RAYDIUM)
    assert (shown.reserve_x, shown.reserve_y) == (5_000 * 10**9, 750_000 * 10**6)  # - fees
    assert shown.fee_rate == cp.trade_fee_rate == 2_500
    assert (shown.x.mint, shown.x.decimals, shown.y.mint, shown.y.decimals) == (
        SOL.mint, 9, USDC.mint, 6)
    assert shown.vaults == (str(cp.vault_0), str(cp.vault_1))
    assert [] == await venue.snapshots(reader, [(USDC_KEY, USDT_KEY)], ClusterTime(1, NOW))


async def test_the_real_dlmm_pair_shows_the_oracles_bins_price_and_fee_now() -> None:
    pair, accounts = dlmm_pair()
    reader = MemoryReader(accounts)
    venue = MeteoraDlmmPools(explicit=[pair])
    [shown] = await venue.snapshots(reader, PAIRS, ClusterTime(1, NOW))
    assert isinstance(shown, DlmmSnapshot)
    theirs = oracle()
    assert (shown.active_id, shown.bin_step) == (theirs.active_id, theirs.bin_step)
    near = {i: (b.amount_x, b.amount_y) for i, b in theirs.bins.items()
            if abs(i - theirs.active_id) <= 60 and (b.amount_x or b.amount_y)}
    assert {b.bin_id: (b.amount_x, b.amount_y) for b in shown.bins} == near
    assert len(near) > 60  # a real book on both sides of the price
    assert shown.base_fee_rate == oracle_fees.base_fee(theirs.bin_step, theirs.static_params)
    assert shown.fee_rate == oracle_fee_now(theirs, NOW) > shown.base_fee_rate
    assert shown.vaults == (str(theirs_reserve("x")), str(theirs_reserve("y")))
    # two reads: the pair, then only the arrays the chart shows (3) and the two mints
    assert len(reader.asked) == 1 + 3 + 2


def theirs_reserve(side: str) -> Pubkey:
    from pipeline.venues import meteora_dlmm as dlmm

    pair = dlmm.decode_lb_pair(base64.b64decode(dlmm_reference()["lbPairB64"]))
    return pair.reserve_x if side == "x" else pair.reserve_y


# ---- the route ----


def entry(signature: str, slot: int, err: str | None = None) -> SignatureEntry:
    return SignatureEntry(signature, slot, err, None, 1_700_000_000 + slot)


def moved(vaults: tuple[Pubkey, Pubkey], before: tuple[int, int], after: tuple[int, int]
          ) -> TxBalances:
    """A transaction in which the two vaults went from ``before`` to ``after``."""
    keys = [str(Pubkey.new_unique()), str(vaults[0]), str(vaults[1])]
    return TxBalances(keys, 5_000, keys[0], [0, 0, 0], [0, 0, 0],
                      [TokenBalance(1, SOL.mint, "", before[0]),
                       TokenBalance(2, USDC.mint, "", before[1])],
                      [TokenBalance(1, SOL.mint, "", after[0]),
                       TokenBalance(2, USDC.mint, "", after[1])])


class History:
    """``getSignaturesForAddress`` and ``getTransaction`` over fixed histories."""

    def __init__(self, entries: dict[str, list[SignatureEntry]],
                 txs: dict[str, TxBalances]) -> None:
        self.entries, self.txs = entries, txs
        self.read: list[str] = []
        self.down = False

    async def signatures_for_address(self, address: str, *, before: str | None = None,
                                     until: str | None = None,
                                     limit: int = 1000) -> list[SignatureEntry]:
        if self.down:
            raise RpcUnavailable(message="getSignaturesForAddress: timed out")
        return self.entries.get(address, [])[:limit]

    async def balances(self, signature: str) -> TxBalances:
        self.read.append(signature)
        if signature not in self.txs:
            raise RpcUnavailable(message=f"getTransaction: {signature} not found yet")
        return self.txs[signature]


def cp_history(vaults: tuple[Pubkey, Pubkey], pool: Pubkey) -> History:
    """Newest first: a swap of 2 SOL for 299 USDC, a failed one, liquidity added to both
    vaults, a swap of 150 USDC for 1 SOL."""
    return History({str(pool): [entry("swap-2", 40), entry("failed", 39, "{'Custom': 6005}"),
                                entry("deposit", 38), entry("swap-1", 37)]},
                   {"swap-2": moved(vaults, (10, 1_000), (10 + 2 * 10**9, 1_000 - 299)),
                    "deposit": moved(vaults, (5, 5), (10, 1_000)),
                    "swap-1": moved(vaults, (10**9 + 5, 850), (5, 850 + 150 * 10**6))})


async def charts_client(venues: VenueSet, reader: MemoryReader, charted: dict[Venue, ChartedVenue],
                        history: History) -> Any:
    market = MarketApi(None, venues, balances=None, wallet=None,
                       onchain_pools=OnchainPoolCharts(reader, charted),
                       pool_trades=PoolTrades(history))
    app = build_app(ingress_config(venues=venues), producer=FakeBus(), store=FakeStore(),
                    hub=StatusHub(), market=market)
    return serve(app)


def both_venues() -> tuple[Any, Accounts, dict[Venue, ChartedVenue], History]:
    cp = cp_pool(Pubkey.new_unique())
    pair, dlmm_accounts = dlmm_pair()
    charted: dict[Venue, ChartedVenue] = {
        Venue.RAYDIUM: RaydiumCpPools(CP_PROGRAM, explicit=[cp.pool]),
        Venue.METEORA: MeteoraDlmmPools(explicit=[pair])}
    return cp, {**cp.accounts, **dlmm_accounts}, charted, cp_history(
        (cp.vault_0, cp.vault_1), cp.pool)


async def test_on_chain_pools_are_served_with_prices_fees_and_trades() -> None:
    _, accounts, charted, history = both_venues()
    async for client in await charts_client(VenueSet(kind="onchain"), MemoryReader(accounts),
                                            charted, history):
        status, doc = await get(client, "/api/markets/pools")
    assert (status, doc["slot"], doc["unavailable"], doc["tradesUnavailable"]) == (
        200, 9_000, None, None)
    by_kind = {p["kind"]: p for p in doc["pools"]}
    shown_cp, shown_dlmm = by_kind["cpmm"], by_kind["dlmm"]
    assert (shown_cp["venue"], shown_cp["reserveX"], shown_cp["reserveY"]) == (
        "raydium", str(5_000 * 10**9), str(750_000 * 10**6))
    assert shown_cp["price"] == "150"  # 750,000 USDC / 5,000 SOL
    assert (shown_cp["x"]["symbol"], shown_cp["y"]["symbol"]) == ("SOL", "USDC")
    assert [(t["signature"], t["tokenIn"], t["amountIn"], t["tokenOut"], t["amountOut"])
            for t in shown_cp["trades"]] == [
        ("swap-2", SOL.mint, str(2 * 10**9), USDC.mint, "299"),
        ("swap-1", USDC.mint, str(150 * 10**6), SOL.mint, str(10**9))]
    assert shown_cp["trades"][0]["blockTime"] == 1_700_000_040
    assert "failed" not in history.read  # a failed transaction is not fetched
    theirs = oracle()
    assert shown_dlmm["venue"] == "meteora" and shown_dlmm["trades"] == []
    assert abs(Decimal(shown_dlmm["activePrice"]) / Decimal(theirs.spot_price()) - 1) < Decimal(
        "1e-9")
    assert (shown_dlmm["feeRate"], shown_dlmm["feeRateDenominator"]) == (
        oracle_fee_now(theirs, NOW), 10**9)


async def test_only_the_enabled_venues_pools_are_shown() -> None:
    _, accounts, charted, history = both_venues()
    venues = VenueSet(kind="onchain", enabled=(Venue.RAYDIUM,))
    async for client in await charts_client(venues, MemoryReader(accounts), charted, history):
        status, doc = await get(client, "/api/markets/pools")
    assert status == 200 and [p["venue"] for p in doc["pools"]] == ["raydium"]


async def test_a_dead_rpc_is_502_and_a_dead_history_leaves_the_pools_without_trades() -> None:
    _, accounts, charted, history = both_venues()
    history.down = True
    async for client in await charts_client(VenueSet(kind="onchain"), MemoryReader(accounts),
                                            charted, history):
        status, doc = await get(client, "/api/markets/pools")
    assert status == 200 and len(doc["pools"]) == 2
    assert all("trades" not in p for p in doc["pools"])
    assert "did not answer" in doc["tradesUnavailable"]
    async for client in await charts_client(VenueSet(kind="onchain"),
                                            MemoryReader(accounts, down=True), charted, history):
        status, doc = await get(client, "/api/markets/pools")
    assert (status, doc["error"]["code"]) == (502, "rpc_unavailable")


async def test_trades_read_each_transaction_once_and_at_most_the_budget_per_call() -> None:
    vaults = (Pubkey.new_unique(), Pubkey.new_unique())
    pool = Pubkey.new_unique()
    history = cp_history(vaults, pool)
    history.entries[str(pool)].insert(0, entry("landing", 41))  # not readable yet
    trades = PoolTrades(history, budget=2)
    spec = [(str(pool), (str(vaults[0]), str(vaults[1])), (SOL.mint, USDC.mint))]
    first = await trades.recent(spec)
    assert history.read == ["landing", "swap-2"] and [t.signature for t in first[str(pool)]] == [
        "swap-2"]
    second = await trades.recent(spec)
    assert history.read[2:] == ["landing", "deposit"]
    assert [t.signature for t in second[str(pool)]] == ["swap-2"]  # deposit is no trade
    third = await trades.recent(spec)
    assert history.read[4:] == ["landing", "swap-1"]
    assert [t.signature for t in third[str(pool)]] == ["swap-2", "swap-1"]
    assert trades.transactions_read == 3


@pytest.mark.parametrize("limit", [1, 3])
async def test_trades_look_only_at_the_newest_signatures(limit: int) -> None:
    vaults, pool = (Pubkey.new_unique(), Pubkey.new_unique()), Pubkey.new_unique()
    history = cp_history(vaults, pool)
    found = await PoolTrades(history, per_pool=limit).recent(
        [(str(pool), (str(vaults[0]), str(vaults[1])), (SOL.mint, USDC.mint))])
    assert len(history.read) <= limit
    assert [t.signature for t in found[str(pool)]] == ["swap-2"]
