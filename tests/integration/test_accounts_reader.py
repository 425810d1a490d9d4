"""The engine's chain reads for building swaps (pipeline/accounts.py) against the
localnet's JSON-RPC: accounts in batches, a program scan with memcmp and dataSize
filters, the Clock sysvar, a simulation's compute units and its failure."""

from __future__ import annotations

import time

import pytest
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction
from spl.token.constants import TOKEN_PROGRAM_ID

from pipeline.accounts import RpcAccounts
from pipeline.errors import PermanentError
from pipeline.tokens import USDC
from pipeline.txbuild import wallet_account
from tests.integration.test_localnet_faults import Net, net  # noqa: F401 (the fixture)

pytestmark = pytest.mark.integration

TOKEN_ACCOUNT_SIZE = 165
MINT_OFFSET, OWNER_OFFSET = 0, 32


async def test_reads_accounts_scans_programs_and_the_clock(net: Net) -> None:  # noqa: F811
    reader = RpcAccounts(net.client)
    funded, nobody = net.funded(), Keypair().pubkey()
    data = await reader.accounts([funded.pubkey(), nobody] * 60)  # two batches of 100 max
    assert len(data) == 120 and data[0] == b"" and data[1] is None
    net.chain.faucet.mint_to(Pubkey.from_string(USDC.mint), funded.pubkey(), 5_000_000,
                             net.market.mint_authority)
    usdc_account = wallet_account(funded.pubkey(), Pubkey.from_string(USDC.mint))
    found = await reader.program_accounts(TOKEN_PROGRAM_ID, [
        {"dataSize": TOKEN_ACCOUNT_SIZE},
        {"memcmp": {"offset": OWNER_OFFSET, "bytes": str(funded.pubkey())}},
    ])
    assert [key for key, _ in found] == [usdc_account]
    assert found[0][1][MINT_OFFSET:MINT_OFFSET + 32] == bytes(Pubkey.from_string(USDC.mint))
    slot, unix = await reader.clock()
    assert 0 <= slot <= net.chain.slot and abs(unix - time.time()) < 60


async def test_simulation_gives_units_or_the_error_it_would_land_with(
        net: Net) -> None:  # noqa: F811
    reader = RpcAccounts(net.client)
    payer = net.funded()
    blockhash, lvbh = await reader.latest_blockhash()
    assert lvbh > 0

    def tx(lamports: int) -> VersionedTransaction:
        ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=Keypair().pubkey(),
                                     lamports=lamports))
        return VersionedTransaction(MessageV0.try_compile(payer.pubkey(), [ix], [], blockhash),
                                    [payer])

    assert 0 < await reader.simulate_units(tx(1_000_000)) < 10_000
    with pytest.raises(PermanentError):
        await reader.simulate_units(tx(10**18))  # more than the wallet holds
    fees = await reader.prioritization_fees([payer.pubkey()])
    assert all(isinstance(f, int) and f >= 0 for f in fees)
