"""The public `orders` contract: what is accepted, what is refused and why."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

from pipeline.errors import InvalidOrder
from pipeline.lifecycle import OrderAccepted, OrderStatus, apply
from pipeline.tokens import SOL, USDC, resolve_token, to_base_units, to_ui
from pipeline.wire import ExecuteOrder, StatusEvent, contract, decode_execute_order

GOOD: dict[str, Any] = {"schemaVersion": 1, "orderId": "order-0001", "tokenIn": SOL.mint,
                        "tokenOut": USDC.mint, "amountIn": 1_500_000_000, "slippageBps": 50}


def test_good_message_round_trips() -> None:
    cmd = decode_execute_order(orjson.dumps(GOOD), record_ts_ms=1234)
    assert (cmd.token_in, cmd.token_out, cmd.amount_in, cmd.slippage_bps) == (
        SOL.mint, USDC.mint, 1_500_000_000, 50)
    assert cmd.submitted_at_ms == 1234 and cmd.source == "kafka"
    again = decode_execute_order(cmd.encode())
    assert again == cmd


def test_symbols_accepted_and_normalised_to_mints() -> None:
    cmd = decode_execute_order(orjson.dumps({**GOOD, "tokenIn": "sol", "tokenOut": "USDC"}))
    assert (cmd.token_in, cmd.token_out) == (SOL.mint, USDC.mint)


def test_examples_in_the_contract_validate() -> None:
    schema = contract("orders.v1.schema.json")
    Draft202012Validator.check_schema(schema)
    for example in schema["examples"]:
        decode_execute_order(orjson.dumps(example))


@pytest.mark.parametrize(("raw", "code", "field"), [
    (b"not json", "malformed_json", None),
    (b"[1,2]", "invalid_message", None),
    (orjson.dumps({**GOOD, "schemaVersion": 3}), "unsupported_schema_version", "schemaVersion"),
    (orjson.dumps({k: v for k, v in GOOD.items() if k != "schemaVersion"}),
     "unsupported_schema_version", "schemaVersion"),
    (orjson.dumps({k: v for k, v in GOOD.items() if k != "amountIn"}), "invalid_message",
     "amountIn"),
    (orjson.dumps({**GOOD, "amountIn": 1.5}), "invalid_message", "amountIn"),
    (orjson.dumps({**GOOD, "amountIn": "1500"}), "invalid_message", "amountIn"),
    (orjson.dumps({**GOOD, "amountIn": 0}), "invalid_message", "amountIn"),
    (orjson.dumps({**GOOD, "slippageBps": 5001}), "invalid_message", "slippageBps"),
    (orjson.dumps({**GOOD, "orderId": "x"}), "invalid_message", "orderId"),
    (orjson.dumps({**GOOD, "extra": 1}), "invalid_message", None),
    (orjson.dumps({**GOOD, "tokenIn": "DOGE"}), "unknown_token", "tokenIn"),
    (orjson.dumps({**GOOD, "tokenOut": SOL.mint}), "same_token", "tokenOut"),
    (orjson.dumps({**GOOD, "submittedAt": "yesterday"}), "invalid_message", "submittedAt"),
    (b"{" + b" " * 20000 + b"}", "message_too_large", None),
])
def test_bad_messages_are_refused_precisely(raw: bytes, code: str, field: str | None) -> None:
    with pytest.raises(InvalidOrder) as info:
        decode_execute_order(raw)
    assert info.value.code == code
    assert info.value.field == field


@pytest.mark.parametrize(("text", "decimals", "base"), [
    ("1.5", 9, 1_500_000_000), ("0.000000001", 9, 1), ("10", 6, 10_000_000),
    ("1.230000", 6, 1_230_000), (" 2 ", 6, 2_000_000), ("0.1", 1, 1),
])
def test_exact_conversion(text: str, decimals: int, base: int) -> None:
    assert to_base_units(text, decimals) == base
    assert to_base_units(to_ui(base, decimals), decimals) == base


@pytest.mark.parametrize("text", ["0", "0.0", "-1", "1e3", "0.0000000001", "abc", "", "1.2.3",
                                  "18446744073.709551616", "NaN", "Infinity"])
def test_conversion_refusals(text: str) -> None:
    with pytest.raises(InvalidOrder):
        to_base_units(text, 9)


def test_conversion_refuses_non_strings() -> None:
    with pytest.raises(InvalidOrder):
        to_base_units(1.5, 9)  # type: ignore[arg-type]


def test_resolve_token() -> None:
    assert resolve_token("usdc") is USDC and resolve_token(SOL.mint) is SOL
    with pytest.raises(InvalidOrder):
        resolve_token("ETH")


def test_status_event_is_deterministic_and_round_trips() -> None:
    cmd = ExecuteOrder("order-0001", SOL.mint, USDC.mint, 5, 50, 1_700_000_000_000, "http")
    order = apply(cmd.to_order(), OrderAccepted())
    ev = StatusEvent.of(order, ts_ms=1_700_000_000_123)
    assert ev.event_id == "order-0001:1:pending" and ev.status is OrderStatus.PENDING
    assert StatusEvent.decode(ev.encode()) == ev
