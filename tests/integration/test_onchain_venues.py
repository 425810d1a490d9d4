"""On-chain venues through the RPC (pipeline/venues/onchain.py): a real mainnet Meteora
DLMM pair (SOL/USDC with its 47 bin arrays, shipped by the PyPI package ``meteora-dlmm``)
is placed on the localnet as accounts of the DLMM program; the engine discovers it with
``getProgramAccounts``, reads it with ``getMultipleAccounts`` and the Clock sysvar, and
must quote exactly what the independent oracle quotes at the same cluster time.

What only a run with the program binary proves: that the swap transaction built here is
accepted and pays the quote. Without the binary the localnet cannot execute DLMM
instructions, so the build is checked to fail at simulation with a clear error rather
than being sent (the adapter's hand check against the real program is described in its
tests)."""

from __future__ import annotations

import base64
import json
from functools import cache
from importlib import resources
from typing import Any

import meteora_dlmm
import pytest
from solders.account import Account
from solders.pubkey import Pubkey

from pipeline.accounts import RpcAccounts
from pipeline.errors import OrderflowError
from pipeline.model import Venue
from pipeline.tokens import SOL, USDC
from pipeline.venues import meteora_dlmm as dlmm
from pipeline.venues.onchain import OnchainVenues
from pipeline.venues.onchain_pools import MeteoraDlmmPools
from tests.integration.test_localnet_faults import Net, net  # noqa: F401 (the fixture)

pytestmark = pytest.mark.integration


@cache
def reference() -> dict[str, Any]:
    text = resources.files("meteora_dlmm").joinpath("_reference.json").read_text()
    return dict(json.loads(text))


class RecordingReader(RpcAccounts):
    """The real reader, remembering the cluster time it handed out."""

    clock_seen: tuple[int, int] | None = None

    async def clock(self) -> tuple[int, int]:
        self.clock_seen = await super().clock()
        return self.clock_seen


def place_pool(net: Net) -> None:  # noqa: F811
    ref = reference()
    rent = 10**9

    def put(key: str, data: bytes) -> None:
        net.chain.set_account(Pubkey.from_string(key),
                              Account(rent, data, dlmm.PROGRAM_ID, False, 0))

    put(ref["pool"], base64.b64decode(ref["lbPairB64"]))
    for array in ref["binArraysB64"]:
        put(array["pubkey"], base64.b64decode(array["data"]))


def oracle_out(amount: int, swap_for_y: bool, now: int) -> int:
    ref = reference()
    pool = meteora_dlmm.PoolState.from_accounts(
        base64.b64decode(ref["lbPairB64"]),
        [base64.b64decode(a["data"]) for a in ref["binArraysB64"]], 9, 6)
    q = meteora_dlmm.quote(pool, amount, swap_for_y, timestamp=now)
    assert q.complete and q.remaining_in == 0
    return int(q.amount_out)


async def test_a_real_dlmm_pair_on_chain_is_found_and_quoted_exactly(
        net: Net) -> None:  # noqa: F811
    place_pool(net)
    reader = RecordingReader(net.client)
    venues = OnchainVenues(reader, {Venue.METEORA: MeteoraDlmmPools()})
    pair = dlmm.decode_lb_pair(base64.b64decode(reference()["lbPairB64"]))
    assert pair.token_x_mint == Pubkey.from_string(SOL.mint)  # SOL is x: SOL in = for y
    for amount in (10_000_000, 1_000_000_000, 25_000_000_000):
        quote = await venues.quote(Venue.METEORA, SOL.mint, USDC.mint, amount, 50)
        assert reader.clock_seen is not None
        assert quote.out_amount == oracle_out(amount, True, reader.clock_seen[1])
        assert quote.amm_key == reference()["pool"]
        assert int(str(quote.raw["otherAmountThreshold"])) == quote.out_amount * 9950 // 10000
    back = await venues.quote(Venue.METEORA, USDC.mint, SOL.mint, 150_000_000, 50)
    assert reader.clock_seen is not None
    assert back.out_amount == oracle_out(150_000_000, False, reader.clock_seen[1])


async def test_without_the_program_the_swap_fails_at_simulation_not_on_chain(
        net: Net) -> None:  # noqa: F811
    place_pool(net)
    venues = OnchainVenues(RpcAccounts(net.client), {Venue.METEORA: MeteoraDlmmPools()})
    quote = await venues.quote(Venue.METEORA, SOL.mint, USDC.mint, 10_000_000, 50)
    wallet = net.funded()
    sent_before = net.chain.transaction_count
    with pytest.raises(OrderflowError, match="simulation failed"):
        await venues.swap_transaction(quote, str(wallet.pubkey()), memo="orderflow:o-sim")
    assert net.chain.transaction_count == sent_before
