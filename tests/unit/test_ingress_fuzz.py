"""Property-based fuzzing of order submission on the real aiohttp app (in-memory ports).

Whatever a client sends to ``POST /api/orders/execute`` (random and mutated orders,
wrong types, unicode, huge numbers, nested junk, random bytes, random content types
and encodings, random idempotency keys), the answer is 202 or a 4xx, never a 5xx:

* every 4xx has ``error.code``, ``error.message`` and ``error.field`` (string or null)
  and matches the OpenAPI document;
* every 202 produced exactly one ``ExecuteOrder`` that the public contract accepts
  (``decode_execute_order``), with the exact base-unit amount, the right mints,
  slippage and clientRef;
* an independent oracle predicts the status (415, 413, 400, 202) for the requests it
  understands: valid orders are never refused, invalid ones never accepted;
* the same idempotency key again answers the same orderId and produces nothing new.

The WebSocket submit gets the same treatment with fewer examples. Generation is
derandomized, so CI runs the same examples every time.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import orjson
import pytest
from aiohttp import WSCloseCode, WSMsgType
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ingress.app import RUNNER_OPTIONS, build_app
from ingress.hub import StatusHub
from ingress.idempotency import InMemoryIdempotencyStore
from ingress.metrics import IngressMetrics
from pipeline.tokens import KNOWN_TOKENS, SOL, U64_MAX, USDC, USDT, Token
from pipeline.topics import ORDERS
from pipeline.wire import MAX_MESSAGE_BYTES, decode_execute_order
from tests.unit.test_ingress_fakes import FakeBus, FakeStore, ingress_config
from tests.unit.test_ingress_openapi import validate_response

URL = "/api/orders/execute"
FUZZ = settings(max_examples=600, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# ---- strategies ----

JSON_TYPES = ["application/json", "application/json; charset=utf-8", "Application/JSON"]
NOT_JSON_TYPES = ["text/plain", "application/x-www-form-urlencoded", "text/json",
                  "multipart/form-data; boundary=xyz", "application/jsonx",
                  "application/octet-stream", "application/problem+json"]
PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
HEADER_SAFE = st.characters(min_codepoint=0x20, max_codepoint=0xFF,
                            blacklist_characters="\x7f")

scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
           | st.text(max_size=20))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=12)

symbols = st.sampled_from(
    [t.symbol for t in KNOWN_TOKENS] + [t.symbol.lower() for t in KNOWN_TOKENS]
    + [t.mint for t in KNOWN_TOKENS]
    + ["Sol", "DOGE", "", " SOL", "SOL ", SOL.mint.lower(), SOL.mint[:-1] + "3",
       "\u017fol", "\uff33\uff2f\uff2c"])  # long s + "ol", fullwidth "SOL"
tokens = symbols | symbols | st.text(max_size=50) | json_values


def one_in(n: int) -> st.SearchStrategy[bool]:
    """True about once in ``n`` draws (integers() would favour its bounds)."""
    return st.sampled_from([True] + [False] * (n - 1))


@st.composite
def decimal_strings(draw: st.DrawFn) -> str:
    """Mostly plausible amounts: digits, a point, trailing zeros, padding, a few defects."""
    whole = draw(st.integers(0, 10**21) | st.integers(0, 20))
    digits = draw(st.integers(0, 12))
    frac = str(draw(st.integers(0, 10**digits))).rjust(digits, "0")[:digits] if digits else ""
    text = str(whole) if not draw(st.booleans()) or whole else ""
    if frac or draw(st.booleans()):
        text += "." + frac + "0" * draw(st.integers(0, 3))
    if draw(one_in(10)):
        text = draw(st.sampled_from(["0", "00"])) + text
    defect = draw(st.sampled_from([None] * 10 + ["prefix", "suffix"]))
    if defect == "prefix":
        text = draw(st.sampled_from(["-", "+", " ", "\t", "\u00a0", "1e", "\u0661"])) + text
    elif defect == "suffix":
        text += draw(st.sampled_from(["e3", "E-2", " ", "\n", ".", ",5", "_0", "\u0663", "x"]))
    return text


amounts = (decimal_strings() | decimal_strings() | decimal_strings()
           | st.text(alphabet="0123456789.-+eE _,", max_size=25) | st.text(max_size=25)
           | st.integers() | st.floats() | json_values)
slippages = (st.integers(-10, 5010) | st.integers(-10, 5010) | st.sampled_from([0, 5000])
             | st.integers() | st.floats() | st.booleans() | st.text(max_size=6) | json_values)
client_refs = st.none() | st.text(max_size=140) | json_values


def render(units: int, decimals: int, draw: st.DrawFn) -> str:
    """``units`` base units as a UI decimal string, in one of its many spellings."""
    whole, frac = divmod(units, 10**decimals)
    digits = str(frac).rjust(decimals, "0").rstrip("0")
    text = f"{whole}.{digits}" if digits else str(whole)
    if draw(st.booleans()):
        text += ("" if "." in text else ".") + "0" * draw(st.integers(0, 4))
    if whole == 0 and "." in text and draw(st.booleans()):
        text = text[1:]  # ".5"
    elif draw(one_in(6)):
        text = "0" * draw(st.integers(1, 3)) + text
    pad = st.sampled_from(["", "", "", " ", "\t", "\n ", "\u2003"])
    return draw(pad) + text + draw(pad)


@st.composite
def valid_orders(draw: st.DrawFn) -> dict[str, Any]:
    """Orders the API must accept, with random amounts (1..u64 base units) and spellings."""
    token_in, token_out = draw(st.permutations(KNOWN_TOKENS))[:2]
    units = draw(st.integers(1, U64_MAX) | st.integers(1, 10**7)
                 | st.sampled_from([1, U64_MAX, 10**token_in.decimals]))

    def name(t: Token) -> str:
        return draw(st.sampled_from([t.symbol, t.symbol.lower(), t.symbol.title(), t.mint]))

    doc: dict[str, Any] = {"tokenIn": name(token_in), "tokenOut": name(token_out),
                           "amount": render(units, token_in.decimals, draw)}
    if draw(st.booleans()):
        doc["slippageBps"] = draw(st.integers(0, 5000) | st.sampled_from([0, 5000]))
    if draw(st.booleans()):
        doc["clientRef"] = draw(st.none() | st.text(max_size=128))
    if draw(one_in(3)):
        doc["type"] = "market"
    if draw(one_in(3)):
        doc["maxPriceImpactBps"] = draw(st.integers(1, 10_000) | st.sampled_from([1, 10_000]))
    return doc


order_types = st.sampled_from(["market", "limit", "sniper", "Market", ""]) | json_values
impacts = (st.integers(-5, 10_010) | st.sampled_from([0, 1, 10_000, 10_001]) | st.floats()
           | st.booleans() | json_values)
WRONG = {"tokenIn": tokens, "tokenOut": tokens, "amount": amounts, "slippageBps": slippages,
         "clientRef": client_refs, "type": order_types, "maxPriceImpactBps": impacts}


@st.composite
def damaged_orders(draw: st.DrawFn) -> dict[str, Any]:
    """A valid order with one thing wrong (or, by chance, still right)."""
    doc = draw(valid_orders())
    damage = draw(st.sampled_from(["value", "value", "drop", "extra", "precision", "range"]))
    name = draw(st.sampled_from(sorted(WRONG)))
    if damage == "value":
        doc[name] = draw(WRONG[name])
    elif damage == "drop":
        doc.pop(name, None)
    elif damage == "extra":
        doc[draw(st.text(max_size=12))] = draw(json_values)
    elif damage == "precision":  # one decimal more than the mint has
        decimals = (token_of(doc["tokenIn"]) or SOL).decimals
        doc["amount"] = "1." + "0" * decimals + str(draw(st.integers(1, 9)))
    else:
        doc["slippageBps"] = draw(st.sampled_from([-1, 5001, 2**63, -(2**63), 10**30]))
    return doc


@st.composite
def wild_orders(draw: st.DrawFn) -> dict[str, Any]:
    """Order-shaped documents with anything in the fields."""
    doc: dict[str, Any] = {"tokenIn": draw(tokens), "tokenOut": draw(tokens),
                           "amount": draw(amounts)}
    if draw(st.booleans()):
        doc["slippageBps"] = draw(slippages)
    if draw(one_in(4)):
        doc["clientRef"] = draw(client_refs)
    for field_name in list(doc):
        if draw(one_in(12)):
            del doc[field_name]
    if draw(one_in(8)):
        doc.update(draw(st.dictionaries(st.text(max_size=12), json_values, max_size=2)))
    return doc


def order_documents() -> st.SearchStrategy[dict[str, Any]]:
    return valid_orders() | damaged_orders() | damaged_orders() | wild_orders()


@st.composite
def encoded(draw: st.DrawFn, doc: Any) -> bytes:
    """JSON text of ``doc`` (stdlib: big ints, NaN, lone surrogates survive), maybe damaged."""
    text = json.dumps(doc, ensure_ascii=draw(st.booleans()))
    raw = text.encode("utf-8", "surrogatepass")
    damage = draw(st.sampled_from([None] * 12 + ["truncate", "insert", "pad"]))
    if damage == "truncate" and raw:
        raw = raw[: draw(st.integers(0, len(raw) - 1))]
    elif damage == "insert":
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(min_size=1, max_size=3)) + raw[at:]
    elif damage == "pad":
        raw = b" " * draw(st.integers(0, 3)) + raw + b"\n"
    return raw


@dataclass(frozen=True)
class Submission:
    body: bytes
    content_type: str | None
    key: str | None
    encoding: str | None
    repeat: bytes | None  # a second request with the same key: this body (same or other)


@st.composite
def submissions(draw: st.DrawFn) -> Submission:
    kind = draw(st.sampled_from(["order"] * 7 + ["json", "bytes", "huge"]))
    if kind == "order":
        body = draw(encoded(draw(order_documents())))
    elif kind == "json":
        body = draw(encoded(draw(json_values)))
    elif kind == "bytes":
        body = draw(st.binary(max_size=64))
    else:
        body = orjson.dumps({"tokenIn": "SOL", "tokenOut": "USDC", "amount": "1",
                             "clientRef": "x" * draw(st.integers(16_300, 17_000))})
    content_type = draw(st.sampled_from(["json"] * 6 + ["other", "none", "random"]).flatmap(
        lambda k: {"json": st.sampled_from(JSON_TYPES), "other": st.sampled_from(NOT_JSON_TYPES),
                   "none": st.none(), "random": st.text(PRINTABLE, max_size=30)}[k]))
    key = draw(st.sampled_from(["none"] * 3 + ["good", "random", "empty"]).flatmap(
        lambda k: {"none": st.none(), "good": st.sampled_from(["k", "key-1", "x" * 128]),
                   "random": st.text(HEADER_SAFE, max_size=130), "empty": st.just("")}[k]))
    encoding = draw(st.sampled_from([None] * 40 + ["gzip", "deflate", "identity", "br", "zstd",
                                                   "junk", " Identity "]))
    repeat = None
    if key is not None and draw(st.booleans()):
        repeat = body if draw(st.booleans()) else draw(encoded(draw(order_documents())))
    return Submission(body, content_type, key, encoding, repeat)


# ---- the oracle: an independent reading of the API contract ----

SYMBOLS = {t.symbol: t for t in KNOWN_TOKENS}
MINTS = {t.mint: t for t in KNOWN_TOKENS}
KEY = re.compile(r"[\x20-\x7e]{1,128}")


def token_of(value: Any) -> Token | None:
    if not isinstance(value, str):
        return None
    return SYMBOLS.get(value.upper()) or MINTS.get(value)


def base_units(value: Any, token: Token) -> int | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not re.fullmatch(r"[0-9]*\.?[0-9]*", text) or text in ("", "."):
        return None
    if len(text.partition(".")[2].rstrip("0")) > token.decimals:
        return None
    units = Fraction(text) * 10**token.decimals
    assert units.denominator == 1
    return int(units) if 0 < units <= U64_MAX else None


@dataclass(frozen=True)
class Expected:
    token_in: Token
    token_out: Token
    amount_in: int
    slippage_bps: int
    client_ref: str | None
    max_price_impact_bps: int | None


REQUIRED = {"tokenIn", "tokenOut", "amount"}
FIELDS = REQUIRED | {"slippageBps", "clientRef", "type", "maxPriceImpactBps"}


def expected_order(body: bytes) -> Expected | None:
    """The order a body means, or None if the API must refuse it (400)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or not set(doc) <= FIELDS:
        return None
    if "type" in doc and doc["type"] != "market":
        return None  # another type needs its own fields (expiresAt, terms) to be valid
    token_in, token_out = token_of(doc.get("tokenIn")), token_of(doc.get("tokenOut"))
    if token_in is None or token_out is None or token_in == token_out:
        return None
    amount = base_units(doc.get("amount"), token_in)
    slippage = doc.get("slippageBps", 50)
    ref = doc.get("clientRef")
    if amount is None or type(slippage) is not int or not 0 <= slippage <= 5000:
        return None
    if ref is not None and (not isinstance(ref, str) or len(ref) > 128):
        return None
    impact = doc.get("maxPriceImpactBps")
    if "maxPriceImpactBps" in doc and (type(impact) is not int or not 1 <= impact <= 10_000):
        return None
    return Expected(token_in, token_out, amount, slippage, ref, impact)


def unsupported_type(body: bytes) -> bool:
    """A request the API understands but cannot execute: 422 (checked after the field names)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return (isinstance(doc, dict) and set(doc) <= FIELDS and REQUIRED <= set(doc)
            and "type" in doc and doc["type"] not in ("market", "limit", "sniper"))


def expected_status(sub: Submission) -> int | None:
    """What the first request must answer; None where the oracle does not know."""
    if sub.content_type not in JSON_TYPES + NOT_JSON_TYPES + [None]:
        return None
    if sub.content_type not in JSON_TYPES:
        return 415
    if sub.encoding is not None and sub.encoding.strip().lower() != "identity":
        return 415
    if len(sub.body) > MAX_MESSAGE_BYTES:
        return 413
    if sub.key is not None and not KEY.fullmatch(sub.key):
        return 400
    if unsupported_type(sub.body):
        return 422
    return 202 if expected_order(sub.body) is not None else 400


# ---- the harness: one app on its own loop for all examples ----

class Harness:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.bus, self.keys = FakeBus(), InMemoryIdempotencyStore()
        app = build_app(ingress_config(), producer=self.bus, store=FakeStore(),
                        hub=StatusHub(client_capacity=64), metrics=IngressMetrics(),
                        idempotency=self.keys)

        async def start() -> TestClient[Any, Any]:
            server = TestServer(app)
            await server.start_server(**RUNNER_OPTIONS)  # as running_ingress runs it
            client: TestClient[Any, Any] = TestClient(server)
            await client.start_server()
            return client

        self.client = self.loop.run_until_complete(start())

    def close(self) -> None:
        self.loop.run_until_complete(self.client.close())
        self.loop.close()

    def reset(self) -> None:
        self.bus.sent.clear()
        self.keys.clear()

    def post(self, body: bytes, sub: Submission) -> tuple[int, dict[str, str], Any]:
        headers = {}
        if sub.content_type is not None:
            headers["Content-Type"] = sub.content_type
        if sub.key is not None:
            headers["Idempotency-Key"] = sub.key
        if sub.encoding is not None:
            headers["Content-Encoding"] = sub.encoding

        async def go() -> tuple[int, dict[str, str], Any]:
            async with self.client.post(URL, data=body, headers=headers) as resp:
                raw = await resp.read()
                return resp.status, dict(resp.headers), orjson.loads(raw)

        return self.loop.run_until_complete(go())

    def ws_submit(self, message: str | bytes) -> tuple[dict[str, Any], int | None]:
        async def go() -> tuple[dict[str, Any], int | None]:
            async with self.client.ws_connect(URL) as ws:
                if isinstance(message, bytes):
                    await ws.send_bytes(message)
                else:
                    await ws.send_str(message)
                msg = await ws.receive(timeout=5)
                assert msg.type is WSMsgType.TEXT, (msg.type, msg.data)
                doc: dict[str, Any] = msg.json()
                if doc["type"] == "error":
                    closing = await ws.receive(timeout=5)
                    assert closing.type is WSMsgType.CLOSE, closing
                    return doc, ws.close_code
                return doc, None

        return self.loop.run_until_complete(go())


class ErrorLogs(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    h = Harness()
    errors = ErrorLogs()
    logging.getLogger("ingress").addHandler(errors)
    try:
        yield h
    finally:
        logging.getLogger("ingress").removeHandler(errors)
        h.close()
    assert not errors.records, [r.getMessage() for r in errors.records]  # no "unhandled"


# ---- the properties ----

def check_error(status: int, doc: Any) -> None:
    assert 400 <= status < 500, (status, doc)
    error = doc["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    assert error["field"] is None or isinstance(error["field"], str)
    validate_response(URL, "post", status, doc)


def check_order(body: bytes, produced: bytes, order_id: str) -> None:
    order = decode_execute_order(produced)
    assert order.order_id == order_id and order.source == "http"
    want = expected_order(body)
    assert want is not None, "accepted an order the contract refuses"
    assert (order.token_in, order.token_out) == (want.token_in.mint, want.token_out.mint)
    assert order.amount_in == want.amount_in
    assert (order.slippage_bps, order.client_ref) == (want.slippage_bps, want.client_ref)
    assert order.max_price_impact_bps == want.max_price_impact_bps


@FUZZ
@given(sub=submissions())
def test_http_submit_never_5xx_and_every_answer_is_well_formed(
        harness: Harness, sub: Submission) -> None:
    harness.reset()
    status, _, doc = harness.post(sub.body, sub)
    event(f"status {status}")
    expected = expected_status(sub)
    assert expected is None or status == expected, (expected, status, doc)
    orders = harness.bus.on(ORDERS)
    if status != 202:
        check_error(status, doc)
        assert orders == []
    else:
        validate_response(URL, "post", 202, doc)
        assert len(orders) == 1, orders
        check_order(sub.body, orders[0].value, doc["orderId"])
    if sub.repeat is None:
        return

    status2, headers2, doc2 = harness.post(sub.repeat, sub)
    new_orders = harness.bus.on(ORDERS)[len(orders):]
    if status2 != 202:
        check_error(status2, doc2)
        assert new_orders == []
        if status2 == 422 and not unsupported_type(sub.repeat):
            assert status == 202 and doc2["error"]["code"] == "idempotency_key_reused"
    elif status == 202:  # the key's order again, produced once
        assert doc2 == doc and headers2["Idempotent-Replayed"] == "true"
        assert new_orders == []
    else:  # the first request was refused, so it reserved nothing
        assert len(new_orders) == 1
        check_order(sub.repeat, new_orders[0].value, doc2["orderId"])
    if sub.repeat == sub.body and expected_status(sub) is not None:
        assert status2 == status


@FUZZ
@given(doc=order_documents())
def test_oracle_and_api_agree_on_well_formed_json(harness: Harness, doc: dict[str, Any]
                                                  ) -> None:
    """Plain JSON bodies of (damaged) orders: the oracle's verdict is exactly the API's."""
    harness.reset()
    body = json.dumps(doc).encode("utf-8", "surrogatepass")
    sub = Submission(body, "application/json", None, None, None)
    status, _, answer = harness.post(body, sub)
    event(f"status {status} {answer['error']['code'] if status != 202 else ''}")
    assert status == expected_status(sub), answer
    if status == 202:
        check_order(body, harness.bus.on(ORDERS)[0].value, answer["orderId"])
    else:
        check_error(status, answer)


@settings(FUZZ, max_examples=120)
@given(message=st.one_of(
    order_documents().map(lambda d: json.dumps(d)),
    st.builds(lambda d, k: json.dumps({**d, "idempotencyKey": k}),
              order_documents(), st.text(HEADER_SAFE, max_size=130) | json_values),
    st.text(max_size=40), st.binary(max_size=40)))
def test_websocket_submit_is_accepted_or_refused_politely(
        harness: Harness, message: str | bytes) -> None:
    harness.reset()
    doc, close_code = harness.ws_submit(message)
    orders = harness.bus.on(ORDERS)
    if doc["type"] == "accepted":
        assert len(orders) == 1 and close_code is None
        order = decode_execute_order(orders[0].value)
        assert (order.order_id, order.source) == (doc["orderId"], "ws")
        assert doc["order"] == order.to_json()
    else:
        assert doc["type"] == "error" and orders == []
        error = doc["error"]
        assert isinstance(error["code"], str) and isinstance(error["message"], str)
        assert error["field"] is None or isinstance(error["field"], str)
        assert close_code == WSCloseCode.POLICY_VIOLATION


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd", "x-unknown"])
def test_compressed_bodies_are_415(harness: Harness, encoding: str) -> None:
    """Bodies are never decompressed: any Content-Encoding but identity is a JSON 415."""
    harness.reset()
    body = gzip.compress(b'{"tokenIn": "SOL", "tokenOut": "USDC", "amount": "1"}')
    sub = Submission(body, "application/json", None, encoding, None)
    status, _, doc = harness.post(body, sub)
    check_error(status, doc)
    assert (status, doc["error"]["code"], doc["error"]["field"]) == (
        415, "unsupported_content_encoding", "Content-Encoding")
    assert harness.bus.sent == []


def test_the_oracle_knows_the_edges() -> None:
    """The oracle itself, on the cases the issue lists (so a lenient oracle cannot hide bugs)."""
    def ok(**fields: Any) -> bool:
        doc = {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "1.5", **fields}
        return expected_order(orjson.dumps(doc)) is not None

    assert ok() and ok(amount="0.000000001") and ok(amount=" 2. ") and ok(slippageBps=5000)
    assert ok(tokenIn=USDT.mint, amount="0.000001") and ok(amount="18446744073.709551615")
    assert not ok(tokenIn="DOGE") and not ok(tokenOut="SOL") and not ok(tokenOut=SOL.mint)
    assert not ok(amount="0") and not ok(amount="-1") and not ok(amount="1.0000000001")
    assert not ok(tokenIn=USDC.mint, tokenOut="SOL", amount="0.0000001")
    assert not ok(amount="18446744073.709551616") and not ok(amount=1.5)
    assert not ok(amount="1e3") and not ok(slippageBps=-1) and not ok(slippageBps=5001)
    assert not ok(slippageBps=True) and not ok(slippageBps=50.0) and not ok(extra=1)
    assert ok(type="market") and ok(maxPriceImpactBps=1) and ok(maxPriceImpactBps=10_000)
    assert not ok(type="limit") and not ok(type=None) and not ok(maxPriceImpactBps=0)
    assert not ok(maxPriceImpactBps=10_001) and not ok(maxPriceImpactBps=100.0)
    assert not ok(maxPriceImpactBps=True) and not ok(maxPriceImpactBps=None)
    assert unsupported_type(orjson.dumps({"tokenIn": "x", "tokenOut": "y", "amount": 1,
                                          "type": "stop"}))
    assert not unsupported_type(orjson.dumps({"tokenIn": "x", "tokenOut": "y", "amount": 1,
                                              "type": "limit"}))
    assert not unsupported_type(orjson.dumps({"tokenIn": "x", "amount": 1, "type": "limit"}))
