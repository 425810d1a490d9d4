"""Who may use the localnet's admin endpoints: loopback peers holding the admin token.

``/admin/faults``, ``/admin/clock`` (both servers) and the market's faucet change the
simulated world: they mint money and switch faults on. Any web page the operator opens
could otherwise POST to them, because a browser sends a cross-origin ``text/plain`` POST
without asking (a "simple request", no CORS preflight). So every admin request must

* come from a loopback address (403 otherwise): the endpoints are local tools;
* carry ``Authorization: Bearer <token>`` (401 otherwise): a custom header is never
  sent cross-origin without a preflight, which these servers never approve, and a page
  cannot know the token anyway;
* if it has a body (POST/PUT/PATCH), declare ``Content-Type: application/json``
  (415 otherwise), so that no "simple" form or text body is ever acted upon.

The token is configured with ``ORDERFLOW_LOCALNET_ADMIN_TOKEN``. Unset, the server
generates a random one at start and writes it to ``<data dir>/localnet-admin-token``
(mode 0600): only the path is logged, never the token. Local callers (the supervisor,
the bench, the tests) read it with :func:`read_token` and send :func:`auth_headers`.

This module must not import the engine (``pipeline``, ``orderflow``, ``ingress``, ``sinks``).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import orjson
from aiohttp import web

TOKEN_ENV = "ORDERFLOW_LOCALNET_ADMIN_TOKEN"
TOKEN_FILE = "localnet-admin-token"
ADMIN_TOKEN_KEY = web.AppKey("localnet_admin_token", str)
ADMIN_PATHS_KEY = web.AppKey("localnet_admin_paths", frozenset[str])
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def new_token() -> str:
    """A fresh random token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def token_path(data_dir: Path | str) -> Path:
    return Path(data_dir) / TOKEN_FILE


def write_token_file(data_dir: Path | str, token: str) -> Path:
    """Write ``token`` to the data dir's token file, readable by its owner only (0600).

    Written to a 0600 temporary file and renamed, so the token is never readable by others,
    not even for a moment, and a reader never sees half a token.
    """
    path = token_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, token.encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return path


def resolve_token(configured: str | None, data_dir: Path | str) -> tuple[str, Path | None]:
    """The token to require: the configured one, else a new one written to the data dir.

    Returns ``(token, path)``; ``path`` is where a generated token was written (``None``
    when it was configured). Log the path, never the token.
    """
    if configured:
        return configured, None
    token = new_token()
    return token, write_token_file(data_dir, token)


def read_token(data_dir: Path | str, env: Mapping[str, str] | None = None) -> str | None:
    """For local callers: the configured token, else the one the localnet wrote, else None."""
    env = os.environ if env is None else env
    configured = env.get(TOKEN_ENV)
    if configured:
        return configured
    try:
        return token_path(data_dir).read_text().strip() or None
    except FileNotFoundError:
        return None


def auth_headers(token: str | None) -> dict[str, str]:
    """Headers an admin request needs (JSON body and the bearer token)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _refuse(status: int, message: str, **headers: str) -> web.Response:
    return web.Response(body=orjson.dumps({"error": message}), status=status,
                        content_type="application/json", headers=headers)


def _is_loopback(remote: str | None) -> bool:
    if remote is None:
        return False
    try:
        return ipaddress.ip_address(remote.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def check(request: web.Request, token: str) -> web.Response | None:
    """The refusal for an admin request that may not pass, or ``None`` if it may."""
    if not _is_loopback(request.remote):
        return _refuse(403, "admin endpoints answer loopback clients only")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                             token.encode()):
        return _refuse(401, "admin endpoints need 'Authorization: Bearer <token>' "
                            f"(see {TOKEN_ENV})", **{"WWW-Authenticate": "Bearer"})
    if request.method in _BODY_METHODS and request.content_type != "application/json":
        return _refuse(415, "admin endpoints take 'Content-Type: application/json' only")
    return None


def guard(app: web.Application, token: str | None, paths: frozenset[str]) -> str:
    """Protect ``/admin/*`` and ``paths`` of ``app`` with ``token`` (a random one if None).

    Returns the token in force (also at ``app[ADMIN_TOKEN_KEY]``). Must be called before
    the app is frozen; adds a middleware that runs before the app's others, so a refused
    request never reaches a fault switch.
    """
    app[ADMIN_TOKEN_KEY] = token = token or new_token()
    app[ADMIN_PATHS_KEY] = paths

    @web.middleware
    async def admin_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path.startswith("/admin/") or path in paths:
            refusal = check(request, token)
            if refusal is not None:
                return refusal
        return await handler(request)

    app.middlewares.insert(0, admin_guard)
    return token


__all__ = [
    "ADMIN_TOKEN_KEY",
    "TOKEN_ENV",
    "TOKEN_FILE",
    "auth_headers",
    "check",
    "guard",
    "new_token",
    "read_token",
    "resolve_token",
    "token_path",
    "write_token_file",
]
