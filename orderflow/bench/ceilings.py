"""Ceilings measured after the load: the chain, the venue+chain flow, the broker."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
import uuid
from typing import Any

from orderflow.bench.http import RpcCallError, faucet, post_json, rpc_batch, rpc_call
from orderflow.bench.specs import LAMPORTS_PER_SOL, SOL_ORDER, USDC_ORDER
from orderflow.bench.stats import steady_rate, summarize
from pipeline.tokens import SOL, USDC

log = logging.getLogger("orderflow.bench")


PRESIGN_PER_S = 20_000
PRESIGN_MAX = 250_000


async def chain_ceiling(rpc: str, venue: str, seconds: float, senders: int,
                        batch: int = 1) -> dict[str, Any]:
    """Signed SPL TransferChecked transactions straight to the JSON-RPC with skipPreflight.

    Transactions are signed ahead in batches (a fresh blockhash per batch), so the senders
    spend the bench's CPU on sending only: on a small machine the client shares the cores
    with the localnet, and signing inline made the client the limit.

    Long on purpose: one timed measurement whose sender and poller closures share its
    counters and deadline; split, that state would only move into a class.
    """
    import aiohttp
    from solders.hash import Hash
    from solders.keypair import Keypair
    from solders.message import Message
    from solders.pubkey import Pubkey
    from solders.transaction import Transaction
    from spl.token.constants import TOKEN_PROGRAM_ID
    from spl.token.instructions import (
        create_idempotent_associated_token_account,
        get_associated_token_address,
        transfer_checked,
    )
    from spl.token.models import TransferCheckedParams

    payer, dest_owner = Keypair(), Keypair()
    mint = Pubkey.from_string(USDC.mint)
    src = get_associated_token_address(payer.pubkey(), mint)
    dest = get_associated_token_address(dest_owner.pubkey(), mint)
    send_cfg = {"encoding": "base64", "skipPreflight": True, "maxRetries": 0}
    batch_size = 2000
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=senders + 8)) as s:
        await faucet(s, venue, str(payer.pubkey()))

        async def blockhash() -> Hash:
            got = await rpc_call(s, rpc, "getLatestBlockhash", [{"commitment": "processed"}])
            return Hash.from_string(got["value"]["blockhash"])

        def signed(ixs: list[Any], recent: Hash) -> str:
            msg = Message.new_with_blockhash(ixs, payer.pubkey(), recent)
            return base64.b64encode(bytes(Transaction([payer], msg, recent))).decode()

        setup = signed([create_idempotent_associated_token_account(
            payer.pubkey(), dest_owner.pubkey(), mint)], await blockhash())
        await rpc_call(s, rpc, "sendTransaction", [setup, {"encoding": "base64"}])
        amounts = iter(range(1, 10**12))

        async def sign_batch() -> list[str]:
            recent = await blockhash()
            return [signed([transfer_checked(TransferCheckedParams(
                program_id=TOKEN_PROGRAM_ID, source=src, mint=mint, dest=dest,
                owner=payer.pubkey(), amount=next(amounts), decimals=6))], recent)
                for _ in range(batch_size)]

        # More than one Python client can send in the window (measured: ~5k/s one per
        # request, ~15k/s batched), signed before it starts: signing inline made the
        # client, not the localnet, the limit.
        ready: list[str] = []
        while len(ready) < min(PRESIGN_MAX, seconds * (PRESIGN_PER_S if batch > 1 else 8000)):
            ready += await sign_batch()
        presigned = len(ready)
        sent: dict[str, tuple[float, float]] = {}
        confirmed: dict[str, float] = {}
        errors: list[str] = []
        t_start = time.time()
        deadline = t_start + seconds
        sending = True

        async def sender() -> None:
            while time.time() < deadline and ready:
                txs = [ready.pop() for _ in range(min(batch, len(ready)))]
                t0 = time.time()
                try:
                    if batch == 1:
                        sigs = [await rpc_call(s, rpc, "sendTransaction", [txs[0], send_cfg])]
                    else:
                        sigs = await rpc_batch(s, rpc, [("sendTransaction", [tx, send_cfg])
                                                        for tx in txs])
                except (RpcCallError, aiohttp.ClientError) as exc:
                    errors.append(repr(exc)[:200])
                    continue
                t1 = time.time()
                for sig in sigs:
                    if isinstance(sig, str):
                        sent[sig] = (t0, t1)
                    else:
                        errors.append(repr(sig)[:200])

        async def poller() -> None:
            while sending or len(confirmed) < len(sent):
                todo = [sig for sig in sent if sig not in confirmed]
                for i in range(0, len(todo), 256):
                    batch = todo[i:i + 256]
                    res = await rpc_call(s, rpc, "getSignatureStatuses", [batch])
                    now = time.time()
                    for sig, st in zip(batch, res["value"], strict=True):
                        if st is not None and st.get("confirmationStatus") in (
                                "confirmed", "finalized") and st.get("err") is None:
                            confirmed[sig] = now
                if not sending and time.time() > deadline + 30:
                    break
                await asyncio.sleep(0.1)

        polling = asyncio.create_task(poller())
        await asyncio.gather(*(sender() for _ in range(senders)))
        t_sent = max((b for _, b in sent.values()), default=time.time())
        sending = False
        await polling
    window = t_sent - t_start
    return {
        "what": "SPL TransferChecked, signed ahead, sendTransaction skipPreflight, "
                f"{senders} concurrent senders, {batch} per request, confirmed via "
                "getSignatureStatuses",
        "seconds": round(window, 2),
        "presigned": presigned,
        "ran_out": len(sent) + len(errors) >= presigned,
        "sent": len(sent),
        "send_errors": len(errors),
        "confirmed": len(confirmed),
        "tx_per_s": round(len(confirmed) / window, 1) if window > 0 else None,
        "send_latency_ms": summarize((b - a) * 1000 for a, b in sent.values()),
        "send_to_confirmed_seen_ms": summarize(
            (confirmed[sig] - sent[sig][0]) * 1000 for sig in confirmed),
    }


async def flow_ceiling(rpc: str, venue: str, seconds: float, concurrency: int,
                       slippage_bps: int) -> dict[str, Any]:
    """The engine's external calls per order with no engine: quotes, swap, send, confirm,
    getTransaction; concurrency ``concurrency``, no Kafka, no database.

    Long on purpose, like :func:`chain_ceiling`: one timed measurement whose lanes and
    poller share its futures, counters and deadline.
    """
    import aiohttp
    import orjson
    from solders.keypair import Keypair

    from pipeline.solana_rpc import sign_as
    from pipeline.venues import DEX_LABELS

    wallet = Keypair()
    owner = str(wallet.pubkey())
    waiting: dict[str, asyncio.Future[float]] = {}
    done: list[tuple[float, float]] = []
    errors: dict[str, int] = {}
    send_cfg = {"encoding": "base64", "skipPreflight": False,
                "preflightCommitment": "processed", "maxRetries": 0}
    get_cfg = {"encoding": "base64", "commitment": "confirmed",
               "maxSupportedTransactionVersion": 0}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512)) as s:
        await faucet(s, venue, owner)
        # 100 SOL from the faucet lasts ~20k orders; add 0.01 SOL per order at 500/s
        await faucet(s, venue, owner, SOL.mint, int(seconds * 5 * LAMPORTS_PER_SOL) + 1)
        t_start = time.time()
        deadline = t_start + seconds
        running = True

        async def poller() -> None:
            while running or waiting:
                sigs = [k for k, f in waiting.items() if not f.done()]
                for i in range(0, len(sigs), 256):
                    batch = sigs[i:i + 256]
                    try:
                        res = await rpc_call(s, rpc, "getSignatureStatuses", [batch])
                    except (RpcCallError, aiohttp.ClientError):
                        continue
                    now = time.time()
                    for sig, st in zip(batch, res["value"], strict=True):
                        if st is not None and (st.get("err") is not None or st.get(
                                "confirmationStatus") in ("confirmed", "finalized")):
                            fut = waiting.pop(sig)
                            if not fut.done():
                                fut.set_result(now)
                await asyncio.sleep(0.05)

        async def one(i: int) -> None:
            tin, tout, amount = ((SOL.mint, USDC.mint, SOL_ORDER + i) if i % 2 == 0
                                 else (USDC.mint, SOL.mint, USDC_ORDER + i))
            t0 = time.time()
            quotes = []
            for label in DEX_LABELS.values():
                params = {"inputMint": tin, "outputMint": tout, "amount": str(amount),
                          "slippageBps": str(slippage_bps), "swapMode": "ExactIn",
                          "dexes": label, "onlyDirectRoutes": "true"}
                quotes.append(s.get(f"{venue}/quote", params=params))
            bodies = []
            for resp in await asyncio.gather(*(q for q in quotes)):
                async with resp:
                    if resp.status == 200:
                        bodies.append(orjson.loads(await resp.read()))
            if not bodies:
                raise RpcCallError("no quote")
            best = max(bodies, key=lambda b: int(b["outAmount"]))
            swap = await post_json(s, f"{venue}/swap", {
                "quoteResponse": best, "userPublicKey": owner, "wrapAndUnwrapSol": True})
            tx = sign_as(base64.b64decode(swap["swapTransaction"]), wallet)
            sig = str(tx.signatures[0])
            fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
            waiting[sig] = fut
            try:
                await rpc_call(s, rpc, "sendTransaction",
                               [base64.b64encode(bytes(tx)).decode(), send_cfg])
            except BaseException:
                waiting.pop(sig, None)
                raise
            await asyncio.wait_for(fut, 60)
            await rpc_call(s, rpc, "getTransaction", [sig, get_cfg])
            done.append((t0, time.time()))

        async def lane(k: int) -> None:
            i = k
            while time.time() < deadline:
                try:
                    await one(i)
                except Exception as exc:
                    name = type(exc).__name__
                    errors[name] = errors.get(name, 0) + 1
                i += concurrency

        polling = asyncio.create_task(poller())
        await asyncio.gather(*(lane(k) for k in range(concurrency)))
        running = False
        await polling
    ends = sorted(b for _, b in done)
    window = (ends[-1] - t_start) if ends else 0.0
    return {
        "what": "per order: 2 quotes, /swap, sign, sendTransaction with preflight, batched "
                f"getSignatureStatuses (50 ms), getTransaction; {concurrency} at once; "
                "no Kafka, no database",
        "seconds": round(window, 2),
        "completed": len(done),
        "errors": errors,
        "orders_per_s": round(len(done) / window, 1) if window > 0 else None,
        "sustained_per_s": round(r, 1) if (r := steady_rate(ends)) else None,
        "latency_ms": summarize((b - a) * 1000 for a, b in done),
    }


async def broker_ceiling(bootstrap: str, partitions: int, messages: int, size: int
                         ) -> dict[str, Any]:
    """aiokafka producer -> consumer on a scratch topic, messages of an order's size."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    from pipeline.topic_admin import create_topics
    from pipeline.topics import TopicSpec

    topic = f"orderflow-bench-scratch-{uuid.uuid4().hex[:8]}"
    await create_topics(bootstrap, [TopicSpec(topic, partitions, retention_ms=600_000)])
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    value = b"x" * size
    received = 0
    t_last = 0.0
    try:
        await consumer.start()
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        await producer.start()

        async def consume() -> None:
            nonlocal received, t_last
            while received < messages:
                batches = await consumer.getmany(timeout_ms=200, max_records=50_000)
                n = sum(len(r) for r in batches.values())
                if n:
                    received += n
                    t_last = time.time()

        consuming = asyncio.create_task(consume())
        t0 = time.time()
        futs = []
        for i in range(messages):
            futs.append(await producer.send(topic, value, key=str(uuid.UUID(int=i)).encode()))
            if len(futs) >= 5000:
                await asyncio.gather(*futs)
                futs = []
        await asyncio.gather(*futs)
        t_produced = time.time()
        try:
            await asyncio.wait_for(consuming, 60)
        except TimeoutError:
            log.warning("broker ceiling: consumed %d of %d in time", received, messages)
    finally:
        await producer.stop()
        await consumer.stop()
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        with contextlib.suppress(Exception):
            await admin.start()
            await admin.delete_topics([topic])
        with contextlib.suppress(Exception):
            await admin.close()
    span = t_last - t0
    return {
        "what": f"aiokafka producer (acks=all, linger 5 ms) -> consumer (no group), "
                f"{partitions} partitions, {size}-byte messages, one process",
        "messages": messages,
        "received": received,
        "produce_per_s": round(messages / (t_produced - t0), 1),
        "msgs_per_s": round(received / span, 1) if span > 0 else None,
    }
