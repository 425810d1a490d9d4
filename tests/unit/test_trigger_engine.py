"""The trigger engine on a journal double: fires through the store's compare-and-set
only, once; keeps an order it could not record; partitions; rebuild; expiry."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from solders.pubkey import Pubkey

from dexmath import cpmm
from pipeline.errors import BrokerUnavailable, InvalidOrder, JournalUnavailable
from pipeline.lifecycle import OrderTriggered
from pipeline.model import LimitTerms, OrderType, SniperTerms, Venue
from pipeline.price_feed import pair_of
from pipeline.sniper import NewPool, Probe
from pipeline.tokens import SOL, USDC, USDT
from pipeline.trigger import TriggerEngine, command_of, partition_of
from pipeline.trigger_curves import CpmmCurve, PairView
from pipeline.wire import ExecuteOrder, decode_execute_order, now_ms

ONE_SOL = 10**9


def limit(order_id: str, min_out: int, *, tin: str = SOL.mint, tout: str = USDC.mint,
          amount: int = ONE_SOL, expires_at_ms: int | None = None) -> ExecuteOrder:
    return ExecuteOrder(order_id, tin, tout, amount, 50, now_ms(), order_type=OrderType.LIMIT,
                        expires_at_ms=expires_at_ms or now_ms() + 3_600_000,
                        limit=LimitTerms(min_out))


def market_at(price_usdc: int) -> PairView:
    """A SOL/USDC CP-Swap pool at ``price_usdc`` USDC per SOL, deep (1e6 SOL)."""
    sol = 10**6 * ONE_SOL
    return PairView.of([CpmmCurve(SOL.mint, USDC.mint, sol, sol * price_usdc // 1000,
                                  cpmm.FeeRates(2_500))], slot=7)


class Store:
    """The journal's rows as the store sees them: status by order id."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[str, dict[str, Any]]] = {}
        self.down = False
        self.refusals: list[tuple[str, str]] = []

    def put(self, cmd: ExecuteOrder, status: str = "open") -> None:
        self.rows[cmd.order_id] = (status, cmd.to_json())

    async def open_orders(self) -> list[dict[str, Any]]:
        return [doc for status, doc in self.rows.values() if status == "open"]

    async def triggered(self) -> list[tuple[dict[str, Any], int]]:
        return [(doc, 1) for status, doc in self.rows.values() if status == "triggered"]

    async def mark_triggered(self, order_id: str) -> tuple[dict[str, Any], int] | None:
        if self.down:
            raise JournalUnavailable(message="connection refused")
        status, doc = self.rows[order_id]
        if status != "open":
            return None
        self.rows[order_id] = ("triggered", doc)
        return doc, 1

    async def command(self, order_id: str) -> dict[str, Any] | None:
        return self.rows[order_id][1]

    async def refuse(self, order_id: str, reason: str) -> None:
        self.refusals.append((order_id, reason))


class Rig:
    def __init__(self, partitions: int = 4) -> None:
        self.store = Store()
        self.fired: list[tuple[str, OrderTriggered]] = []
        self.expired: list[str] = []

        async def fire(cmd: ExecuteOrder, attempt: int, event: OrderTriggered) -> None:
            self.fired.append((cmd.order_id, event))

        async def expire(order_id: str) -> None:
            self.expired.append(order_id)

        self.engine = TriggerEngine(self.store, fire, partitions=partitions, expire=expire)

    def open(self, cmd: ExecuteOrder) -> None:
        self.store.put(cmd)
        assert self.engine.accept(cmd)


async def test_orders_fire_once_when_the_market_reaches_them_and_not_before() -> None:
    r = Rig()
    r.open(limit("sell-140-x", 140_000_000))
    r.open(limit("sell-152-x", 152_000_000))
    r.open(limit("buy-at-148-x", ONE_SOL, tin=USDC.mint, tout=SOL.mint,
                 amount=148_000_000))
    await r.engine.on_view(pair_of(SOL.mint, USDC.mint), market_at(150))
    assert [oid for oid, _ in r.fired] == ["sell-140-x"]
    (_, event), = r.fired
    assert event.slot == 7 and event.observed_out is not None and event.observed_out >= 140e6
    await r.engine.on_view(pair_of(SOL.mint, USDC.mint), market_at(150))  # same market
    assert len(r.fired) == 1
    await r.engine.on_view(pair_of(SOL.mint, USDC.mint), market_at(146))  # SOL cheaper
    assert [oid for oid, _ in r.fired] == ["sell-140-x", "buy-at-148-x"]
    await r.engine.on_view(pair_of(SOL.mint, USDC.mint), market_at(160))
    assert [oid for oid, _ in r.fired] == ["sell-140-x", "buy-at-148-x", "sell-152-x"]
    assert len(r.engine.book) == 0 and r.engine.stats.fired == 3


async def test_an_order_cancelled_meanwhile_loses_the_compare_and_set() -> None:
    r = Rig()
    r.open(limit("limit-0001", 140_000_000))
    r.store.rows["limit-0001"] = ("cancelled", r.store.rows["limit-0001"][1])
    await r.engine.on_view(pair_of(SOL.mint, USDC.mint), market_at(150))
    assert r.fired == [] and r.engine.stats.lost == 1 and "limit-0001" not in r.engine.book


async def test_a_trigger_the_journal_could_not_record_stays_open_and_fires_later() -> None:
    r = Rig()
    r.open(limit("limit-0001", 140_000_000))
    r.store.down = True
    await r.engine.on_view(pair_of(SOL.mint, USDC.mint), market_at(150))
    assert r.fired == [] and "limit-0001" in r.engine.book
    r.store.down = False
    await r.engine.on_view(pair_of(SOL.mint, USDC.mint), market_at(150))
    assert [oid for oid, _ in r.fired] == ["limit-0001"]


async def test_assign_holds_only_owned_pairs_and_resumes_triggered_orders() -> None:
    r = Rig(partitions=64)
    usdc = limit("sol-usdc-1", 140_000_000)
    usdt = limit("sol-usdt-1", 140_000_000, tout=USDT.mint)
    crashed = limit("crashed-1", 1, tout=USDT.mint)
    r.store.put(usdc)
    r.store.put(usdt)
    r.store.put(crashed, status="triggered")
    p_usdc = partition_of(SOL.mint, USDC.mint, 64)
    p_usdt = partition_of(SOL.mint, USDT.mint, 64)
    assert p_usdc != p_usdt
    await r.engine.assign({p_usdc})
    assert "sol-usdc-1" in r.engine.book and "sol-usdt-1" not in r.engine.book
    assert r.fired == []  # the crashed order's pair is not ours
    assert not r.engine.accept(usdt)
    await r.engine.assign({p_usdt})  # a rebalance moved the pairs
    assert "sol-usdt-1" in r.engine.book and "sol-usdc-1" not in r.engine.book
    assert [oid for oid, _ in r.fired] == ["crashed-1"]
    assert r.engine.pairs() == [pair_of(SOL.mint, USDT.mint)]


async def test_expired_orders_leave_the_book_and_go_to_the_executor() -> None:
    r = Rig()
    now = now_ms()
    r.open(limit("soon-0001", 200_000_000, expires_at_ms=now + 1_000))
    r.open(limit("later-0001", 200_000_000, expires_at_ms=now + 60_000))
    assert await r.engine.expire_due(now + 999) == 0
    assert await r.engine.expire_due(now + 1_000) == 1
    assert r.expired == ["soon-0001"]
    assert "soon-0001" not in r.engine.book and "later-0001" in r.engine.book


@pytest.mark.parametrize("order_type", [OrderType.MARKET])
def test_only_limit_orders_enter_the_book(order_type: OrderType) -> None:
    r = Rig()
    cmd = ExecuteOrder("m-1", SOL.mint, USDC.mint, ONE_SOL, 50, now_ms())
    assert cmd.order_type is order_type and not r.engine.accept(cmd)


# ---- sniper orders ----

NEW_TOKEN = str(Pubkey.from_string("4uQeVj5tqViQh7yWWGStvkEG1Zmhx6uasJtWCJziofM"))


def sniper(order_id: str, *, min_liquidity: int = 10 * ONE_SOL, min_out: int | None = None,
           max_delay: int | None = 5, max_impact: int | None = 500) -> ExecuteOrder:
    now = now_ms()
    return ExecuteOrder(order_id, SOL.mint, NEW_TOKEN, ONE_SOL // 2, 50, now,
                        order_type=OrderType.SNIPER, expires_at_ms=now + 60_000,
                        sniper=SniperTerms(min_liquidity, min_out, max_impact, max_delay))


def pool(created: int = 100, seen: int = 101) -> NewPool:
    return NewPool(Venue.RAYDIUM, "Pool1111", NEW_TOKEN, SOL.mint, ("vault-new", "vault-sol"),
                   created, seen)


class FixedProbe:
    def __init__(self, probe: Probe) -> None:
        self.result = probe
        self.asked: list[tuple[str, str, int]] = []

    async def probe(self, pool: NewPool, token_in: str, token_out: str,
                    amount_in: int) -> Probe:
        self.asked.append((pool.vault_of(token_in), token_out, amount_in))
        return self.result


async def test_a_sniper_buys_the_first_pool_that_passes_its_guards() -> None:
    r = Rig()
    r.open(sniper("snipe-0001"))
    probe = FixedProbe(Probe(quote_liquidity=50 * ONE_SOL, out=10**9, impact_bps=90))
    await r.engine.on_pool(pool(), probe)
    (oid, event), = r.fired
    assert oid == "snipe-0001" and event.pool == "Pool1111" and event.pool_slot == 100
    assert event.slot == 101 and event.observed_out == 10**9
    assert probe.asked == [("vault-sol", NEW_TOKEN, ONE_SOL // 2)]  # the quote side: SOL
    await r.engine.on_pool(pool(), probe)  # seen again: nothing twice
    assert len(r.fired) == 1


@pytest.mark.parametrize(("terms", "probe", "reason"), [
    ({"min_liquidity": 100 * ONE_SOL}, Probe(50 * ONE_SOL, 10**9, 90),
     "holds 50000000000 on the quote side, below the order's minimum liquidity"),
    ({"max_delay": 0}, Probe(50 * ONE_SOL, 10**9, 90), "past the order's maximum delay of 0"),
    ({"min_out": 2 * 10**9}, Probe(50 * ONE_SOL, 10**9, 90), "below its maximum price"),
    ({"max_impact": 50}, Probe(50 * ONE_SOL, 10**9, 90), "above its maximum impact of 50"),
    ({}, Probe(50 * ONE_SOL, 0, 10_000), "pays nothing"),
])
async def test_a_pool_below_a_guard_is_refused_with_its_reason_and_the_order_waits(
        terms: dict[str, int], probe: Probe, reason: str) -> None:
    r = Rig()
    r.open(sniper("snipe-0002", **terms))
    await r.engine.on_pool(pool(), FixedProbe(probe))
    assert r.fired == [] and "snipe-0002" in r.engine.snipers
    (oid, why), = r.store.refusals
    assert oid == "snipe-0002" and reason in why, why
    # a later sighting that passes (funded, priced) still buys
    await r.engine.on_pool(pool(seen=102), FixedProbe(Probe(10**6 * ONE_SOL, 10**10, 1)))
    if "max_delay" not in terms:
        assert [o for o, _ in r.fired] == ["snipe-0002"]


async def test_a_pool_of_another_pair_is_not_probed() -> None:
    r = Rig()
    r.open(sniper("snipe-0003"))
    other = NewPool(Venue.METEORA, "Other111", USDT.mint, SOL.mint, ("a", "b"), 5, 5)
    probe = FixedProbe(Probe(10**12, 10**12, 1))
    await r.engine.on_pool(other, probe)
    assert probe.asked == [] and r.fired == []


@pytest.mark.parametrize("cmd", [
    limit("limit-0009", 150_000_000),
    sniper("snipe-0009"),
    ExecuteOrder("market-0009", SOL.mint, USDC.mint, ONE_SOL, 50, 1_700_000_000_000, "http",
                 "ref-1", 300),
])
def test_a_journal_row_reads_back_as_its_command(cmd: ExecuteOrder) -> None:
    """The direct read of the journal's copy equals the full decode and the command."""
    doc = cmd.to_json()
    assert command_of(doc) == decode_execute_order(orjson.dumps(doc)) == cmd


def test_a_row_this_code_did_not_write_is_decoded_in_full() -> None:
    doc = limit("limit-0010", 150_000_000).to_json() | {"tokenIn": "SOL"}  # a symbol
    assert command_of(doc).token_in == SOL.mint
    with pytest.raises(InvalidOrder):
        command_of(doc | {"amountIn": 1.5})


async def test_assign_reads_again_when_the_journal_is_away_instead_of_raising() -> None:
    """A rebalance right after PostgreSQL restarted: the first read hits a dead pooled
    connection. Raising out of faust's partitions-assigned hook crashed the worker (found
    by the soak); the book must be loaded once the journal answers."""
    r = Rig(partitions=1)
    r.store.put(limit("sol-usdc-1", 140_000_000))
    r.store.put(limit("crashed-1", 1), status="triggered")
    reads = {"open": 0, "triggered": 0}
    open_orders, triggered = r.store.open_orders, r.store.triggered

    async def flaky_open() -> list[dict[str, Any]]:
        reads["open"] += 1
        if reads["open"] == 1:
            raise JournalUnavailable(message="terminating connection (postmaster exit)")
        return await open_orders()

    async def flaky_triggered() -> list[tuple[dict[str, Any], int]]:
        reads["triggered"] += 1
        if reads["triggered"] == 1:
            raise JournalUnavailable(message="connection refused")
        return await triggered()
    r.store.open_orders = flaky_open  # type: ignore[method-assign]
    r.store.triggered = flaky_triggered  # type: ignore[method-assign]
    await r.engine.assign({0})
    assert "sol-usdc-1" in r.engine.book
    assert [oid for oid, _ in r.fired] == ["crashed-1"]
    assert reads == {"open": 2, "triggered": 2}


async def test_assign_survives_a_broker_outage_while_resuming_a_triggered_order() -> None:
    """Publishing ``triggered`` again fails past its budget: the assignment still loads
    the book and returns (the row stays triggered for the orphan sweep)."""
    r = Rig(partitions=1)
    r.store.put(limit("sol-usdc-1", 140_000_000))
    r.store.put(limit("crashed-1", 1), status="triggered")

    async def broker_down(cmd: ExecuteOrder, attempt: int, event: OrderTriggered) -> None:
        raise BrokerUnavailable(message="order-status: KafkaConnectionError")
    r.engine._fire = broker_down
    await r.engine.assign({0})
    assert "sol-usdc-1" in r.engine.book
    assert r.store.rows["crashed-1"][0] == "triggered"


# ---- pools that launched while no watch was running (a worker down or restarting) ----

class Births:
    """The cluster's answer for a listed pool's birth: (creation slot, block time ms)."""

    def __init__(self, births: dict[str, tuple[int, int] | None]) -> None:
        self.births = births
        self.asked: list[str] = []

    async def birth(self, pool: NewPool) -> tuple[int, int] | None:
        self.asked.append(pool.address)
        return self.births.get(pool.address)


def listed(address: str, seen: int = 103) -> NewPool:
    return NewPool(Venue.RAYDIUM, address, NEW_TOKEN, SOL.mint, ("vault-new", "vault-sol"),
                   0, seen, listed=True)


GOOD = Probe(quote_liquidity=50 * ONE_SOL, out=10**9, impact_bps=90)


async def test_a_pool_listed_at_start_fires_a_sniper_only_if_born_after_its_acceptance(
        ) -> None:
    r = Rig()
    cmd = sniper("snipe-0010")
    r.open(cmd)
    births = Births({"Older111": (90, cmd.submitted_at_ms - 1_000),
                     "Unknown1": None,
                     "Newer111": (100, cmd.submitted_at_ms + 1_000)})
    await r.engine.on_listed([listed("Older111"), listed("Unknown1")], FixedProbe(GOOD),
                             births)
    assert r.fired == [] and "snipe-0010" in r.engine.snipers  # born before: not new
    await r.engine.on_listed([listed("Newer111")], FixedProbe(GOOD), births)
    (oid, event), = r.fired
    assert oid == "snipe-0010" and event.pool == "Newer111" and event.pool_slot == 100
    assert event.slot == 103


async def test_a_listed_pool_born_after_the_order_is_still_held_to_its_maximum_delay(
        ) -> None:
    r = Rig()
    cmd = sniper("snipe-0011", max_delay=2)
    r.open(cmd)
    births = Births({"Newer111": (100, cmd.submitted_at_ms + 1_000)})
    await r.engine.on_listed([listed("Newer111", seen=103)], FixedProbe(GOOD), births)
    assert r.fired == []
    (_, why), = r.store.refusals
    assert "past the order's maximum delay of 2" in why


async def test_orders_loaded_after_the_listing_are_checked_against_it() -> None:
    r = Rig()
    cmd = sniper("snipe-0012")
    r.store.put(cmd)  # in the journal; the book is rebuilt after the watch listed
    births = Births({"Newer111": (100, cmd.submitted_at_ms + 1_000)})
    await r.engine.on_listed([listed("Newer111")], FixedProbe(GOOD), births)
    assert r.fired == [] and births.asked == []  # nothing waits yet: no lookup
    await r.engine.assign(None)
    assert [o for o, _ in r.fired] == ["snipe-0012"]
