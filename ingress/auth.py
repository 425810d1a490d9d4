"""Bearer API keys on every ``/api/`` route, per-key rate limits, and who a request is.

- ``Authorization: Bearer ofk_…`` is checked whenever it is sent (a bad key is a 401, on
  loopback too); without it, a request is anonymous, which only an ingress listening on
  loopback accepts (``required`` otherwise: ``ORDERFLOW_HTTP_HOST`` beyond 127.0.0.1/::1).
- WebSockets authenticate the same way: the header on the upgrade request, or, because a
  browser cannot set headers on a WebSocket, the key as the subprotocol ``bearer.<key>``
  offered beside ``orderflow`` (``new WebSocket(url, ["orderflow", "bearer." + key])``);
  the server answers ``orderflow``, never the key. Only on an upgrade, only once (header
  and subprotocol together are refused), never in the URL (URLs end up in logs).
- A ``read`` key may not submit (403 ``insufficient_scope``).
- Each key has a token bucket (its ``rate_per_s`` and ``burst``): beyond it, 429
  ``rate_limited`` with ``Retry-After`` in whole seconds.
- ``/api/openapi.json``, the UI, ``/docs``, ``/healthz`` and ``/metrics`` are not API calls.

Keys are looked up at most every :data:`KEY_CACHE_S` per key, so a revocation takes
effect within that.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from ipaddress import ip_address

from aiohttp import hdrs, web

from ingress.api_keys import ApiKey, ApiKeyStore, StoredKey, parse_token, verify
from ingress.responses import error_response

KEY_CACHE_S = 5.0
SUBPROTOCOL = "orderflow"  # what the server answers to a WebSocket that offers it
BEARER_PROTOCOL = "bearer."
API_KEY = web.RequestKey("api_key", ApiKey)
PUBLIC_PATHS = frozenset({"/api/openapi.json"})
TRADE_PATHS = frozenset({"/api/orders/execute"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def request_key(request: web.Request) -> ApiKey | None:
    """The key this request authenticated with; None for an anonymous loopback request."""
    return request.get(API_KEY)


@dataclass
class TokenBucket:
    rate_per_s: float
    burst: int
    tokens: float
    updated: float

    def take(self, now: float) -> float:
        """Take one token: 0 if there was one, else the seconds until there is."""
        self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate_per_s)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate_per_s


class Auth:
    def __init__(self, store: ApiKeyStore | None, *, required: bool,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self.required = required
        self._clock = clock
        self._cache: dict[str, tuple[float, StoredKey | None]] = {}
        self._buckets: dict[str, TokenBucket] = {}

    async def _find(self, key_id: str) -> StoredKey | None:
        now = self._clock()
        hit = self._cache.get(key_id)
        if hit is not None and now - hit[0] < KEY_CACHE_S:
            return hit[1]
        assert self._store is not None
        stored = await self._store.find(key_id)
        if len(self._cache) > 10_000:  # unknown ids must not grow it without bound
            self._cache.clear()
        self._cache[key_id] = (now, stored)
        return stored

    async def authenticate(self, header: str | None) -> ApiKey | web.Response | None:
        """The key, an error response, or None (anonymous)."""
        if header is None:
            if self.required:
                return _unauthorized("unauthorized", "this ingress listens beyond loopback: "
                                     "send Authorization: Bearer <API key> "
                                     "(`orderflow keys create`)")
            return None
        scheme, _, token = header.strip().partition(" ")
        parsed = parse_token(token.strip()) if scheme.lower() == "bearer" else None
        if parsed is None:
            return _unauthorized("invalid_authorization",
                                 "Authorization must be `Bearer ofk_<keyId>_<secret>`")
        if self._store is None:
            return _unauthorized("invalid_api_key", "this ingress has no API keys")
        key = verify(await self._find(parsed[0]), parsed[1])
        if key is None:
            return _unauthorized("invalid_api_key", "unknown or revoked API key")
        return key

    def throttle(self, key: ApiKey) -> float:
        """Seconds to wait before this key's next request (0: go now)."""
        now = self._clock()
        bucket = self._buckets.get(key.key_id)
        if bucket is None or (bucket.rate_per_s, bucket.burst) != (key.rate_per_s, key.burst):
            bucket = TokenBucket(key.rate_per_s, key.burst, float(key.burst), now)
            self._buckets[key.key_id] = bucket
        return bucket.take(now)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/api/") or request.path in PUBLIC_PATHS:
            return await handler(request)
        credentials = authorization(request)
        if isinstance(credentials, web.Response):
            return credentials
        outcome = await self.authenticate(credentials)
        if isinstance(outcome, web.Response):
            return outcome
        if outcome is not None:
            wait = self.throttle(outcome)
            if wait > 0:
                response = error_response(429, "rate_limited",
                                          f"API key {outcome.name!r} is over its rate "
                                          f"({outcome.rate_per_s:g}/s, burst {outcome.burst})")
                response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
                return response
            trading = request.method not in ("GET", "HEAD", "OPTIONS") \
                or request.path in TRADE_PATHS
            if trading and not outcome.can_trade:
                return error_response(403, "insufficient_scope",
                                      f"API key {outcome.name!r} has scope {outcome.scope!r}; "
                                      "submitting orders needs scope 'trade'")
            request[API_KEY] = outcome
        return await handler(request)


def authorization(request: web.Request) -> str | web.Response | None:
    """The request's ``Authorization`` value: the header, or on a WebSocket upgrade the
    ``bearer.<key>`` subprotocol as ``Bearer <key>``; a 401 when it is ambiguous."""
    header = request.headers.get(hdrs.AUTHORIZATION)
    if request.headers.get(hdrs.UPGRADE, "").lower() != "websocket":
        return header
    offered = [p.strip() for value in request.headers.getall(hdrs.SEC_WEBSOCKET_PROTOCOL, [])
               for p in value.split(",")]
    keys = [p.removeprefix(BEARER_PROTOCOL) for p in offered if p.startswith(BEARER_PROTOCOL)]
    if not keys:
        return header
    if header is not None or len(keys) > 1:
        return _unauthorized("invalid_authorization", "send one API key, once: the "
                             "Authorization header or one bearer.<key> subprotocol")
    if SUBPROTOCOL not in offered:
        return _unauthorized("invalid_authorization", f"offer the subprotocol {SUBPROTOCOL!r} "
                             "beside bearer.<key>: the server answers with it, never the key")
    return f"Bearer {keys[0]}"


def _unauthorized(code: str, message: str) -> web.Response:
    response = error_response(401, code, message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="orderflow"'
    return response
