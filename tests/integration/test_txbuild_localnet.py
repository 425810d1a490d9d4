"""The swap envelope (pipeline/txbuild.py) executed by the real SPL Token, Associated
Token Account, Compute Budget and Memo programs on the localnet: the wallet's output
token account is created, SOL is wrapped and unwrapped around the legs, the memo lands
and is found by the engine's chain history."""

from __future__ import annotations

import pytest
from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction

from pipeline.chain_history import WalletHistory
from pipeline.solana_rpc import RpcChain
from pipeline.tokens import SOL, USDC
from pipeline.txbuild import (
    FeePolicy,
    SwapEnvelope,
    compute_limit,
    priority_price,
    swap_instructions,
    swap_message,
    wallet_account,
)
from tests.helpers import wait_until
from tests.integration.test_localnet_faults import Net, net  # noqa: F401 (the fixture)

pytestmark = pytest.mark.integration


async def test_the_envelope_runs_on_the_real_token_programs(net: Net) -> None:  # noqa: F811
    chain = RpcChain(net.rpc_url, timeout_s=5)
    try:
        payer = net.funded()
        me = payer.pubkey()
        # A stand-in leg that touches the wrapped input, as a swap would (a 0-lamport
        # transfer to the wSOL account); the venue legs are the adapters' business.
        wsol = wallet_account(me, Pubkey.from_string(SOL.mint))
        leg = transfer(TransferParams(from_pubkey=me, to_pubkey=wsol, lamports=0))
        env = SwapEnvelope(me, Pubkey.from_string(SOL.mint), Pubkey.from_string(USDC.mint),
                           250_000_000, "orderflow:o-envelope")
        blockhash, _ = net.chain.latest_blockhash()
        msg = swap_message(env, [leg], cu_limit=compute_limit(60_000, FeePolicy()),
                           cu_price=priority_price([5, 10, 15], FeePolicy()),
                           blockhash=blockhash)
        tx = VersionedTransaction(msg, [payer])
        sig = await chain.send(tx)

        async def landed() -> bool:
            [st] = await chain.statuses([sig])
            return st is not None and st[2] >= 1

        await wait_until(landed, 10, "the envelope to land")
        [st] = await chain.statuses([sig])
        assert st is not None and st[1] is None, st
        usdc_account = wallet_account(me, Pubkey.from_string(USDC.mint))
        assert net.chain.get_account(usdc_account) is not None  # created for the output
        assert net.chain.get_account(wsol) is None  # unwrapped: closed after the legs
        found = await WalletHistory(chain, str(me)).landed_swap("o-envelope")
        assert found is not None and found.signature == sig
        balances = await chain.balances(sig)
        spent = balances.pre_lamports[0] - balances.post_lamports[0]
        rent = net.chain.get_account(usdc_account)
        assert rent is not None
        assert spent == balances.fee + rent.lamports  # the input came back whole
    finally:
        await chain.close()


def test_a_leg_reading_the_wrapped_input_is_ordered_after_the_wrap() -> None:
    me = Pubkey.new_unique()
    wsol = wallet_account(me, Pubkey.from_string(SOL.mint))
    leg = Instruction(Pubkey.new_unique(), b"", [AccountMeta(wsol, False, True)])
    env = SwapEnvelope(me, Pubkey.from_string(SOL.mint), Pubkey.from_string(USDC.mint), 1, "m")
    ixs = swap_instructions(env, [leg], cu_limit=1, cu_price=0)
    assert ixs.index(leg) == 6  # after limit, price, 2 ATAs, transfer, SyncNative
