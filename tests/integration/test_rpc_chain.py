"""The engine's Solana edge (:class:`pipeline.solana_rpc.RpcChain`, solana-py's
``AsyncClient`` over the aiohttp transport) against the in-process localnet.

Every call goes over real HTTP to the real JSON-RPC server; faults come from the
localnet's own switches. What matters here is that the transport swap keeps the
client's behaviour: typed results, Solana's error shapes mapped to the engine's error
tree, and transport failures as ``RpcUnavailable`` (retriable), never a hidden resend.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
from solders.keypair import Keypair

from pipeline.errors import InsufficientFunds, RpcUnavailable, TransactionFailed
from pipeline.rpc_transport import AiohttpTransport
from pipeline.solana_rpc import RpcChain
from tests.helpers import free_port, wait_until
from tests.integration.test_localnet_faults import Net, net  # noqa: F401 (the fixture)


async def test_send_status_balances_over_the_wire(net: Net) -> None:  # noqa: F811
    chain = RpcChain(net.rpc_url, timeout_s=5)
    assert isinstance(chain.client._provider.session._transport, AiohttpTransport)
    try:
        payer, to = net.funded(), Keypair().pubkey()
        tx = net.transfer_tx(payer, to, 1_234_567)
        sig = await chain.send(tx)
        assert sig == str(tx.signatures[0])

        async def confirmed() -> bool:
            [st] = await chain.statuses([sig])
            return st is not None and st[2] >= 1

        await wait_until(confirmed, 5, "the transfer to confirm")
        [st] = await chain.statuses([sig])
        assert st is not None and st[1] is None  # no error
        assert await chain.block_height() >= st[0] - 1
        bal = await chain.balances(sig)
        assert bal.fee_payer == str(payer.pubkey())
        i = bal.account_keys.index(str(to))
        assert bal.post_lamports[i] - bal.pre_lamports[i] == 1_234_567
        assert bal.pre_lamports[0] - bal.post_lamports[0] == 1_234_567 + bal.fee
        # The same bytes again: the cluster says AlreadyProcessed, the edge follows the sig.
        assert await chain.send(tx) == sig
        await chain.resend(bytes(tx))  # a rebroadcast of a landed tx is harmless
        unknown = str(Keypair().sign_message(b"never sent"))
        assert await chain.statuses([unknown, sig]) == [None, st]
    finally:
        await chain.close()


async def test_preflight_errors_map_to_the_error_tree(net: Net) -> None:  # noqa: F811
    chain = RpcChain(net.rpc_url, timeout_s=5)
    try:
        broke = Keypair()  # unfunded: cannot pay the fee
        with pytest.raises((InsufficientFunds, TransactionFailed)) as info:
            await chain.send(net.transfer_tx(broke, Keypair().pubkey(), 1))
        assert not info.value.retriable
    finally:
        await chain.close()


async def test_http_errors_and_timeouts_are_rpc_unavailable(net: Net) -> None:  # noqa: F811
    chain = RpcChain(net.rpc_url, timeout_s=0.5)
    try:
        await net.faults("rpc", {"errors": [
            {"kind": "http503", "methods": ["getBlockHeight"], "next": 1},
            {"kind": "timeout", "methods": ["getSignatureStatuses"], "next": 1}]})
        with pytest.raises(RpcUnavailable, match="getBlockHeight"):
            await chain.block_height()
        assert await chain.block_height() >= 0
        sig = str(Keypair().sign_message(b"x"))
        with pytest.raises(RpcUnavailable, match="getSignatureStatuses") as info:
            await chain.statuses([sig])
        assert info.value.retriable
        assert await chain.statuses([sig]) == [None]
        counters = await net.counters("rpc")
        assert counters["http503"] == 1 and counters["timeout"] == 1
    finally:
        await chain.close()


async def test_send_timeout_is_never_resent_by_the_transport(net: Net) -> None:  # noqa: F811
    """A lost answer to sendTransaction surfaces as RpcUnavailable after exactly one send:
    whether to send again is the journal's decision, not the HTTP layer's."""
    chain = RpcChain(net.rpc_url, timeout_s=0.5)
    try:
        payer, to = net.funded(), Keypair().pubkey()
        tx = net.transfer_tx(payer, to, 1_000_000)
        await net.faults("rpc", {"errors": [{"kind": "timeout", "methods": ["sendTransaction"],
                                             "next": 1, "afterExecute": True}]})
        with pytest.raises(RpcUnavailable, match="sendTransaction"):
            await chain.send(tx)
        assert (await net.counters("rpc"))["timeout"] == 1
        assert net.chain.transaction(tx.signatures[0]) is not None  # it did land, once
        assert net.chain.get_balance(to) == 1_000_000
    finally:
        await chain.close()


async def test_connection_refused_is_rpc_unavailable() -> None:
    port = free_port()
    with socket.socket() as s:  # make sure nothing listens there
        assert s.connect_ex(("127.0.0.1", port)) != 0
    chain = RpcChain(f"http://127.0.0.1:{port}", timeout_s=2)
    try:
        with pytest.raises(RpcUnavailable, match="getBlockHeight"):
            await chain.block_height()
    finally:
        await chain.close()


async def test_many_concurrent_requests_share_the_session(net: Net) -> None:  # noqa: F811
    chain = RpcChain(net.rpc_url, timeout_s=5)
    try:
        heights = await asyncio.gather(*(chain.block_height() for _ in range(200)))
        assert min(heights) >= 0
    finally:
        await chain.close()
