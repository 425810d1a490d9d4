"""A split across both programs through the real localnet RPC (ORDERFLOW_VENUES=onchain's
code path: RpcAccounts, OnchainVenues, the Router): a Raydium CP-Swap pool (real layout,
SPL vaults) and the real mainnet Meteora DLMM SOL/USDC pair that ``meteora-dlmm`` ships
are placed on the localnet as in ``test_onchain_venues.py``; both are discovered by
program scan and quoted exactly, the router splits the order between them (the CP pool is
a little cheaper at spot, the DLMM pair much deeper), and the split is built as ONE
transaction with both swap instructions inside the envelope.

What CI cannot show without the program binaries: the transaction executing. The build's
simulation fails for the missing program, so nothing is sent: the chain's transaction
count does not move and the error says why (the executor turns it into the order's
failure; its own tests cover that). With the binaries loaded (``orderflow localnet
--bpf-program``) the same code sends it."""

from __future__ import annotations

import struct

import pytest
from prometheus_client import CollectorRegistry
from solders.account import Account
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction
from spl.token.constants import ASSOCIATED_TOKEN_PROGRAM_ID, TOKEN_PROGRAM_ID

from pipeline.accounts import RpcAccounts
from pipeline.errors import OrderflowError
from pipeline.guards import PriceLimits
from pipeline.metrics import EngineMetrics
from pipeline.model import Venue
from pipeline.router import Router
from pipeline.tokens import SOL, USDC
from pipeline.txbuild import MEMO_PROGRAM, wallet_account
from pipeline.venues import meteora_dlmm as dlmm
from pipeline.venues import raydium_cp as ray
from pipeline.venues.onchain import OnchainVenues
from pipeline.venues.onchain_pools import MeteoraDlmmPools, RaydiumCpPools
from pipeline.wire import ExecuteOrder
from tests.integration.test_localnet_faults import Net, net  # noqa: F401 (the fixture)
from tests.integration.test_onchain_venues import (
    _spliced,
    _token_account,
    oracle_out,
    place_pool,
    reference,
)
from tests.unit.test_raydium_cp import config_bytes, pool_bytes

pytestmark = pytest.mark.integration

COMPUTE_BUDGET = Pubkey.from_string("ComputeBudget111111111111111111111111111111")
SYSTEM = Pubkey.from_string("11111111111111111111111111111111")
RAY_SOL, RAY_USDC = 2_000 * 10**9, 159_000 * 10**6  # spot 79.5 USDC/SOL; the pair ~79.1


class CapturingReader(RpcAccounts):
    """The real reader, keeping the cluster time and the transaction it simulated."""

    clock_seen: tuple[int, int] | None = None
    simulated: VersionedTransaction | None = None

    async def clock(self) -> tuple[int, int]:
        self.clock_seen = await super().clock()
        return self.clock_seen

    async def simulate_units(self, tx: VersionedTransaction) -> int:
        self.simulated = tx
        return await super().simulate_units(tx)


def place_raydium_pool(net: Net) -> tuple[Pubkey, ray.PoolState, ray.AmmConfig]:  # noqa: F811
    program = ray.RAYDIUM_CP_PROGRAM[ray.Cluster.LOCALNET]
    sol, usdc = Pubkey.from_string(SOL.mint), Pubkey.from_string(USDC.mint)
    pool_key, config_key = Pubkey.new_unique(), Pubkey.new_unique()
    vault_0, vault_1 = Pubkey.new_unique(), Pubkey.new_unique()
    pool = _spliced(pool_bytes(), {
        8: config_key, 8 + 2 * 32: vault_0, 8 + 3 * 32: vault_1,
        ray.TOKEN_0_MINT_OFFSET: sol, ray.TOKEN_1_MINT_OFFSET: usdc,
        8 + 7 * 32: TOKEN_PROGRAM_ID, 8 + 8 * 32: TOKEN_PROGRAM_ID})
    authority = ray.authority(program)
    for key_, data, owner in [
            (pool_key, pool, program), (config_key, config_bytes(), program),
            (vault_0, _token_account(sol, authority, RAY_SOL), TOKEN_PROGRAM_ID),
            (vault_1, _token_account(usdc, authority, RAY_USDC), TOKEN_PROGRAM_ID)]:
        net.chain.set_account(key_, Account(10**9, data, owner, False, 0))
    return pool_key, ray.decode_pool_state(pool), ray.decode_amm_config(config_bytes())


def _amounts(data: bytes) -> tuple[int, int]:
    """(amount in, minimum out) of a swap instruction: both programs put them first."""
    return struct.unpack_from("<QQ", data, 8)


async def test_an_order_is_split_across_both_programs_in_one_transaction(
        net: Net) -> None:  # noqa: F811
    place_pool(net)
    ray_key, ray_pool, ray_config = place_raydium_pool(net)
    reader = CapturingReader(net.client)
    venues = OnchainVenues(reader, {
        Venue.RAYDIUM: RaydiumCpPools(ray.RAYDIUM_CP_PROGRAM[ray.Cluster.LOCALNET]),
        Venue.METEORA: MeteoraDlmmPools()})
    router = Router(venues, enabled=(Venue.RAYDIUM, Venue.METEORA), limits=PriceLimits(),
                    metrics=EngineMetrics(CollectorRegistry()))
    total = 25 * 10**9
    order = ExecuteOrder("o-split", SOL.mint, USDC.mint, total, 50,
                         1_700_000_000_000).to_order()

    quotes = await router.quote_all(order)
    assert quotes.errors == () and len(quotes.quotes) == 2
    assert reader.clock_seen is not None
    now = reader.clock_seen[1]

    def ray_out(amount: int) -> int:
        return ray.quote_swap_base_input(ray_pool, ray_config, RAY_SOL, RAY_USDC, amount,
                                         True, now=now).amount_out

    by_venue = {q.venue: q for q in quotes.quotes}  # both pools quoted exactly
    assert by_venue[Venue.RAYDIUM].out_amount == ray_out(total)
    assert by_venue[Venue.RAYDIUM].amm_key == str(ray_key)
    assert by_venue[Venue.METEORA].out_amount == oracle_out(total, True, now)
    assert by_venue[Venue.METEORA].amm_key == reference()["pool"]

    route = router.choose(order, quotes.quotes, max_price_impact_bps=None)
    legs = {leg.venue: leg for leg in route.legs}
    assert set(legs) == {Venue.RAYDIUM, Venue.METEORA}  # the split is chosen
    r, m = legs[Venue.RAYDIUM], legs[Venue.METEORA]
    assert r.amount_in + m.amount_in == total and r.amount_in > 0 and m.amount_in > 0
    assert r.fraction_bps + m.fraction_bps == 10_000
    assert r.expected_out == ray_out(r.amount_in)  # each leg exact on its own curve
    assert m.expected_out == oracle_out(m.amount_in, True, now)
    assert route.best.out_amount == r.expected_out + m.expected_out > max(
        q.out_amount for q in quotes.quotes)
    assert r.min_out + m.min_out == route.min_out == route.best.out_amount * 9_950 // 10_000

    wallet = net.funded(100 * 10**9)
    sent_before = net.chain.transaction_count
    with pytest.raises(OrderflowError, match="simulation failed"):
        await venues.swap_transaction(route.best, str(wallet.pubkey()), memo="orderflow:o-split")
    assert net.chain.transaction_count == sent_before  # nothing was sent

    tx = reader.simulated
    assert tx is not None and len(bytes(tx)) <= 1232  # one legacy-size packet, no ALT needed
    keys = tx.message.account_keys
    ixs = [(keys[ix.program_id_index], bytes(ix.data), [keys[i] for i in ix.accounts])
           for ix in tx.message.instructions]
    assert [p for p, _, _ in ixs] == [
        COMPUTE_BUDGET, COMPUTE_BUDGET, ASSOCIATED_TOKEN_PROGRAM_ID,
        ASSOCIATED_TOKEN_PROGRAM_ID, SYSTEM, TOKEN_PROGRAM_ID,
        *[ray.RAYDIUM_CP_PROGRAM[ray.Cluster.LOCALNET] if leg.venue is Venue.RAYDIUM
          else dlmm.PROGRAM_ID for leg in route.legs],
        TOKEN_PROGRAM_ID, MEMO_PROGRAM]
    user = wallet.pubkey()
    wsol, usdc_ata = (wallet_account(user, Pubkey.from_string(SOL.mint)),
                      wallet_account(user, Pubkey.from_string(USDC.mint)))
    assert struct.unpack_from("<Q", ixs[4][1], 4)[0] == total  # wraps the whole input
    for leg, (_, data, accounts) in zip(route.legs, ixs[6:8], strict=True):
        assert _amounts(data) == (leg.amount_in, leg.min_out)  # the program's own minimum
        assert user in accounts and wsol in accounts and usdc_ata in accounts
    assert Pubkey.from_string(leg.pool) in ixs[6 + route.legs.index(leg)][2]
    assert ray_key in ixs[6 + [lg.venue for lg in route.legs].index(Venue.RAYDIUM)][2]
    assert ixs[-1][1] == b"orderflow:o-split"
