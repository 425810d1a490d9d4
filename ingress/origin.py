"""Refuse cross-site requests that could trade or read the live feed.

A browser lets any web page open a WebSocket to any host (no CORS for WebSockets) and
send "simple" cross-site POSTs; it only tells the server who is asking in ``Origin``.
The ingress holds a hot wallet's orders, so a page the operator happens to open must
not be able to place one or read the all-orders feed. The rule, applied by
:func:`origin_guard` to every WebSocket upgrade and every request that is not
GET/HEAD/OPTIONS:

* no ``Origin`` header: a non-browser client (curl, bots, the bench); served;
* ``Origin`` equal to the origin the request came to (its ``Host``): our own UI; served;
* ``Origin`` in ``IngressConfig.allowed_origins`` (``ORDERFLOW_ALLOWED_ORIGINS``); served;
* anything else, ``null`` included: 403 ``forbidden_origin`` before any handler runs.

Plain GETs need no check: without CORS headers (the ingress sends none) a foreign
page cannot read their answers. Same-origin is judged on ``Host``, so a DNS-rebinding
page (its own name resolving to the ingress) passes; bind the ingress to loopback or
put it behind a proxy that checks ``Host`` when that matters.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import urlsplit

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

from ingress.responses import error_response

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(origin: str) -> str | None:
    """``scheme://host[:port]`` lower-cased, without the scheme's default port; None if it is
    not a web origin (``null``, a path, another scheme)."""
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/") \
            or parts.query or parts.fragment or parts.username is not None:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


class OriginPolicy:
    def __init__(self, allowed: Iterable[str] = ()) -> None:
        self._allowed = frozenset(o for o in map(normalize_origin, allowed) if o is not None)

    def allows(self, request: web.BaseRequest) -> bool:
        raw = request.headers.get(hdrs.ORIGIN)
        if raw is None:
            return True  # not a browser: a browser always sends Origin on these requests
        origin = normalize_origin(raw)
        if origin is None:
            return False
        if origin in self._allowed:
            return True
        scheme = origin.partition("://")[0]
        return origin == normalize_origin(f"{scheme}://{request.host}")


def needs_origin_check(request: web.BaseRequest) -> bool:
    upgrade = request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"
    return upgrade or request.method not in SAFE_METHODS


def origin_guard(policy: OriginPolicy) -> Middleware:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if needs_origin_check(request) and not policy.allows(request):
            log.warning("refused %s %s from origin %r", request.method, request.path,
                        request.headers.get(hdrs.ORIGIN))
            return error_response(
                403, "forbidden_origin", "requests from this web origin are not allowed; "
                "the ingress serves its own origin and ORDERFLOW_ALLOWED_ORIGINS")
        return await handler(request)

    return guard
