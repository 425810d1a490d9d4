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
import struct
from functools import cache
from importlib import resources
from typing import Any

import meteora_dlmm
import pytest
from solders.account import Account
from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_PROGRAM_ID

from pipeline.accounts import RpcAccounts
from pipeline.errors import OrderflowError
from pipeline.model import Venue
from pipeline.tokens import SOL, USDC
from pipeline.venues import meteora_dlmm as dlmm
from pipeline.venues import raydium_cp as ray
from pipeline.venues.onchain import OnchainVenues
from pipeline.venues.onchain_pools import MeteoraDlmmPools, RaydiumCpPools
from tests.integration.test_localnet_faults import Net, net  # noqa: F401 (the fixture)
from tests.unit.test_raydium_cp import config_bytes, pool_bytes

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


def _spliced(data: bytes, keys: dict[int, Pubkey]) -> bytes:
    """``data`` with the 32-byte keys written at the given offsets."""
    out = bytearray(data)
    for offset, k in keys.items():
        out[offset:offset + 32] = bytes(k)
    return bytes(out)


def _token_account(mint: Pubkey, owner: Pubkey, amount: int) -> bytes:
    """An SPL Token account as the program lays it out (165 bytes, initialised)."""
    return (bytes(mint) + bytes(owner) + struct.pack("<Q", amount) + bytes(4 + 32)
            + bytes([1]) + bytes(4 + 8) + struct.pack("<Q", 0) + bytes(4 + 32))


async def test_a_raydium_cp_pool_on_chain_is_found_and_quoted_exactly(
        net: Net) -> None:  # noqa: F811
    program = ray.RAYDIUM_CP_PROGRAM[ray.Cluster.MAINNET]
    sol, usdc = Pubkey.from_string(SOL.mint), Pubkey.from_string(USDC.mint)
    pool_key, config_key = Pubkey.new_unique(), Pubkey.new_unique()
    vault_0, vault_1 = Pubkey.new_unique(), Pubkey.new_unique()
    # Layout offsets of PoolState's keys (8-byte discriminator, then 32 bytes each).
    pool = _spliced(pool_bytes(protocol=(1_000, 0), fund=(0, 500)), {
        8: config_key, 8 + 2 * 32: vault_0, 8 + 3 * 32: vault_1,
        ray.TOKEN_0_MINT_OFFSET: sol, ray.TOKEN_1_MINT_OFFSET: usdc,
        8 + 7 * 32: TOKEN_PROGRAM_ID, 8 + 8 * 32: TOKEN_PROGRAM_ID})
    authority = ray.authority(program)
    for key_, data, owner in [
            (pool_key, pool, program), (config_key, config_bytes(), program),
            (vault_0, _token_account(sol, authority, 5_000 * 10**9 + 1_000), TOKEN_PROGRAM_ID),
            (vault_1, _token_account(usdc, authority, 750_000 * 10**6 + 500),
             TOKEN_PROGRAM_ID)]:
        net.chain.set_account(key_, Account(10**9, data, owner, False, 0))
    venues = OnchainVenues(RpcAccounts(net.client), {Venue.RAYDIUM: RaydiumCpPools(program)})
    decoded = ray.decode_pool_state(pool)
    config = ray.decode_amm_config(config_bytes())
    for amount in (1_000_000, 2 * 10**9, 300 * 10**9):
        quote = await venues.quote(Venue.RAYDIUM, SOL.mint, USDC.mint, amount, 100)
        expected = ray.quote_swap_base_input(decoded, config, 5_000 * 10**9 + 1_000,
                                             750_000 * 10**6 + 500, amount, True)
        assert quote.out_amount == expected.amount_out
        assert quote.amm_key == str(pool_key)
    with pytest.raises(OrderflowError, match="simulation failed"):
        await venues.swap_transaction(quote, str(net.funded().pubkey()), memo="orderflow:o")
