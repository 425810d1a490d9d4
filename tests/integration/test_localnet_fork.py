"""``orderflow localnet --fork-url``: a second localnet forks the first (both real processes).
The fork fetches accounts on first access -- one created on the origin *after* the fork
started included --, runs an upgradeable program deployed only on the origin (fetched with
its ProgramData), executes a transfer of an origin wallet's SOL, and keeps what it fetched:
the origin does not see the fork's transactions, and the fork's state survives a restart.
And the engine trades on a fork: an order runs through a worker to ``confirmed`` there."""

from __future__ import annotations

import uuid
from pathlib import Path

from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair

from pipeline.tokens import SOL, USDC
from pipeline.topic_admin import create_topics
from pipeline.topics import topic_specs
from pipeline.wire import ExecuteOrder, now_ms
from sinks.migrate import migrate
from tests.cluster import Cluster, reconcile
from tests.integration.test_localnet_preload import memo_elf
from tests.localnet_proc import LocalnetProcess, signed, transfer_tx


async def test_fork_fetches_lazily_and_executes(tmp_path: Path) -> None:
    alice, dave, erin = Keypair(), Keypair(), Keypair()
    program = Keypair().pubkey()
    so = tmp_path / "memo.so"
    so.write_bytes(memo_elf())
    origin = LocalnetProcess(tmp_path / "origin", "--ephemeral", "--fund", str(alice.pubkey()),
                             "--bpf-program", str(program), str(so))
    await origin.start()
    fork = LocalnetProcess(tmp_path / "fork", "--fork-url", origin.url)
    try:
        await fork.start()
        # created on the origin after the fork started: found on first access
        sig = await origin.send(transfer_tx(alice, dave.pubkey(), 3_000_000,
                                            await origin.blockhash()))
        await origin.confirmed(sig)
        assert await fork.balance(dave.pubkey()) == 3_000_000
        alice_on_origin = await origin.balance(alice.pubkey())
        assert await fork.balance(alice.pubkey()) == alice_on_origin

        # a transfer of the origin's SOL, executed on the fork only
        sig = await fork.send(transfer_tx(alice, erin.pubkey(), 5_000_000, await fork.blockhash()))
        await fork.confirmed(sig)
        assert await fork.balance(erin.pubkey()) == 5_000_000
        assert await origin.balance(erin.pubkey()) == 0
        assert (await origin.rpc("getSignatureStatuses", [sig]))["value"] == [None]
        assert await origin.balance(alice.pubkey()) == alice_on_origin

        # the origin's upgradeable program, with its ProgramData, runs on the fork
        ix = Instruction(program, b"forked", [AccountMeta(alice.pubkey(), True, False)])
        sig = await fork.send(signed([ix], alice, await fork.blockhash()))
        await fork.confirmed(sig)
        tx = await fork.rpc("getTransaction", sig, {"commitment": "confirmed"})
        assert "Program log: Memo (len 6)" in tx["meta"]["logMessages"]

        # fetched state is the fork's own: kept across a restart, not fetched again
        fork.stop()
        await fork.start()
        assert await fork.balance(erin.pubkey()) == 5_000_000
        assert await fork.balance(alice.pubkey()) < alice_on_origin  # the fork's, not origin's
    finally:
        fork.stop()
        origin.stop()


async def test_an_order_executes_on_the_fork(own_broker: str, own_database_url: str,
                                             tmp_path: Path) -> None:
    """The engine trades on a fork: the wallet is funded on the origin only, the fork
    (started by the stack as ``up`` starts it, with ORDERFLOW_LOCALNET_FORK_URL) fetches it on
    first access (its token accounts too: getTokenAccountsByOwner asks the origin for the
    owner's list), a worker runs a market order there to ``confirmed``, the wallet
    reconciles on the fork, and the origin never sees the swap."""
    await migrate(own_database_url)
    cluster = Cluster(own_broker, own_database_url, tmp_path / "fork")
    origin = LocalnetProcess(tmp_path / "origin", "--ephemeral", "--fund",
                             str(cluster.wallet.pubkey()))
    await origin.start()
    cluster.extra_env["ORDERFLOW_LOCALNET_FORK_URL"] = origin.url
    try:
        await create_topics(own_broker, topic_specs(8, 8))
        await cluster.stack.start_localnet(fund=[])  # no faucet on the fork: the origin's SOL
        cluster.localnet = cluster.stack.localnet
        sol_on_origin = await origin.balance(cluster.wallet.pubkey())
        usdc = await origin.rpc("getTokenAccountsByOwner", str(cluster.wallet.pubkey()),
                                {"mint": USDC.mint}, {"encoding": "jsonParsed"})
        usdc_on_origin = sum(int(a["account"]["data"]["parsed"]["info"]["tokenAmount"]["amount"])
                             for a in usdc["value"])
        before = await cluster.balances()  # the wallet's token accounts: a bounded scan
        assert (before[SOL.mint], before[USDC.mint]) == (sol_on_origin, usdc_on_origin)
        assert sol_on_origin > 0 and usdc_on_origin > 0
        cluster.start_worker("w1")
        order = ExecuteOrder(f"fork-{uuid.uuid4().hex[:8]}", SOL.mint, USDC.mint, 100_000_000,
                             300, now_ms(), "kafka")
        await cluster.produce([order])
        states = await cluster.wait_terminal([order.order_id], 90)
        assert states == {order.order_id: "confirmed"}, cluster.logs()
        ledger = await cluster.ledger([order.order_id])
        sig = ledger["orders"][order.order_id]["signature"]
        fees = await cluster.landed_swaps([b for b, _ in ledger["broadcasts"][order.order_id]])
        assert list(fees) == [sig]
        reconcile(before, await cluster.balances(), ledger, fees)
        assert ledger["orders"][order.order_id]["amountOut"] > 0
        assert (await origin.rpc("getSignatureStatuses", [sig]))["value"] == [None]
        assert await origin.balance(cluster.wallet.pubkey()) == sol_on_origin
    finally:
        cluster.stop()
        origin.stop()
