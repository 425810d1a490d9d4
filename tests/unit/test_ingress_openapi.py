"""GET /api/openapi.json: a well-formed OpenAPI 3.1 document that matches the real routes.

Structural checks (every ``$ref`` resolves, every schema is valid JSON Schema 2020-12,
the documented operations are exactly the app's routes) plus the strongest check:
real responses of the real app validate against the documented schemas.
``openapi-spec-validator``, when installed, validates the document as well.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from ingress import health
from ingress.app import build_app
from ingress.hub import StatusHub
from orderflow.settings import REPO_ROOT
from pipeline.errors import InvalidOrder
from pipeline.tokens import KNOWN_TOKENS, SOL, U64_MAX, resolve_token, to_base_units
from pipeline.topics import ORDERS
from pipeline.wire import decode_execute_order
from tests.unit import test_ingress_fakes as fakes
from tests.unit.test_ingress_fakes import (
    FakeBus,
    FakeStore,
    Ingress,
    ingress_config,
    lifecycle,
    record,
)

ingress = fakes.ingress
DOC: dict[str, Any] = json.loads((REPO_ROOT / "ingress" / "openapi.json").read_text())
_URI = "urn:orderflow:openapi"
_REGISTRY: Registry[Any] = Registry().with_resource(
    _URI, Resource.from_contents(DOC, default_specification=DRAFT202012))
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = DOC
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def schema_validator(pointer: str) -> Draft202012Validator:
    """A validator for the schema at JSON pointer ``pointer`` (``/components/schemas/X``)."""
    return Draft202012Validator({"$ref": f"{_URI}#{pointer}"}, registry=_REGISTRY)


def validate_response(path: str, method: str, status: int, body: Any) -> None:
    """Raise unless ``body`` matches the documented JSON response of that operation/status."""
    responses = DOC["paths"][path][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {path} does not document {status}"
    response = responses[str(status)]
    ref = response.get("$ref")
    base = ref.removeprefix("#") if ref else (
        f"/paths/{_escape(path)}/{method}/responses/{status}")
    assert "application/json" in _resolve(response)["content"], (path, method, status)
    schema_validator(f"{base}/content/application~1json/schema").validate(body)
    assert_code_documented(_resolve(response), body, f"{method.upper()} {path} {status}")


def assert_code_documented(response: dict[str, Any], body: Any, where: str) -> None:
    """An error's ``code`` must be named (in backticks) where the document describes that status."""
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    if code is not None:
        assert f"`{code}`" in response["description"], f"{where}: code {code!r} undocumented"


def _walk(node: Any) -> Iterator[Any]:
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in children:
        yield from _walk(child)


def test_document_structure() -> None:
    assert DOC["openapi"] == "3.1.0"
    assert DOC["info"]["title"] and DOC["info"]["version"]
    operation_ids = []
    for path, item in DOC["paths"].items():
        assert path.startswith("/")
        for method, op in item.items():
            assert method in METHODS, (path, method)
            operation_ids.append(op["operationId"])
            assert op["responses"], (path, method)
            for status, response in op["responses"].items():
                assert status.isdigit() and 100 <= int(status) < 600
                assert _resolve(response)["description"]
            for name in [p["name"] for p in op.get("parameters", []) if p.get("in") == "path"]:
                assert f"{{{name}}}" in path
    assert len(operation_ids) == len(set(operation_ids))


def test_every_ref_resolves_and_every_schema_is_json_schema_2020_12() -> None:
    refs = [n["$ref"] for n in _walk(DOC) if isinstance(n, dict) and "$ref" in n]
    assert refs
    for ref in refs:
        assert ref.startswith("#/"), ref
        _resolve({"$ref": ref})
    for name, schema in DOC["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)
        schema_validator(f"/components/schemas/{name}")  # and its refs resolve in context
    for node in _walk(DOC["paths"]):
        if isinstance(node, dict) and isinstance(node.get("schema"), dict):
            Draft202012Validator.check_schema(node["schema"])


def test_documented_operations_are_exactly_the_routes() -> None:
    app = build_app(ingress_config(), producer=FakeBus(), store=FakeStore(), hub=StatusHub())
    routes = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        if route.method == "HEAD" or path in (None, "/") or path.startswith("/docs"):
            continue  # static UI files, the UI page and the reference page over this doc
        routes.add((route.method.lower(), path))
    documented = {(m, p) for p, item in DOC["paths"].items() for m in item}
    assert routes == documented


def test_the_request_example_is_valid_and_the_key_schema_matches_the_code() -> None:
    op = DOC["paths"]["/api/orders/execute"]["post"]
    content = op["requestBody"]["content"]["application/json"]
    validator = schema_validator("/components/schemas/OrderRequest")
    for example in content["examples"].values():
        validator.validate(example["value"])
    key = schema_validator("/components/parameters/IdempotencyKey/schema")
    assert key.is_valid("x" * 128) and key.is_valid("a b~")
    assert not any(key.is_valid(k) for k in ("", "x" * 129, "é", "\t"))


async def test_openapi_json_is_served(ingress: Ingress) -> None:
    async with ingress.client.get("/api/openapi.json") as resp:
        assert resp.status == 200
        assert resp.content_type == "application/json"
        assert await resp.json() == DOC


async def _json(ingress: Ingress, method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
    async with ingress.client.request(method, url, **kwargs) as resp:
        return resp.status, await resp.json()


async def test_real_responses_match_the_documented_schemas(
        ingress: Ingress, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "CACHE_S", 0.0)  # the 503 below must not be a cached 200
    execute = "/api/orders/execute"
    json_headers = {"Content-Type": "application/json"}
    good = orjson.dumps({"tokenIn": "SOL", "tokenOut": "USDC", "amount": "1.5"})
    cases: list[tuple[str, str, dict[str, Any], int]] = [
        ("post", execute, {"data": good, "headers": json_headers}, 202),
        ("post", execute, {"data": b"{", "headers": json_headers}, 400),
        ("post", execute, {"data": good, "headers": {**json_headers, "Idempotency-Key": ""}},
         400),
        ("post", execute, {"data": good, "headers": {"Content-Type": "text/plain"}}, 415),
        ("post", execute, {"data": b" " * 20_000, "headers": json_headers}, 413),
        ("post", execute, {"data": good, "headers": {**json_headers, "Idempotency-Key": "k"}},
         202),
        ("post", execute, {"data": good.replace(b"1.5", b"2"),
                           "headers": {**json_headers, "Idempotency-Key": "k"}}, 422),
        ("get", execute, {}, 405),
        ("get", "/api/orders/ws", {}, 426),
        ("get", "/api/orders", {}, 200),
        ("get", "/api/orders?limit=0", {}, 400),
        ("get", "/api/orders/order-missing", {}, 404),
        ("get", "/healthz", {}, 200),
    ]
    oid = "order-openapi-1"
    ingress.store.orders[oid] = record(oid, status="confirmed", venue="raydium",
                                       amount_out=5, amount_in_actual=7, executed_price="1.5",
                                       error_code=None, quotes=[{"venue": "raydium"}])
    ingress.store.events = lifecycle(oid)
    cases.append(("get", f"/api/orders/{oid}", {}, 200))
    for method, url, kwargs, expected in cases:
        status, body = await _json(ingress, method, url, **kwargs)
        assert status == expected, (method, url, body)
        path = "/api/orders/{orderId}" if url.startswith("/api/orders/order-") else (
            url.split("?")[0])
        validate_response(path, method, status, body)

    ingress.bus.down_topics.add(ORDERS)
    status, body = await _json(ingress, "post", execute, data=good, headers=json_headers)
    assert status == 503 and "orderId" in body
    validate_response(execute, "post", status, body)
    ingress.store.healthy = False
    status, body = await _json(ingress, "get", "/healthz")
    assert status == 503
    validate_response("/healthz", "get", status, body)


async def test_websocket_messages_match_the_documented_schemas(ingress: Ingress) -> None:
    def check(name: str, message: dict[str, Any]) -> None:
        schema_validator(f"/components/schemas/{name}").validate(message)

    request = {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "1", "idempotencyKey": "ws-k"}
    check("WsExecuteRequest", request)
    assert not schema_validator("/components/schemas/WsExecuteRequest").is_valid(
        {**request, "other": 1})
    async with ingress.client.ws_connect("/api/orders/execute") as ws:
        await ws.send_json(request)
        accepted = await ws.receive_json(timeout=5)
        check("WsAccepted", accepted)
    oid = accepted["orderId"]
    control = {"action": "subscribe", "orderId": oid, "after": f"{oid}:1:pending"}
    check("WsControl", control)
    ingress.store.events = lifecycle(oid)[:2]
    async with ingress.client.ws_connect(f"/api/orders/ws?orderId={oid}") as ws:
        check("WsStatus", await ws.receive_json(timeout=5))
        check("WsStatus", await ws.receive_json(timeout=5))
        check("WsSubscribed", await ws.receive_json(timeout=5))
        await ws.send_str("nonsense")
        check("WsError", await ws.receive_json(timeout=5))
        await ws.send_json({"action": "unsubscribe", "all": True})
        check("WsSubscribed", await ws.receive_json(timeout=5))
    await asyncio.sleep(0)


def test_openapi_spec_validator_accepts_the_document() -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(DOC)


API_METHODS = ("get", "post", "put", "patch", "delete")


def _concrete(path: str) -> str:
    """A path with each parameter filled (a value the route takes; only the method matters)."""
    return path.replace("{orderId}", "order-openapi-x").replace("{signature}", "1" * 64)


async def test_every_undocumented_method_on_an_api_path_is_a_documented_405(
        ingress: Ingress) -> None:
    not_allowed = DOC["components"]["responses"]["MethodNotAllowed"]
    checked = 0
    for path, item in DOC["paths"].items():
        if not path.startswith("/api/"):
            continue
        allowed = {m.upper() for m in item} | ({"HEAD"} if "get" in item else set())
        for method in API_METHODS:
            if method in item:
                continue
            async with ingress.client.request(method, _concrete(path)) as resp:
                body = await resp.json()
                assert resp.status == 405, (method, path, body)
                assert set(resp.headers["Allow"].replace(" ", "").split(",")) == allowed
            schema_validator("/components/responses/MethodNotAllowed/content/"
                             "application~1json/schema").validate(body)
            assert_code_documented(not_allowed, body, f"{method} {path}")
            checked += 1
    assert checked >= 10


async def test_every_error_the_execute_route_answers_is_documented_with_its_code(
        ingress: Ingress, monkeypatch: pytest.MonkeyPatch) -> None:
    """One request per error code the POST can answer (validate_response checks the code)."""
    good = {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "1"}
    json_headers = {"Content-Type": "application/json"}
    cases: list[tuple[Any, dict[str, str], int, str]] = [
        (b"{", json_headers, 400, "malformed_json"),
        (b"[]", json_headers, 400, "invalid_body"),
        ({**good, "x": 1}, {}, 400, "unknown_field"),
        ({"tokenIn": "SOL", "tokenOut": "USDC"}, {}, 400, "missing_field"),
        ({**good, "tokenIn": "DOGE"}, {}, 400, "unknown_token"),
        ({**good, "tokenOut": "sol"}, {}, 400, "same_token"),
        ({**good, "amount": "0"}, {}, 400, "invalid_amount"),
        ({**good, "slippageBps": 1.0}, {}, 400, "invalid_slippage"),
        ({**good, "maxPriceImpactBps": 0}, {}, 400, "invalid_max_price_impact"),
        ({**good, "clientRef": 5}, {}, 400, "invalid_client_ref"),
        (good, {"Idempotency-Key": "é"}, 400, "invalid_idempotency_key"),
        (good, {"Origin": "https://evil.example"}, 403, "forbidden_origin"),
        (b" " * 20_000, json_headers, 413, "payload_too_large"),
        (b"{}", {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
        (good, {"Content-Encoding": "gzip"}, 415, "unsupported_content_encoding"),
        ({**good, "type": "stop"}, {}, 422, "unsupported_order_type"),
        ({**good, "expiresAt": "2020-01-01T00:00:00Z"}, {}, 400, "invalid_expires_at"),
        ({**good, "type": "limit", "expiresAt": "2099-01-01T00:00:00Z"}, {}, 400,
         "invalid_expires_at"),
        ({**good, "limitPrice": "1"}, {}, 400, "invalid_field"),
        ({**good, "type": "sniper", "tokenOut": "0OIl", "expiresAt": "2030-01-01T00:00:00Z"},
         {}, 400, "invalid_mint"),
    ]
    for body, headers, status, code in cases:
        kwargs: dict[str, Any] = ({"json": body} if isinstance(body, dict)
                                  else {"data": body})
        got, doc = await _json(ingress, "post", "/api/orders/execute", headers=headers,
                               **kwargs)
        assert (got, doc["error"]["code"]) == (status, code), (body, headers, doc)
        validate_response("/api/orders/execute", "post", got, doc)
    ingress.bus.down_topics.add(ORDERS)
    got, doc = await _json(ingress, "post", "/api/orders/execute", json=good)
    assert (got, doc["error"]["code"]) == (503, "broker_unavailable")
    validate_response("/api/orders/execute", "post", got, doc)


def test_the_documented_token_values_are_the_registry() -> None:
    token = schema_validator("/components/schemas/Token")
    for t in KNOWN_TOKENS:
        for spelling in (t.symbol, t.symbol.lower(), t.symbol.title(), t.mint):
            assert token.is_valid(spelling), spelling
            resolve_token(spelling)
    for bad in ("DOGE", " SOL", "SOL ", "\u017fol", SOL.mint.lower(), SOL.mint[:-1], ""):
        assert not token.is_valid(bad), bad
        with pytest.raises(InvalidOrder):
            resolve_token(bad)


_AMOUNT = schema_validator("/components/schemas/OrderFields/properties/amount")


@settings(max_examples=400, deadline=None, derandomize=True, database=None)
@given(text=st.text(alphabet="0123456789. \t\u00a0-+eE,x", max_size=14)
       | st.from_regex(r"\s?[0-9]{0,4}\.?[0-9]{0,8}\s?", fullmatch=True))
def test_the_documented_amount_is_what_the_code_accepts(text: str) -> None:
    """Code accepts => the document's pattern matches; pattern matches (within the mint's
    decimals and u64, which a pattern cannot say) => the code accepts."""
    try:
        to_base_units(text, SOL.decimals)
        accepted = True
    except InvalidOrder:
        accepted = False
    documented = _AMOUNT.is_valid(text)
    if accepted:
        assert documented, text
    elif documented:
        fraction = text.strip().partition(".")[2]
        too_big = Decimal(text.strip()).scaleb(SOL.decimals) > U64_MAX
        assert too_big or len(fraction.rstrip("0")) > SOL.decimals, text


async def test_cursors_have_the_documented_format(ingress: Ingress) -> None:
    for i in range(3):
        oid = f"order-cursor-{i}"
        ingress.store.orders[oid] = record(oid, submitted_ms=1_700_000_000_000 + i)
    status, page = await _json(ingress, "get", "/api/orders?limit=1")
    assert status == 200 and page["nextBefore"]
    validate_response("/api/orders", "get", 200, page)  # the nextBefore pattern
    before = schema_validator("/paths/~1api~1orders/get/parameters/1/schema")
    assert before.is_valid(page["nextBefore"])
    for bad in (page["nextBefore"] + "!", page["nextBefore"] + "=", "a+b/"):
        assert not before.is_valid(bad)
        status, doc = await _json(ingress, "get", f"/api/orders?before={quote(bad)}")
        assert (status, doc["error"]["code"]) == (400, "invalid_cursor"), bad
        validate_response("/api/orders", "get", status, doc)


async def test_documented_examples_are_accepted_by_the_code(ingress: Ingress) -> None:
    content = DOC["paths"]["/api/orders/execute"]["post"]["requestBody"]["content"]
    for example in content["application/json"]["examples"].values():
        status, doc = await _json(ingress, "post", "/api/orders/execute", json=example["value"])
        assert status == 202, (example, doc)
    contract = orjson.loads((REPO_ROOT / "pipeline" / "contracts" / "orders.v1.schema.json"
                             ).read_bytes())
    for example in contract["examples"]:
        decode_execute_order(orjson.dumps(example))
