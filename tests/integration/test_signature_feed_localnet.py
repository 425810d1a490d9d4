"""The engine's confirmation path (``ConfirmationWatcher`` over ``RpcChain``) with its
``signatureSubscribe`` feed against a real ``orderflow localnet`` process.

The status poll is set to 60 s, so a wait that settles within the test's bounds was woken
by a notification (every wait's first round runs at once, before the transaction is sent).
The localnet is then SIGKILLed and restarted on the same data directory and port: the feed
falls back, reconnects on its own and subscribes again to the signature it was watching.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from solders.keypair import Keypair

from pipeline.signature_feed import WsSignatureFeed, pubsub_url
from pipeline.solana_rpc import ConfirmationWatcher, Landed, RpcChain
from tests.helpers import wait_until
from tests.localnet_proc import LocalnetProcess, transfer_tx

SOL = 10**9
SLOW_POLL_S = 60.0


async def test_notifications_confirm_and_the_feed_survives_a_localnet_restart(
        tmp_path: Path) -> None:
    alice = Keypair()
    proc = LocalnetProcess(tmp_path / "data", "--fund", str(alice.pubkey()))
    await proc.start()
    chain = RpcChain(proc.url, timeout_s=5)
    feed = WsSignatureFeed(pubsub_url(proc.url), commitment="confirmed", max_backoff_s=0.5)
    assert feed.url == f"ws://127.0.0.1:{proc.rpc_port + 1}"
    watcher = ConfirmationWatcher(chain, poll_s=SLOW_POLL_S, live_poll_s=SLOW_POLL_S,
                                  commitment="confirmed", feed=feed)
    watcher.start()
    try:
        await wait_until(lambda: feed.live, 20, "the feed connected")
        tx = transfer_tx(alice, Keypair().pubkey(), SOL, await proc.blockhash())
        waiting = asyncio.ensure_future(watcher.wait(str(tx.signatures[0]), 10**9))
        await wait_until(lambda: watcher.in_flight == 1, 5, "the wait registered")
        sig = await proc.send(tx)
        landed = await asyncio.wait_for(waiting, 15)
        status = (await proc.rpc("getSignatureStatuses", [sig]))["value"][0]
        assert landed == Landed(status["slot"], None)
        assert status["confirmationStatus"] in ("confirmed", "finalized")
        assert feed.notifications == 1

        # Watched across a crash: signed before it, sent after the restart.
        later = transfer_tx(alice, Keypair().pubkey(), SOL, await proc.blockhash())
        proc.kill()
        await wait_until(lambda: not feed.live, 20, "the feed noticed the crash")
        waiting = asyncio.ensure_future(watcher.wait(str(later.signatures[0]), 10**9))
        await proc.start()
        await wait_until(lambda: feed.live and feed.connects == 2, 20, "the feed reconnected")
        sig = await proc.send(later)
        landed = await asyncio.wait_for(waiting, 15)
        status = (await proc.rpc("getSignatureStatuses", [sig]))["value"][0]
        assert landed == Landed(status["slot"], None) and feed.notifications == 2
    finally:
        await watcher.stop()
        await chain.close()
        proc.stop()
