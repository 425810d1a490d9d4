"""JSON responses (orjson) and the one error shape every API route uses."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from pipeline.errors import OrderflowError


def json_response(data: Any, *, status: int = 200, headers: dict[str, str] | None = None
                  ) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, headers=headers,
                        content_type="application/json")


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field}}


def error_of(exc: OrderflowError) -> dict[str, Any]:
    return error_body(exc.code, exc.message, exc.field)


def error_response(status: int, code: str, message: str, field: str | None = None
                   ) -> web.Response:
    return json_response(error_body(code, message, field), status=status)
