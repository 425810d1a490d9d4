"""The Postman collection is what ``ingress/openapi.json`` generates (regenerate with
``python -m ingress.postman``), and ``/docs`` serves the reference page from the ingress
itself (no CDN: every script and stylesheet it loads is its own)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ingress import postman
from ingress.app import RUNNER_OPTIONS, build_app
from ingress.hub import StatusHub
from orderflow.settings import REPO_ROOT
from tests.unit.test_ingress_fakes import FakeBus, FakeStore, ingress_config

DOC = json.loads((REPO_ROOT / "ingress" / "openapi.json").read_text())


def test_the_committed_postman_collection_is_generated_from_the_openapi_document() -> None:
    committed = (REPO_ROOT / postman.OUTPUT).read_text()
    assert committed == postman.render(), "run: python -m ingress.postman"


def test_the_collection_has_every_operation_with_bearer_auth() -> None:
    c = postman.collection(DOC)
    requests = [(i["request"]["method"], "/" + "/".join(i["request"]["url"]["path"]))
                for folder in c["item"] for i in folder["item"]]
    documented = [(m.upper(), re.sub(r"\{(\w+)\}", r":\1", p))
                  for p, item in DOC["paths"].items() for m in item]
    assert sorted(requests) == sorted(documented)
    assert c["auth"]["bearer"][0]["value"] == "{{apiKey}}"
    execute = next(i["request"] for f in c["item"] for i in f["item"]
                   if i["request"]["method"] == "POST")
    assert json.loads(execute["body"]["raw"])["tokenIn"] == "SOL"


@pytest.fixture
async def client() -> AsyncIterator[TestClient[Any, Any]]:
    app = build_app(ingress_config(), producer=FakeBus(), store=FakeStore(), hub=StatusHub())
    server = TestServer(app)
    await server.start_server(**RUNNER_OPTIONS)
    async with TestClient(server) as c:
        yield c


async def test_docs_page_is_served_by_the_ingress_without_a_cdn(
        client: TestClient[Any, Any]) -> None:
    async with client.get("/docs") as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
        html = await resp.text()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith(("/", "data:", "#")) for s in sources), sources
    async with client.get("/docs/docs.js") as resp:
        assert resp.status == 200 and resp.content_type == "text/javascript"
        script = await resp.text()
    assert "/api/openapi.json" in script and "http" not in script.replace("https?", "")
