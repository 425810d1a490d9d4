"""The localnet's chain survives SIGKILL: started as a real process, transactions landed and
confirmed, killed with SIGKILL, started again on the same data directory -- every confirmed
transaction is found (getTransaction, getSignatureStatuses, getSignaturesForAddress), the
balances are there, the slot resumes, and a transaction signed before the crash still lands
(its blockhash is the old chain's, still valid). ``--reset`` starts a new genesis on which
nothing of the old chain lands."""

from __future__ import annotations

import base64
from pathlib import Path

from solders.keypair import Keypair

from tests.helpers import wait_until
from tests.localnet_proc import LocalnetProcess, transfer_tx

LAMPORTS = 1_000_000


async def test_sigkill_then_resume_then_reset(tmp_path: Path) -> None:
    alice, bob = Keypair(), Keypair()
    net = LocalnetProcess(tmp_path / "data", "--fund", str(alice.pubkey()))
    await net.start()
    try:
        confirmed = []
        for i in range(6):
            tx = transfer_tx(alice, bob.pubkey(), LAMPORTS + i, await net.blockhash())
            confirmed.append(await net.send(tx))
        for sig in confirmed:
            await net.confirmed(sig)
        # signed for the old chain, not sent before the crash: sent after the restart
        late = transfer_tx(alice, bob.pubkey(), 7 * LAMPORTS, await net.blockhash())
        slot_before = await net.rpc("getSlot", {"commitment": "confirmed"})
        alice_before = await net.balance(alice.pubkey())
        net.kill()

        await net.start()
        # resumes at the last slot that ended (what was confirmed is there), not at genesis
        assert await net.rpc("getSlot", {"commitment": "processed"}) >= slot_before
        statuses = (await net.rpc("getSignatureStatuses", confirmed,
                                  {"searchTransactionHistory": True}))["value"]
        assert all(s is not None and s["err"] is None for s in statuses), statuses
        for sig in confirmed:
            tx = await net.rpc("getTransaction", sig, {"commitment": "confirmed"})
            assert tx is not None and tx["meta"]["err"] is None, sig
        listed = await net.rpc("getSignaturesForAddress", str(bob.pubkey()),
                               {"commitment": "confirmed"})
        assert {e["signature"] for e in listed} == set(confirmed)
        expected = sum(LAMPORTS + i for i in range(6))
        assert await net.balance(bob.pubkey()) == expected
        assert await net.balance(alice.pubkey()) == alice_before + 100 * 10**9  # --fund again

        late_sig = await net.send(late)  # the old chain's blockhash is still valid here
        await net.confirmed(late_sig)
        assert await net.balance(bob.pubkey()) == expected + 7 * LAMPORTS
        # a clean stop keeps even the current slot
        net.stop()
        await net.start()
        assert (await net.rpc("getSignatureStatuses", [late_sig]))["value"][0] is not None

        replay = transfer_tx(alice, bob.pubkey(), 9 * LAMPORTS, await net.blockhash())
        net.stop()
        await net.start("--reset")
        assert (await net.rpc("getSignatureStatuses", [confirmed[0]],
                              {"searchTransactionHistory": True}))["value"] == [None]
        assert await net.balance(bob.pubkey()) == 0
        # skipPreflight: accepted and dropped, as Solana does; a new genesis knows no old
        # blockhash (LiteSVM's own lineage is the same in every process: ours is not)
        await net.call("sendTransaction", base64.b64encode(bytes(replay)).decode(),
                       {"encoding": "base64", "skipPreflight": True})
        refused = await net.call("sendTransaction", base64.b64encode(bytes(replay)).decode(),
                                 {"encoding": "base64"})
        assert "Blockhash not found" in refused["error"]["message"], refused
        slot = await net.rpc("getSlot")

        async def later() -> bool:
            return bool(await net.rpc("getSlot") >= slot + 3)
        await wait_until(later, 10, "three more slots")
        assert (await net.rpc("getSignatureStatuses", [str(replay.signatures[0])]))[
            "value"] == [None]
        assert await net.balance(bob.pubkey()) == 0
    finally:
        net.stop()


async def test_block_history_survives_sigkill(tmp_path: Path) -> None:
    """getBlock/getBlocks/getBlockTime answer for the slots before the crash as they did
    before it (same blockhash, parent, time, signatures), and the first block after the
    restart names the last saved one as its parent."""
    alice = Keypair()
    net = LocalnetProcess(tmp_path / "data", "--fund", str(alice.pubkey()))
    await net.start()
    try:
        sigs = []
        for i in range(3):
            tx = transfer_tx(alice, Keypair().pubkey(), LAMPORTS + i, await net.blockhash())
            sigs.append(await net.send(tx))
        slots = {(await net.confirmed(sig))["slot"] for sig in sigs}
        opts = {"commitment": "confirmed", "transactionDetails": "signatures", "rewards": False}
        before = {slot: await net.rpc("getBlock", slot, opts) for slot in slots}
        assert {s for b in before.values() for s in b["signatures"]} >= set(sigs)
        times = {slot: await net.rpc("getBlockTime", slot) for slot in slots}
        last = await net.rpc("getSlot", {"commitment": "confirmed"})
        net.kill()

        await net.start()
        for slot, block in before.items():
            assert await net.rpc("getBlock", slot, opts) == block, slot
            assert await net.rpc("getBlockTime", slot) == times[slot]
        held = await net.rpc("getBlocks", min(slots), last, {"commitment": "confirmed"})
        assert held == list(range(min(slots), last + 1))
        first = await net.rpc("getFirstAvailableBlock")
        assert first <= min(slots)
        now = await net.rpc("getSlot", {"commitment": "confirmed"})
        after = {s: await net.rpc("getBlock", s, opts) for s in range(last, now + 1)}
        for s in range(last + 1, now + 1):  # one lineage across the restart
            assert after[s]["parentSlot"] == s - 1
            assert after[s]["previousBlockhash"] == after[s - 1]["blockhash"]
    finally:
        net.stop()
