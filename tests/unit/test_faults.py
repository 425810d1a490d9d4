"""Fault switch configuration and decisions (:mod:`localnet.faults`), without HTTP.

Parsing and validation, deterministic ``next``/``after`` semantics, seeded ``rate``
decisions, merge/replace/reset, and the send rules (drop, land late) on a real
in-process :class:`Chain`.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from solders.keypair import Keypair
from solders.message import Message
from solders.system_program import TransferParams, transfer
from solders.transaction import VersionedTransaction

from localnet.chain import MAX_PROCESSING_AGE, Chain
from localnet.faults import (
    RPC,
    SOLANA_RPC_METHODS,
    VENUE,
    Delay,
    FaultConfig,
    FaultConfigError,
    FaultController,
    RpcFaults,
    RuleState,
    Trigger,
    VenueFaults,
    parse_config,
    parse_env,
    rpc_error_of,
)
from localnet.rpc import _Rpc
from tests.helpers import wait_until


def rpc(doc: Any) -> FaultConfig:
    return parse_config(doc, RPC)


def bad(doc: Any, target: Any = RPC) -> FaultConfigError:
    with pytest.raises(FaultConfigError) as info:
        parse_config(doc, target)
    return info.value


# -- parsing -----------------------------------------------------------------------------------


def test_off_by_default() -> None:
    assert not FaultConfig().active
    assert parse_env(None) == (FaultConfig(), FaultConfig())
    assert parse_env("  ") == (FaultConfig(), FaultConfig())
    assert not rpc({}).active
    assert not rpc({"latency": {"ms": 0}}).active  # zero latency is no latency


def test_full_rpc_section_round_trips() -> None:
    doc = {
        "seed": 7,
        "latency": {"ms": 20, "jitterMs": 10,
                    "methods": {"sendTransaction": {"ms": 300, "jitterMs": 0}}},
        "errors": [
            {"kind": "http429", "methods": ["getSignatureStatuses"], "next": 2,
             "retryAfterS": 3},
            {"kind": "http503", "rate": 0.05},
            {"kind": "nodeBehind", "methods": ["sendTransaction"], "next": 1, "slotsBehind": 9},
            {"kind": "internalError", "rate": 0.5, "after": 10, "afterExecute": True},
            {"kind": "timeout", "next": 1, "holdMs": 2500},
        ],
        "drop": {"next": 1, "sticky": True},
        "landLate": {"rate": 0.2, "slots": 30},
    }
    config = rpc(doc)
    assert config.active and config.seed == 7
    assert config.latency is not None
    assert config.latency.delay_for("sendTransaction") == Delay(300, 0)
    assert config.latency.delay_for("getSlot") == Delay(20, 10)
    assert [r.kind for r in config.errors] == ["http429", "http503", "nodeBehind",
                                               "internalError", "timeout"]
    assert config.errors[0].names == frozenset({"getSignatureStatuses"})
    assert config.errors[0].retry_after_s == 3
    assert config.errors[1].names is None and config.errors[1].trigger == Trigger(rate=0.05)
    assert config.errors[3].trigger == Trigger(rate=0.5, after=10)
    assert config.errors[3].after_execute
    assert config.errors[4].hold_ms == 2500 and config.errors[4].http_level
    assert not config.errors[2].http_level
    assert config.drop is not None and config.drop.sticky
    assert config.land_late is not None and config.land_late.slots == 30
    normalized = config.to_json(RPC)
    assert rpc(normalized) == config
    assert rpc(orjson.loads(orjson.dumps(normalized))).to_json(RPC) == normalized
    assert normalized["errors"][4] == {"kind": "timeout", "methods": None, "rate": None,
                                       "next": 1, "after": 0, "afterExecute": False,
                                       "holdMs": 2500}


def test_venue_section() -> None:
    config = parse_config({"errors": [
        {"kind": "timeout", "endpoints": ["swap"], "next": 1},
        {"kind": "http500", "endpoints": ["quote", "swap"], "rate": 1},
    ], "latency": {"ms": 5, "endpoints": {"quote": {"ms": 50}}}}, VENUE)
    assert config.errors[0].hold_ms is None  # never answer
    assert config.errors[1].names == frozenset({"quote", "swap"})
    assert parse_config(config.to_json(VENUE), VENUE) == config
    assert "drop" not in config.to_json(VENUE)


@pytest.mark.parametrize(("doc", "path"), [
    ({"bogus": 1}, "bogus"),
    ({"seed": "7"}, "seed"),
    ({"errors": {}}, "errors"),
    ({"errors": [{"kind": "http418", "next": 1}]}, "errors[0].kind"),
    ({"errors": [{"kind": "http429"}]}, "errors[0]"),  # neither rate nor next
    ({"errors": [{"kind": "http429", "rate": 0.1, "next": 1}]}, "errors[0]"),  # both
    ({"errors": [{"kind": "http429", "rate": 1.5}]}, "errors[0].rate"),
    ({"errors": [{"kind": "http429", "rate": True}]}, "errors[0].rate"),
    ({"errors": [{"kind": "http429", "next": -1}]}, "errors[0].next"),
    ({"errors": [{"kind": "http429", "next": 1.0}]}, "errors[0].next"),
    ({"errors": [{"kind": "http429", "next": 1, "after": -1}]}, "errors[0].after"),
    ({"errors": [{"kind": "http503", "next": 1, "retryAfterS": 1}]}, "errors[0].retryAfterS"),
    ({"errors": [{"kind": "http429", "next": 1, "holdMs": 1}]}, "errors[0].holdMs"),
    ({"errors": [{"kind": "timeout", "next": 1, "holdMs": 0}]}, "errors[0].holdMs"),
    ({"errors": [{"kind": "http429", "next": 1, "methods": []}]}, "errors[0].methods"),
    ({"errors": [{"kind": "http429", "next": 1, "methods": ["getBalanse"]}]},
     "errors[0].methods[0]"),
    ({"errors": [{"kind": "http429", "next": 1, "endpoints": ["quote"]}]},
     "errors[0].endpoints"),
    ({"errors": [{"kind": "http429", "next": 1, "afterExecute": 1}]}, "errors[0].afterExecute"),
    ({"latency": {"ms": -1}}, "latency.ms"),
    ({"latency": {"ms": 1, "methods": {"nope": {"ms": 1}}}}, "latency.methods.nope"),
    ({"latency": {"ms": 1, "methods": {"getSlot": {"delay": 1}}}},
     "latency.methods.getSlot.delay"),
    ({"drop": {"next": 1, "slots": 3}}, "drop.slots"),
    ({"landLate": {"next": 1}}, "landLate.slots"),
    ({"landLate": {"next": 1, "slots": 0}}, "landLate.slots"),
    ({"landLate": {"next": 1, "slots": 10_001}}, "landLate.slots"),
])
def test_rpc_validation(doc: Any, path: str) -> None:
    assert bad(doc).path == path


@pytest.mark.parametrize(("doc", "path"), [
    ({"drop": {"next": 1}}, "drop"),
    ({"errors": [{"kind": "nodeBehind", "next": 1}]}, "errors[0].kind"),
    ({"errors": [{"kind": "http503", "next": 1, "endpoints": ["faucet"]}]},
     "errors[0].endpoints[0]"),
    ({"errors": [{"kind": "http503", "next": 1, "methods": ["getSlot"]}]}, "errors[0].methods"),
])
def test_venue_validation(doc: Any, path: str) -> None:
    assert bad(doc, VENUE).path == path


def test_parse_env_inline_file_and_errors(tmp_path: Path) -> None:
    text = '{"rpc": {"drop": {"next": 1}}, "venue": {"errors": [{"kind": "http503", "next": 2}]}}'
    rpc_config, venue_config = parse_env(text)
    assert rpc_config.drop is not None and venue_config.errors[0].trigger.next == 2
    file = tmp_path / "faults.json"
    file.write_text(text)
    assert parse_env(f"@{file}") == (rpc_config, venue_config)
    with pytest.raises(FaultConfigError, match="cannot read"):
        parse_env(f"@{tmp_path / 'missing.json'}")
    with pytest.raises(FaultConfigError, match="not valid JSON"):
        parse_env("{rpc:")
    with pytest.raises(FaultConfigError) as info:
        parse_env('{"rpcs": {}}')
    assert info.value.path == "rpcs"
    with pytest.raises(FaultConfigError) as info:
        parse_env('{"venue": {"errors": [{"kind": "http503", "rate": 2}]}}')
    assert info.value.path == "venue.errors[0].rate"


def test_rule_methods_cover_the_localnet_rpc() -> None:
    assert set(_Rpc(Chain(), RpcFaults(Chain())).methods) <= SOLANA_RPC_METHODS


def test_json_rpc_errors_are_agaves() -> None:
    behind, internal = rpc({"errors": [{"kind": "nodeBehind", "next": 1, "slotsBehind": 5},
                                       {"kind": "internalError", "next": 1}]}).errors
    assert rpc_error_of(behind) == (-32005, "Node is behind by 5 slots", {"numSlotsBehind": 5})
    assert rpc_error_of(internal) == (-32603, "Internal error", None)


# -- triggers ----------------------------------------------------------------------------------


def test_next_n_is_deterministic_and_after_skips() -> None:
    rng = random.Random(0)
    state = RuleState.of(Trigger(next=2, after=3))
    fired = [state.consult(rng) for _ in range(8)]
    assert fired == [False, False, False, True, True, False, False, False]
    assert state.to_json() == {"fired": 2, "remaining": 0, "afterLeft": 0}
    assert rng.random() == random.Random(0).random()  # next-N never draws from the RNG


def test_rate_uses_the_seeded_rng() -> None:
    rng = random.Random(42)
    state = RuleState.of(Trigger(rate=0.3))
    fired = [state.consult(rng) for _ in range(1000)]
    reference = random.Random(42)
    assert fired == [reference.random() < 0.3 for _ in range(1000)]
    assert 250 < sum(fired) < 350
    assert state.fired == sum(fired) and state.remaining is None
    assert not any(RuleState.of(Trigger(rate=0.0)).consult(rng) for _ in range(100))
    assert all(RuleState.of(Trigger(rate=1.0)).consult(rng) for _ in range(100))


def test_controller_rates_replay_with_the_same_seed() -> None:
    def run() -> list[bool]:
        c = FaultController(RPC, rpc({"seed": 3, "errors": [{"kind": "http503", "rate": 0.5}]}))
        return [c.decide("getSlot") is not None for _ in range(200)]

    assert run() == run()
    other = FaultController(RPC, rpc({"seed": 4, "errors": [{"kind": "http503", "rate": 0.5}]}))
    assert run() != [other.decide("getSlot") is not None for _ in range(200)]


def test_first_rule_that_fires_wins_and_later_rules_are_not_consulted() -> None:
    c = FaultController(RPC, rpc({"errors": [
        {"kind": "http429", "methods": ["getBalance"], "next": 1},
        {"kind": "http503", "next": 2},
    ]}))
    assert c.decide("getBalance").kind == "http429"  # type: ignore[union-attr]
    assert c.decide("getSlot").kind == "http503"  # type: ignore[union-attr]
    assert c.decide("getBalance").kind == "http503"  # type: ignore[union-attr]
    assert c.decide("getBalance") is None
    assert c.counters["http429"] == 1 and c.counters["http503"] == 2
    assert c.snapshot()["state"]["errors"] == [
        {"fired": 1, "remaining": 0, "afterLeft": 0},
        {"fired": 2, "remaining": 0, "afterLeft": 0},
    ]


def test_plan_latency_jitter_and_batches() -> None:
    c = FaultController(RPC, rpc({
        "seed": 11,
        "latency": {"ms": 10, "jitterMs": 40, "methods": {"getSlot": {"ms": 100}}},
        "errors": [{"kind": "nodeBehind", "methods": ["getBalance"], "next": 1},
                   {"kind": "http503", "methods": ["getHealth"], "next": 1}],
    }))
    reference = random.Random(11)
    plan = c.plan(["getBalance"])
    assert plan.delay_s == pytest.approx((10 + reference.random() * 40) / 1000)
    assert plan.http is None and plan.calls[0] is not None and plan.calls[0].kind == "nodeBehind"
    plan = c.plan(["getSlot", "getHealth", "getVersion"])  # a batch: the largest delay
    assert plan.delay_s >= 0.1
    assert plan.http is not None and plan.http.kind == "http503"
    assert plan.calls == (None, None, None)
    assert c.counters["latency"] == 2
    assert c.plan([]).empty


def test_merge_replace_reset() -> None:
    c = FaultController(RPC, rpc({"seed": 1, "errors": [{"kind": "http503", "next": 3}]}))
    c.decide("getSlot")
    doc = c.merge_config({"drop": {"next": 1}})  # errors keep their state
    assert doc["state"]["errors"][0]["remaining"] == 2
    assert doc["config"]["drop"]["next"] == 1 and doc["config"]["seed"] == 1
    doc = c.merge_config({"errors": [{"kind": "http503", "next": 3}]})  # a new rule list
    assert doc["state"]["errors"][0]["remaining"] == 3
    draws = [c.rng.random() for _ in range(3)]
    c.merge_config({"seed": 1})
    assert [c.rng.random() for _ in range(3)] == draws  # re-seeded
    doc = c.replace_config({"latency": {"ms": 5}})
    assert doc["config"]["errors"] == [] and doc["config"]["drop"] is None
    assert doc["config"]["seed"] == 1  # a replace without seed keeps the seed
    assert doc["counters"]["http503"] == 1
    with pytest.raises(FaultConfigError):
        c.merge_config({"errors": [{"kind": "nope"}]})
    assert c.config.latency is not None  # a refused change changes nothing
    doc = c.reset()
    assert not c.active and doc["config"]["seed"] == 1
    assert set(doc["counters"].values()) == {0}
    unseeded = FaultController(RPC)
    assert isinstance(unseeded.snapshot()["config"]["seed"], int)  # reported, so replayable


def test_counters_per_server() -> None:
    assert set(FaultController(RPC).counters) == {
        "latency", "timeout", "http429", "http500", "http502", "http503", "http504",
        "nodeBehind", "internalError", "drop", "landLate", "lateLanded", "lateExpired",
        "resendIgnored"}
    assert set(VenueFaults().counters) == {
        "latency", "timeout", "http429", "http500", "http502", "http503", "http504"}


def test_error_responses() -> None:
    c = FaultController(RPC)
    r429, r503, r500 = (c.error_response(rule, 5) for rule in rpc({"errors": [
        {"kind": "http429", "next": 1, "retryAfterS": 4}, {"kind": "http503", "next": 1},
        {"kind": "http500", "next": 1}]}).errors)
    assert (r429.status, r429.headers["Retry-After"]) == (429, "4")
    assert r429.body is not None
    body = orjson.loads(bytes(r429.body))  # type: ignore[arg-type]
    assert body["id"] == 5 and body["error"]["code"] == 429
    assert (r503.status, r503.content_type) == (503, "text/html")
    assert (r500.status, r500.text) == (500, "Internal Server Error")
    venue = VenueFaults()
    (rule,) = parse_config({"errors": [{"kind": "http429", "next": 1}]}, VENUE).errors
    v429 = venue.error_response(rule)
    assert orjson.loads(bytes(v429.body)) == {  # type: ignore[arg-type]
        "code": 429, "message": "Rate limit exceeded"}


async def test_sleep_wakes_on_shutdown() -> None:
    c = VenueFaults()
    assert await c.sleep(0)
    assert await c.sleep(0.01)
    task = asyncio.create_task(c.sleep(60))
    await asyncio.sleep(0)
    c.close()
    assert await asyncio.wait_for(task, 5) is False


# -- send rules on a real chain ----------------------------------------------------------------


def _transfer(chain: Chain, payer: Keypair) -> VersionedTransaction:
    ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=Keypair().pubkey(),
                                 lamports=1_000_000))
    msg = Message.new_with_blockhash([ix], payer.pubkey(), chain.latest_blockhash()[0])
    return VersionedTransaction(msg, [payer])


@pytest.fixture
def chain() -> Chain:
    return Chain(slot_ms=20)


@pytest.fixture
def payer(chain: Chain) -> Keypair:
    kp = Keypair()
    chain.faucet.airdrop(kp.pubkey(), 10**9)
    return kp


def test_drop_next_then_pass(chain: Chain, payer: Keypair) -> None:
    f = RpcFaults(chain, rpc({"drop": {"next": 1}}))
    tx = _transfer(chain, payer)
    assert f.on_send(tx) is False
    assert f.on_send(tx) is True  # not sticky: a rebroadcast is a new send
    chain.send(tx)
    assert f.on_send(tx) is True  # landed: never consulted again
    assert f.counters["drop"] == 1
    f.close()


def test_drop_sticky_until_expiry(chain: Chain, payer: Keypair) -> None:
    f = RpcFaults(chain, rpc({"drop": {"next": 1, "sticky": True}}))
    tx, other = _transfer(chain, payer), _transfer(chain, payer)
    assert [f.on_send(tx), f.on_send(tx), f.on_send(other)] == [False, False, True]
    assert f.counters["drop"] == 2
    assert f.snapshot()["state"]["stickyDropped"] == 1
    chain.advance(MAX_PROCESSING_AGE + 1)
    assert f.snapshot()["state"]["stickyDropped"] == 0
    f.close()


def test_land_late_executes_after_k_slots(chain: Chain, payer: Keypair) -> None:
    f = RpcFaults(chain, rpc({"landLate": {"next": 1, "slots": 5}}))
    tx = _transfer(chain, payer)
    start = chain.slot
    assert f.on_send(tx) is False
    chain.advance(4)
    assert chain.transaction(tx.signatures[0]) is None
    chain.advance(1)
    record = chain.transaction(tx.signatures[0])
    assert record is not None and record.slot == start + 5
    assert (f.counters["landLate"], f.counters["lateLanded"]) == (1, 1)
    assert f.snapshot()["state"]["pendingLate"] == 0
    f.close()


def test_land_late_superseded_by_a_rebroadcast(chain: Chain, payer: Keypair) -> None:
    f = RpcFaults(chain, rpc({"landLate": {"next": 1, "slots": 5}}))
    tx = _transfer(chain, payer)
    assert f.on_send(tx) is False
    assert f.on_send(tx) is True  # not sticky, rule spent: the rebroadcast runs now
    chain.send(tx)
    landed = chain.transaction(tx.signatures[0])
    chain.advance(5)
    assert chain.transaction(tx.signatures[0]) is landed  # executed once only
    assert f.counters["lateLanded"] == 0
    f.close()


def test_land_late_after_expiry_never_lands(chain: Chain, payer: Keypair) -> None:
    f = RpcFaults(chain, rpc({"landLate": {"next": 1, "slots": MAX_PROCESSING_AGE + 1}}))
    tx = _transfer(chain, payer)
    assert f.on_send(tx) is False
    chain.advance(MAX_PROCESSING_AGE + 1)
    assert chain.transaction(tx.signatures[0]) is None
    assert f.counters["lateExpired"] == 1
    f.close()


def test_reset_forgets_sticky_drops_but_late_ones_still_land(chain: Chain, payer: Keypair) -> None:
    f = RpcFaults(chain, rpc({"drop": {"next": 1, "sticky": True}}))
    dropped = _transfer(chain, payer)
    assert f.on_send(dropped) is False
    f.merge_config({"landLate": {"next": 1, "slots": 2}})
    late = _transfer(chain, payer)
    assert f.on_send(late) is False
    f.reset()
    assert f.on_send(dropped) is True
    chain.advance(2)
    assert chain.transaction(late.signatures[0]) is not None
    f.close()


def test_clock_controls(chain: Chain) -> None:
    height = chain.block_height
    blockhash = chain.latest_blockhash()[0]
    chain.advance(MAX_PROCESSING_AGE)
    assert chain.is_blockhash_valid(blockhash)
    chain.advance(1)
    assert not chain.is_blockhash_valid(blockhash)
    assert chain.block_height == height + MAX_PROCESSING_AGE + 1
    chain.set_slot_ms(50)
    assert chain.slot_ms == 50
    with pytest.raises(ValueError):
        chain.set_slot_ms(0)


async def test_clock_switches_slot_time_at_once() -> None:
    chain = Chain(slot_ms=60_000)
    task = asyncio.create_task(chain.run_clock())
    try:
        await asyncio.sleep(0)  # let the clock start its first (one-minute) wait
        chain.set_slot_ms(10)
        await wait_until(lambda: chain.slot >= 3, 5, "three 10 ms slots")
    finally:
        task.cancel()
