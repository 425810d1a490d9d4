"""A Postman collection (v2.1) generated from ``ingress/openapi.json``, so the two cannot
disagree: ``python -m ingress.postman`` writes ``docs/orderflow.postman_collection.json``
and a test fails when the committed file is not what this generates.

Variables: ``baseUrl`` (default ``http://127.0.0.1:3000``) and ``apiKey`` (sent as
``Authorization: Bearer``; leave empty on loopback). Optional query parameters are listed
disabled, with their descriptions; request bodies are the document's first example.
"""

from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any

SCHEMA = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
OUTPUT = Path("docs") / "orderflow.postman_collection.json"


def _resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def _request(doc: dict[str, Any], path: str, method: str, op: dict[str, Any]
             ) -> dict[str, Any]:
    params = [_resolve(doc, p) for p in op.get("parameters", [])]
    segments = [f":{s[1:-1]}" if s.startswith("{") else s for s in path.strip("/").split("/")]
    url: dict[str, Any] = {
        "raw": "{{baseUrl}}/" + "/".join(segments),
        "host": ["{{baseUrl}}"], "path": segments,
    }
    query = [{"key": p["name"], "value": str(p.get("example", p.get("schema", {})
                                                  .get("default", ""))),
              "description": p.get("description", ""), "disabled": not p.get("required")}
             for p in params if p["in"] == "query"]
    if query:
        url["query"] = query
        enabled = "&".join(f"{q['key']}={q['value']}" for q in query if not q["disabled"])
        url["raw"] += f"?{enabled}" if enabled else ""
    variables = [{"key": p["name"], "value": "", "description": p.get("description", "")}
                 for p in params if p["in"] == "path"]
    if variables:
        url["variable"] = variables
    request: dict[str, Any] = {"method": method.upper(), "url": url,
                               "description": op.get("description", op.get("summary", ""))}
    if op.get("security") == []:
        request["auth"] = {"type": "noauth"}
    body = op.get("requestBody")
    if body is not None:
        content = _resolve(doc, body)["content"]["application/json"]
        examples: dict[str, Any] = content.get("examples") or {}
        first: dict[str, Any] = next(iter(examples.values()), {})
        example = first.get("value", {})
        request["header"] = [{"key": "Content-Type", "value": "application/json"}]
        request["body"] = {"mode": "raw", "raw": json.dumps(example, indent=2),
                           "options": {"raw": {"language": "json"}}}
    return request


def collection(doc: dict[str, Any]) -> dict[str, Any]:
    folders: dict[str, list[dict[str, Any]]] = {t["name"]: [] for t in doc.get("tags", [])}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            tag = (op.get("tags") or ["other"])[0]
            folders.setdefault(tag, []).append({
                "name": op.get("summary") or f"{method.upper()} {path}",
                "request": _request(doc, path, method, op)})
    descriptions = {t["name"]: t.get("description", "") for t in doc.get("tags", [])}
    return {
        "info": {"name": doc["info"]["title"], "description": doc["info"].get("description", ""),
                 "version": doc["info"]["version"], "schema": SCHEMA},
        "auth": {"type": "bearer", "bearer": [{"key": "token", "value": "{{apiKey}}",
                                               "type": "string"}]},
        "variable": [{"key": "baseUrl", "value": "http://127.0.0.1:3000"},
                     {"key": "apiKey", "value": ""}],
        "item": [{"name": name, "description": descriptions.get(name, ""), "item": items}
                 for name, items in folders.items() if items],
    }


def render() -> str:
    doc = json.loads(resources.files("ingress").joinpath("openapi.json").read_text())
    return json.dumps(collection(doc), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT
    target.write_text(render())
    print(f"wrote {target}")
