"""``GET /docs``: the API reference, a plain HTML page and ES module (``ingress/apidocs/``)
that render the ingress's own OpenAPI document in the browser; nothing from a CDN."""

from __future__ import annotations

from importlib import resources

from aiohttp import web

_ASSETS = {"index.html": "text/html", "docs.js": "text/javascript"}


def _asset(name: str) -> bytes:
    return resources.files("ingress").joinpath("apidocs", name).read_bytes()


def register(app: web.Application) -> None:
    async def page(_request: web.Request) -> web.Response:
        return web.Response(body=_asset("index.html"), content_type=_ASSETS["index.html"],
                            charset="utf-8")

    async def script(_request: web.Request) -> web.Response:
        return web.Response(body=_asset("docs.js"), content_type=_ASSETS["docs.js"],
                            charset="utf-8")

    app.router.add_get("/docs", page)
    app.router.add_get("/docs/docs.js", script)
