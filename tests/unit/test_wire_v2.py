"""Version 2 of the ``orders`` contract (order types, expiry, CancelOrder) and of the status
events, next to version 1 unchanged."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

from pipeline.errors import InvalidOrder
from pipeline.lifecycle import (
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderOpened,
    OrderQuoted,
    OrderTriggered,
    apply,
)
from pipeline.model import LimitTerms, OrderType, SniperTerms
from pipeline.tokens import SOL, USDC
from pipeline.wire import (
    CancelOrder,
    ExecuteOrder,
    StatusEvent,
    contract,
    decode_execute_order,
    decode_orders_message,
    iso_ms,
)
from pipeline.wire_terms import DEFAULT_MARKET_TTL_MS, limit_min_out

NEW_MINT = "4k3Dyjzvzp8eMZWUXbBCjEvwSkkk59S5iCNLY3QrkX6R"
T0 = "2030-01-01T00:00:00.000Z"
V1: dict[str, Any] = {"schemaVersion": 1, "orderId": "order-0001", "tokenIn": SOL.mint,
                      "tokenOut": USDC.mint, "amountIn": 1_000_000_000, "slippageBps": 50}
LIMIT: dict[str, Any] = {**V1, "schemaVersion": 2, "type": "limit",
                         "limit": {"minOut": 160_000_000}, "submittedAt": T0,
                         "expiresAt": "2030-01-02T00:00:00.000Z"}
SNIPER: dict[str, Any] = {**V1, "schemaVersion": 2, "type": "sniper", "tokenOut": NEW_MINT,
                          "sniper": {"minQuoteLiquidity": 10_000_000_000, "maxDelaySlots": 20,
                                     "priorityFeeMicroLamports": 50_000},
                          "submittedAt": T0, "expiresAt": "2030-01-01T01:00:00.000Z"}
CANCEL: dict[str, Any] = {"schemaVersion": 2, "command": "CancelOrder", "orderId": "order-0001",
                          "requestedAt": T0, "source": "http", "reason": "changed my mind"}


def decode(doc: dict[str, Any]) -> ExecuteOrder | CancelOrder:
    return decode_orders_message(orjson.dumps(doc), record_ts_ms=1_000)


def test_a_v1_message_is_a_market_order_with_the_default_expiry() -> None:
    cmd = decode(V1)
    assert isinstance(cmd, ExecuteOrder)
    assert (cmd.order_type, cmd.expires_at_ms, cmd.limit, cmd.sniper) == (
        OrderType.MARKET, None, None, None)
    assert cmd.to_order().expires_at_ms == 1_000 + DEFAULT_MARKET_TTL_MS
    assert cmd.to_order(market_ttl_ms=5_000).expires_at_ms == 6_000
    # written back as v1, exactly what a v1 producer sent (the journal compares it)
    assert cmd.to_json() == {**V1, "type": "market", "submittedAt": iso_ms(1_000),
                             "source": "kafka"}
    assert cmd.to_json()["schemaVersion"] == 1


def test_v2_market_with_its_own_expiry() -> None:
    cmd = decode({**V1, "schemaVersion": 2, "submittedAt": T0,
                  "expiresAt": "2030-01-01T00:00:30Z"})
    assert isinstance(cmd, ExecuteOrder) and cmd.order_type is OrderType.MARKET
    assert cmd.expires_at_ms == cmd.submitted_at_ms + 30_000
    assert cmd.to_order(market_ttl_ms=1).expires_at_ms == cmd.expires_at_ms
    assert cmd.to_json()["schemaVersion"] == 2 and decode(cmd.to_json()) == cmd


def test_limit_order_round_trips() -> None:
    cmd = decode(LIMIT)
    assert isinstance(cmd, ExecuteOrder)
    assert (cmd.order_type, cmd.limit) == (OrderType.LIMIT, LimitTerms(160_000_000))
    order = cmd.to_order()
    assert (order.type, order.limit, order.expires_at_ms) == (
        OrderType.LIMIT, LimitTerms(160_000_000), cmd.expires_at_ms)
    assert decode_execute_order(cmd.encode()) == cmd


def test_sniper_order_takes_a_mint_no_registry_knows() -> None:
    cmd = decode(SNIPER)
    assert isinstance(cmd, ExecuteOrder)
    assert cmd.token_out == NEW_MINT and cmd.token_in == SOL.mint
    assert cmd.sniper == SniperTerms(10_000_000_000, max_delay_slots=20,
                                     priority_fee_micro_lamports=50_000)
    assert decode_execute_order(cmd.encode()) == cmd
    with pytest.raises(InvalidOrder) as refused:
        decode({**SNIPER, "tokenOut": "not-a-mint-0OIl"})
    assert (refused.value.code, refused.value.field) == ("invalid_mint", "tokenOut")
    with pytest.raises(InvalidOrder) as refused:  # a limit order's tokens are the registry's
        decode({**LIMIT, "tokenOut": NEW_MINT})
    assert refused.value.code == "unknown_token"


def test_cancel_command_round_trips() -> None:
    cmd = decode(CANCEL)
    assert isinstance(cmd, CancelOrder)
    assert cmd == CancelOrder("order-0001", cmd.requested_at_ms, "http", "changed my mind")
    assert decode_orders_message(cmd.encode()) == cmd
    assert decode({k: v for k, v in CANCEL.items() if k != "requestedAt"}
                  ) == replace(cmd, requested_at_ms=1_000)  # the record's timestamp
    with pytest.raises(InvalidOrder, match="expected an ExecuteOrder"):
        decode_execute_order(cmd.encode())


def test_examples_in_the_v2_contracts_validate() -> None:
    schema = contract("orders.v2.schema.json")
    Draft202012Validator.check_schema(schema)
    Draft202012Validator.check_schema(contract("order-status.v2.schema.json"))
    kinds = [type(decode(example)).__name__ for example in schema["examples"]]
    assert kinds == ["ExecuteOrder", "ExecuteOrder", "ExecuteOrder", "CancelOrder"]


def _without(doc: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != key}


@pytest.mark.parametrize(("doc", "code", "field"), [
    ({**LIMIT, "schemaVersion": 1}, "invalid_message", None),  # v1 knows no limit terms
    ({**V1, "type": "limit"}, "invalid_message", "type"),
    (_without(LIMIT, "limit"), "invalid_message", "limit"),
    (_without(LIMIT, "expiresAt"), "invalid_message", "expiresAt"),
    (_without(SNIPER, "expiresAt"), "invalid_message", "expiresAt"),
    ({**LIMIT, "type": "market"}, "invalid_message", "limit"),
    ({**LIMIT, "sniper": SNIPER["sniper"]}, "invalid_message", "sniper"),
    (_without({**SNIPER, "type": "limit", "limit": {"minOut": 1}}, "x"), "invalid_message",
     "sniper"),
    (_without(SNIPER, "sniper"), "invalid_message", "sniper"),
    ({**LIMIT, "type": "stop"}, "invalid_message", "type"),
    ({**LIMIT, "limit": {"minOut": 0}}, "invalid_message", "limit"),
    ({**LIMIT, "limit": {"minOut": 1.0}}, "invalid_message", "limit"),
    ({**LIMIT, "limit": {"minOut": "160"}}, "invalid_message", "limit"),
    ({**LIMIT, "limit": {"minOut": 1, "price": 2}}, "invalid_message", "limit"),
    ({**LIMIT, "expiresAt": T0}, "invalid_message", "expiresAt"),  # not after submittedAt
    ({**LIMIT, "expiresAt": "tomorrow"}, "invalid_message", "expiresAt"),
    ({**SNIPER, "sniper": {"maxDelaySlots": 3}}, "invalid_message", "sniper"),
    ({**SNIPER, "sniper": {"minQuoteLiquidity": -1}}, "invalid_message", "sniper"),
    ({**SNIPER, "sniper": {"minQuoteLiquidity": 1, "maxPriceImpactBps": 0}},
     "invalid_message", "sniper"),
    ({**CANCEL, "amountIn": 1}, "invalid_message", None),
    (_without(CANCEL, "orderId"), "invalid_message", "orderId"),
    ({**CANCEL, "orderId": "x"}, "invalid_message", "orderId"),
    ({**CANCEL, "schemaVersion": 1}, "invalid_message", "schemaVersion"),  # cancel is v2
    ({**CANCEL, "command": "DeleteOrder"}, "invalid_message", "command"),
    ({**CANCEL, "requestedAt": "now"}, "invalid_message", "requestedAt"),
])
def test_bad_v2_messages_are_refused_precisely(doc: dict[str, Any], code: str,
                                               field: str | None) -> None:
    with pytest.raises(InvalidOrder) as refused:
        decode(doc)
    assert (refused.value.code, refused.value.field) == (code, field), refused.value.message


@pytest.mark.parametrize(("amount", "price", "d_in", "d_out", "min_out"), [
    (1_000_000_000, "160", 9, 6, 160_000_000),  # sell 1 SOL for at least 160 USDC
    (1_000_000_000, "160.123456", 9, 6, 160_123_456),
    (500_000_000, "0.5", 9, 9, 250_000_000),
    (160_000_000, "0.00625", 6, 9, 1_000_000_000),  # buy 1 SOL with 160 USDC
    (3, "2", 0, 0, 6),
])
def test_limit_price_converts_exactly(amount: int, price: str, d_in: int, d_out: int,
                                      min_out: int) -> None:
    assert limit_min_out(amount, price, d_in, d_out) == min_out


@pytest.mark.parametrize(("amount", "price", "code"), [
    (1_000_000_000, "160.1234567", "inexact_limit_price"),  # a 7th decimal of USDC
    (1, "0.5", "inexact_limit_price"),
    (1_000_000_000, "0", "invalid_limit_price"),
    (1_000_000_000, "-1", "invalid_limit_price"),
    (1_000_000_000, "1e3", "invalid_limit_price"),
    (1_000_000_000, "", "invalid_limit_price"),
    (1_000_000_000, "1.2.3", "invalid_limit_price"),
    (2**64 - 1, "1000000", "invalid_limit_price"),  # beyond u64
])
def test_limit_price_refusals(amount: int, price: str, code: str) -> None:
    with pytest.raises(InvalidOrder) as refused:
        limit_min_out(amount, price, 9, 6)
    assert (refused.value.code, refused.value.field) == (code, "limitPrice")


def _status_valid(event: StatusEvent) -> dict[str, Any]:
    doc = event.to_json()
    schema = contract(f"order-status.v{doc['schemaVersion']}.schema.json")
    Draft202012Validator(schema).validate(doc)
    assert StatusEvent.from_json(orjson.loads(event.encode())) == event
    return doc


def test_market_status_events_stay_v1_until_a_new_state() -> None:
    market = decode(V1)
    assert isinstance(market, ExecuteOrder)
    pending = apply(market.to_order(), OrderAccepted())
    doc = _status_valid(StatusEvent.of(pending))
    assert doc["schemaVersion"] == 1
    assert (doc["order"]["type"], doc["order"]["expiresAt"]) == ("market", iso_ms(61_000))
    expired = apply(pending, OrderExpired(61_000))
    doc = _status_valid(StatusEvent.of(expired))
    assert doc["schemaVersion"] == 2 and doc["status"] == "expired"
    assert doc["data"] == {"code": "expired", "message": expired.error_message,
                           "expiresAt": iso_ms(61_000), "expiredAt": iso_ms(61_000)}
    cancelled = apply(pending, OrderCancelled("changed my mind", 2_000))
    doc = _status_valid(StatusEvent.of(cancelled))
    assert doc["data"] == {"code": "cancelled", "reason": "changed my mind",
                           "requestedAt": iso_ms(2_000)}


def test_conditional_status_events_are_v2_and_carry_their_terms() -> None:
    limit = decode(LIMIT)
    assert isinstance(limit, ExecuteOrder)
    order = apply(limit.to_order(), OrderAccepted())
    docs = [_status_valid(StatusEvent.of(order))]
    order = apply(order, OrderOpened())
    docs.append(_status_valid(StatusEvent.of(order)))
    order = apply(order, OrderTriggered(slot=77, observed_out=161_000_000))
    docs.append(_status_valid(StatusEvent.of(order)))
    order = apply(order, OrderQuoted(()))
    docs.append(_status_valid(StatusEvent.of(order)))
    assert [d["schemaVersion"] for d in docs] == [2, 2, 2, 2]
    assert [d["status"] for d in docs] == ["pending", "open", "triggered", "routing"]
    assert docs[0]["order"]["limit"] == {"minOut": 160_000_000}
    assert docs[1]["data"] == {"expiresAt": LIMIT["expiresAt"]}
    assert docs[2]["data"] == {"slot": 77, "observedOut": 161_000_000}


def test_unknown_status_versions_are_refused() -> None:
    doc = StatusEvent.of(apply(decode_execute_order(orjson.dumps(V1)).to_order(),
                               OrderAccepted())).to_json()
    with pytest.raises(InvalidOrder):
        StatusEvent.from_json({**doc, "schemaVersion": 3})
