"""The admin HTTP routes: ``/admin/faults`` on both servers, ``/admin/clock`` on the RPC.

They are reached through :mod:`localnet.admin`'s guard (loopback and the admin token).
"""

from __future__ import annotations

import logging

import orjson
from aiohttp import web

from localnet.chain import Chain
from localnet.faults.config import MAX_ADVANCE, MAX_SLOT_MS, MIN_SLOT_MS, FaultConfigError, Json
from localnet.faults.controller import FaultController
from localnet.faults.parser import Reader

log = logging.getLogger(__name__)


def _json_response(doc: Json, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(doc), status=status, content_type="application/json")


def _bad(exc: FaultConfigError) -> web.Response:
    return _json_response({"error": str(exc), "field": exc.path}, 400)


async def _read_json(request: web.Request) -> Json:
    body = await request.read()
    try:
        return orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise FaultConfigError("", f"body is not valid JSON: {exc}") from None


def add_admin_routes(app: web.Application, controller: FaultController) -> None:
    """``GET/POST/PUT/DELETE /admin/faults`` for ``controller``; it is closed on shutdown."""

    async def get(request: web.Request) -> web.Response:
        return _json_response(controller.snapshot())

    async def post(request: web.Request) -> web.Response:
        try:
            return _json_response(controller.merge_config(await _read_json(request)))
        except FaultConfigError as exc:
            return _bad(exc)

    async def put(request: web.Request) -> web.Response:
        try:
            return _json_response(controller.replace_config(await _read_json(request)))
        except FaultConfigError as exc:
            return _bad(exc)

    async def delete(request: web.Request) -> web.Response:
        return _json_response(controller.reset())

    async def shutdown(app: web.Application) -> None:
        controller.closing.set()  # wake held requests so the server can stop

    app.router.add_get("/admin/faults", get)
    app.router.add_post("/admin/faults", post)
    app.router.add_put("/admin/faults", put)
    app.router.add_delete("/admin/faults", delete)
    app.on_shutdown.append(shutdown)


def add_clock_routes(app: web.Application, chain: Chain) -> None:
    """``GET/POST /admin/clock``: read the clock, change the slot time, advance slots now."""

    def doc() -> dict[str, Json]:
        return {"slot": chain.slot, "blockHeight": chain.block_height, "slotMs": chain.slot_ms}

    async def get(request: web.Request) -> web.Response:
        return _json_response(doc())

    async def post(request: web.Request) -> web.Response:
        try:
            r = Reader(await _read_json(request), "", ("slotMs", "advance"))
            slot_ms = r.opt_int("slotMs", MIN_SLOT_MS, MAX_SLOT_MS)
            advance = r.integer("advance", 0, 0, MAX_ADVANCE)
        except FaultConfigError as exc:
            return _bad(exc)
        if slot_ms is not None and slot_ms != chain.slot_ms:
            log.info("localnet slot time %d ms -> %d ms", chain.slot_ms, slot_ms)
            chain.set_slot_ms(slot_ms)
        if advance:
            log.info("localnet advancing %d slots at once (from slot %d)", advance, chain.slot)
            chain.advance(advance)
        return _json_response(doc())

    app.router.add_get("/admin/clock", get)
    app.router.add_post("/admin/clock", post)

