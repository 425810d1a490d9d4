"""Sniper and limit orders on the real Raydium CP-Swap and Meteora DLMM programs (skipped
unless /work/binaries holds both binaries, see docs/real-programs.md; CI has none).

A real localnet loads both programs (the stack's on-chain market: config accounts, a
SOL/USDC pool and pair); a worker trades on chain. A new token's mint exists, no pool yet;
two sniper orders wait ``open`` for it. Then a CP-Swap pool for TOKEN/SOL is launched
through the program's own ``initialize``. The worker's pool watch sees it through
``programSubscribe`` (and makes it tradable though the worker's venues have an explicit pool
list, as ``make up`` sets it); the order whose guards hold buys within a bounded number of
slots of the pool's creation, no worse than its maximum price; the order asking for more
quote-side liquidity than the pool holds is refused with that reason and stays open.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import psycopg
import pytest
from aiokafka import AIOKafkaProducer
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from orderflow.market.chain import NATIVE_MINT
from orderflow.market.chain import Cluster as Launcher
from orderflow.market.create import MarketPlan, create_cp_pool
from orderflow.stack import Stack, StackOptions
from pipeline.model import OrderType, SniperTerms
from pipeline.tokens import SOL
from pipeline.venues.base import Cluster as ClusterName
from pipeline.venues.meteora_dlmm import PROGRAM_ID as DLMM_PROGRAM
from pipeline.venues.raydium_cp import RAYDIUM_CP_PROGRAM
from pipeline.wallet import write_keypair
from pipeline.wire import ExecuteOrder, now_ms
from sinks.migrate import migrate
from tests.helpers import free_port
from tests.order_status import Statuses

pytestmark = pytest.mark.integration
BINARIES = Path(os.environ.get("ORDERFLOW_TEST_BINARIES", "/work/binaries"))
CP_SO, DLMM_SO = BINARIES / "raydium_cp_swap.so", BINARIES / "lb_clmm_prod.so"
SLOT_MS = 100
MAX_SLOTS = 30  # creation slot -> the sniper's swap landed


@dataclass
class Net:
    stack: Stack
    wallet: Keypair
    broker: str
    database_url: str


@pytest.fixture
async def net(own_broker: str, own_database_url: str, tmp_path: Path) -> AsyncIterator[Net]:
    if not (CP_SO.exists() and DLMM_SO.exists()):
        pytest.skip(f"the real programs' binaries are not in {BINARIES}")
    await migrate(own_database_url)
    wallet = Keypair()
    write_keypair(tmp_path / "wallet.json", wallet)
    cp = RAYDIUM_CP_PROGRAM[ClusterName.LOCALNET]
    env = {**os.environ,
           "ORDERFLOW_LOCALNET_PROGRAMS": f"{cp}={CP_SO},{DLMM_PROGRAM}={DLMM_SO}",
           "ORDERFLOW_LOCALNET_SLOT_MS": str(SLOT_MS), "ORDERFLOW_LOCALNET_DRIFT_BPS": "0",
           "ORDERFLOW_CONFIRM_POLL_MS": "50", "ORDERFLOW_SESSION_TIMEOUT_S": "2",
           "ORDERFLOW_REBALANCE_TIMEOUT_S": "2", "ORDERFLOW_LEASE_S": "3",
           "ORDERFLOW_APP_ID": f"orderflow-sniper-{uuid.uuid4().hex[:6]}"}
    stack = Stack(StackOptions(tmp_path, bootstrap=own_broker, database_url=own_database_url,
                               rpc_port=free_port(span=2), venue_port=free_port(),
                               wallet=str(tmp_path / "wallet.json"), workers=(),
                               ingress=False, onchain_market=True), env=env)
    try:
        await stack.start_infrastructure()
        yield Net(stack, wallet, own_broker, own_database_url)
    finally:
        stack.stop()


def snipe(order_id: str, mint: Pubkey, min_liquidity: int) -> ExecuteOrder:
    now = now_ms()
    return ExecuteOrder(order_id, SOL.mint, str(mint), SOL_IN, 300, now, "kafka",
                        order_type=OrderType.SNIPER, expires_at_ms=now + 300_000,
                        sniper=SniperTerms(min_liquidity, min_out=MIN_TOKENS,
                                           max_price_impact_bps=2_000, max_delay_slots=20))


SOL_IN = 5 * 10**8  # 0.5 SOL
POOL_SOL = 20  # the launched pool holds 20 SOL against 20,000 TOKEN (0.001 SOL each)
MIN_TOKENS = 400 * 10**6  # at most 0.00125 SOL per TOKEN (6 decimals)


async def test_a_sniper_buys_a_new_pool_within_bounded_slots(net: Net) -> None:
    rpc = net.stack.rpc_url
    assert rpc is not None
    async with AsyncClient(rpc) as client:
        launcher = Launcher(client, net.wallet)
        token = await launcher.create_mint(6)
        # as `make up` runs it: the venues trade an explicit pool list (up's SOL/USDC pools,
        # ORDERFLOW_POOLS) that a pool launched later is not in (the watch makes it known),
        # and no ORDERFLOW_TOKENS (the new token's decimals come from its mint account)
        env = net.stack.child_env()
        assert env.get("ORDERFLOW_POOLS") and "ORDERFLOW_TOKENS" not in env
        net.stack.start_worker("w1", env=env)
        tag = uuid.uuid4().hex[:8]
        buys = snipe(f"snipe-ok-{tag}", token, min_liquidity=5 * 10**9)
        dust = snipe(f"snipe-deep-{tag}", token, min_liquidity=10_000 * 10**9)
        async with Statuses(net.broker, {buys.order_id, dust.order_id}) as st:
            producer = AIOKafkaProducer(bootstrap_servers=net.broker, acks="all")
            await producer.start()
            try:
                for cmd in (buys, dust):
                    await producer.send_and_wait("orders", cmd.encode(),
                                                 key=cmd.order_id.encode())
            finally:
                await producer.stop()
            await st.until(buys.order_id, "open", 90)
            await st.until(dust.order_id, "open", 30)
            plan = MarketPlan(ClusterName.LOCALNET, mint_a=token, mint_b=NATIVE_MINT,
                              decimals_a=6, decimals_b=9, price=Fraction(1, 1000),
                              cp_depth_a=Fraction(POOL_SOL * 1000))
            launched_at = time.monotonic()
            pool = Pubkey.from_string((await create_cp_pool(launcher, plan, token, NATIVE_MINT,
                                                            6, 9))["pool"])
            confirmed = await st.until(buys.order_id, "confirmed", 60)
            waited_ms = (time.monotonic() - launched_at) * 1000
            sigs = (await client.get_signatures_for_address(pool,
                                                            commitment=Confirmed)).value
            created_slot = min(s.slot for s in sigs)
    landed_slot = int(confirmed["data"]["slot"])
    assert int(confirmed["data"]["amountOut"]) >= MIN_TOKENS
    assert 0 < landed_slot - created_slot <= MAX_SLOTS, (created_slot, landed_slot)
    triggered = next(e for e in st.events[buys.order_id] if e["status"] == "triggered")
    print(f"sniper: pool {pool} created at slot {created_slot}, swap landed at slot "
          f"{landed_slot} ({landed_slot - created_slot} slots of {SLOT_MS} ms); "
          f"launch confirmed -> order confirmed seen {waited_ms:.0f} ms; trigger {triggered}")
    assert st.statuses(dust.order_id) == ["pending", "open"]
    with psycopg.connect(net.database_url) as conn:
        found = conn.execute("SELECT status, error_code, error_message FROM executions "
                             "WHERE order_id = %s", (dust.order_id,)).fetchone()
    assert found is not None and found[0] == "open" and found[1] == "sniper_refused"
    assert "below the order's minimum liquidity" in found[2], found


async def real_trade(rpc: str, trader: Keypair, tin: str, tout: str, amount: int) -> None:
    """A trader's swap on the CP-Swap pool, built and sent the engine's own way."""
    from pipeline.accounts import RpcAccounts
    from pipeline.model import Venue
    from pipeline.solana_rpc import sign_as
    from pipeline.venues.onchain import OnchainVenues
    from pipeline.venues.onchain_pools import RaydiumCpPools

    async with AsyncClient(rpc) as client:
        venues = OnchainVenues(RpcAccounts(client), {Venue.RAYDIUM: RaydiumCpPools(
            RAYDIUM_CP_PROGRAM[ClusterName.LOCALNET])})
        quote = await venues.quote(Venue.RAYDIUM, tin, tout, amount, 100)
        built = await venues.swap_transaction(quote, str(trader.pubkey()),
                                              memo=f"orderflow:trade-{uuid.uuid4().hex[:8]}")
        sig = (await client.send_raw_transaction(bytes(sign_as(built.tx_bytes, trader)))).value
        await client.confirm_transaction(sig, Confirmed)


async def test_limit_orders_on_the_real_programs_trigger_once_no_worse_than_the_limit(
        net: Net) -> None:
    """The on-chain price feed: a limit below the market fires at once, one above it after
    a real USDC -> SOL trade on the CP-Swap pool lifts SOL; each fills at least its limit."""
    from pipeline.model import LimitTerms
    from pipeline.tokens import USDC

    rpc = net.stack.rpc_url
    assert rpc is not None
    net.stack.start_worker("w1", env=net.stack.child_env())
    now = now_ms()
    tag = uuid.uuid4().hex[:8]

    def sell(order_id: str, min_usdc: int) -> ExecuteOrder:
        return ExecuteOrder(order_id, SOL.mint, USDC.mint, 10**9, 50, now, "kafka",
                            order_type=OrderType.LIMIT, expires_at_ms=now + 300_000,
                            limit=LimitTerms(min_usdc))
    below, above = sell(f"lim-below-{tag}", 140_000_000), sell(f"lim-above-{tag}", 151_000_000)
    async with Statuses(net.broker, {below.order_id, above.order_id}) as st:
        producer = AIOKafkaProducer(bootstrap_servers=net.broker, acks="all")
        await producer.start()
        try:
            for cmd in (below, above):
                await producer.send_and_wait("orders", cmd.encode(), key=cmd.order_id.encode())
        finally:
            await producer.stop()
        first = await st.until(below.order_id, "confirmed", 90)
        await st.until(above.order_id, "open", 30)
        # ~+2 % on the CP-Swap pool: past the limit, within the router's 5 % venue deviation
        await real_trade(rpc, net.wallet, USDC.mint, SOL.mint, 1_500 * 10**6)
        second = await st.until(above.order_id, "confirmed", 90)
    assert int(first["data"]["amountOut"]) >= 140_000_000
    assert int(second["data"]["amountOut"]) >= 151_000_000
    for cmd in (below, above):
        assert st.statuses(cmd.order_id) == ["pending", "open", "triggered", "routing",
                                              "building", "submitted", "confirmed"]
