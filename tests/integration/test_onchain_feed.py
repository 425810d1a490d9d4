"""The on-chain price feed for limit orders, on a localnet holding a real mainnet DLMM
SOL/USDC pair and a CP-Swap SOL/USDC pool laid out as the program lays it out.

Its view of the pair quotes, for every amount and both directions, exactly what the
engine's on-chain venues quote on the same state and cluster time (the best of the two
programs), never more than its rate bound per unit; it reports the pair again only when a
pool's accounts changed (a vault balance here).
"""

from __future__ import annotations

import struct

from solders.account import Account
from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_PROGRAM_ID

from pipeline.accounts import RpcAccounts
from pipeline.model import Venue
from pipeline.onchain_feed import CpOnchainCurve, OnchainPairsFeed
from pipeline.price_feed import Pair, pair_of
from pipeline.tokens import SOL, USDC
from pipeline.trigger_curves import PairView
from pipeline.venues import raydium_cp as ray
from pipeline.venues.base import Cluster
from pipeline.venues.onchain import OnchainVenues
from pipeline.venues.onchain_pools import MeteoraDlmmPools, RaydiumCpPools
from tests.integration.test_localnet_faults import Net, net  # noqa: F401 (the fixture)
from tests.integration.test_onchain_venues import _spliced, _token_account, place_pool
from tests.unit.test_raydium_cp import config_bytes, pool_bytes

PROGRAM = ray.RAYDIUM_CP_PROGRAM[Cluster.MAINNET]


class FrozenClock(RpcAccounts):
    """The real reader at one cluster time, so two readers quote the same fee state."""

    at: tuple[int, int] | None = None

    async def clock(self) -> tuple[int, int]:
        if self.at is None:
            self.at = await super().clock()
        return self.at


def place_cp_pool(net: Net, sol: int, usdc: int) -> Pubkey:  # noqa: F811
    s, u = Pubkey.from_string(SOL.mint), Pubkey.from_string(USDC.mint)
    pool_key, config_key = Pubkey.new_unique(), Pubkey.new_unique()
    vault_0, vault_1 = Pubkey.new_unique(), Pubkey.new_unique()
    pool = _spliced(pool_bytes(protocol=(1_000, 0)), {
        8: config_key, 8 + 2 * 32: vault_0, 8 + 3 * 32: vault_1,
        ray.TOKEN_0_MINT_OFFSET: s, ray.TOKEN_1_MINT_OFFSET: u,
        8 + 7 * 32: TOKEN_PROGRAM_ID, 8 + 8 * 32: TOKEN_PROGRAM_ID})
    authority = ray.authority(PROGRAM)
    for key_, data, owner in [
            (pool_key, pool, PROGRAM), (config_key, config_bytes(), PROGRAM),
            (vault_0, _token_account(s, authority, sol), TOKEN_PROGRAM_ID),
            (vault_1, _token_account(u, authority, usdc), TOKEN_PROGRAM_ID)]:
        net.chain.set_account(key_, Account(10**9, data, owner, False, 0))
    return vault_0


async def test_the_feed_quotes_what_the_venues_quote_and_reports_changes(
        net: Net) -> None:  # noqa: F811
    place_pool(net)  # the real DLMM SOL/USDC pair and its bin arrays
    sol_vault = place_cp_pool(net, 5_000 * 10**9, 745_000 * 10**6)
    reader = FrozenClock(net.client)
    largest = {(SOL.mint, USDC.mint): 30 * 10**9, (USDC.mint, SOL.mint): 4_000 * 10**6}
    feed = OnchainPairsFeed(reader, PROGRAM, probe_amount=lambda a, b: largest[(a, b)],
                            refresh_s=3600)
    venues = OnchainVenues(reader, {Venue.RAYDIUM: RaydiumCpPools(PROGRAM),
                                    Venue.METEORA: MeteoraDlmmPools()})
    views: list[PairView] = []

    async def on_view(pair: Pair, view: PairView) -> None:
        views.append(view)

    pair = pair_of(SOL.mint, USDC.mint)
    assert await feed.read_once([pair], on_view) == 1
    (view,) = views
    assert len(view.curves) == 2
    compared = 0
    for tin, tout, amounts in ((SOL.mint, USDC.mint, (10**6, 10**9, 25 * 10**9)),
                               (USDC.mint, SOL.mint, (10**6, 150 * 10**6, 4_000 * 10**6))):
        bound = view.rate_bound(tin, tout)
        for amount in amounts:
            best = max([(await venues.quote(v, tin, tout, amount, 50)).out_amount
                        for v in (Venue.RAYDIUM, Venue.METEORA)])
            assert view.best_out(tin, tout, amount) == best, (tin, amount)
            assert best <= amount * bound
            compared += 1
    assert compared == 6
    assert await feed.read_once([pair], on_view) == 0  # nothing changed: nothing reported
    vault = net.chain.svm.get_account(sol_vault)
    assert vault is not None
    data = bytearray(vault.data)
    struct.pack_into("<Q", data, 64, 5_100 * 10**9)  # the CP pool's SOL vault grew
    net.chain.set_account(sol_vault, Account(vault.lamports, bytes(data), vault.owner,
                                             False, 0))
    assert await feed.read_once([pair], on_view) == 1

    def cp_out(v: PairView) -> int:  # the CP-Swap pool: more SOL in it, more SOL per USDC
        (cp,) = [c for c in v.curves if isinstance(c, CpOnchainCurve)]
        return cp.out(False, 10**9)
    assert cp_out(views[-1]) > cp_out(view)
