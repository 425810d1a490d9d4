"""API keys: what a bearer token is, how it is checked, and where keys are kept.

A token is ``ofk_<keyId>_<secret>``: ``keyId`` (12 hex characters) finds the key's row, the
secret (32 random bytes, base64url) proves it. Only ``sha256(secret)`` is stored: the
secret is random and long, so a slow password hash would add nothing but latency; the
comparison is constant-time. The token is shown once, by ``orderflow keys create``.

Scopes: ``read`` reads orders, quotes, markets and the wallet, and follows statuses;
``trade`` may also submit orders. A key sees only the orders it submitted
(:meth:`ApiKeyStore.record_order`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pipeline.errors import InvalidOrder

SCOPES = ("trade", "read")
PREFIX = "ofk"
_TOKEN = re.compile(r"^ofk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DEFAULT_RATE_PER_S = 20.0
DEFAULT_BURST = 40


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as the API sees it (never its secret or hash)."""

    key_id: str
    name: str
    scope: str
    rate_per_s: float = DEFAULT_RATE_PER_S
    burst: int = DEFAULT_BURST
    created_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def can_trade(self) -> bool:
        return self.scope == "trade"


@dataclass(frozen=True, slots=True)
class StoredKey:
    key: ApiKey
    secret_hash: bytes


@dataclass(frozen=True, slots=True)
class NewKey:
    """A created key and its token (shown once, never stored)."""

    key: ApiKey
    token: str
    secret_hash: bytes


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidOrder("invalid_key_name", "a key name is 1..64 letters, digits, '_', '.' "
                           "or '-', starting with a letter or digit", field="name")
    return name


def new_key(name: str, scope: str, *, rate_per_s: float = DEFAULT_RATE_PER_S,
            burst: int = DEFAULT_BURST) -> NewKey:
    if scope not in SCOPES:
        raise InvalidOrder("invalid_scope", f"scope must be one of {', '.join(SCOPES)}",
                           field="scope")
    if not (rate_per_s > 0 and burst >= 1):
        raise InvalidOrder("invalid_rate", "the rate must be positive and the burst >= 1",
                           field="rate")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey(key_id, check_name(name), scope, rate_per_s, burst)
    return NewKey(key, f"{PREFIX}_{key_id}_{secret}", hash_secret(secret))


def parse_token(token: str) -> tuple[str, str] | None:
    """``(keyId, secret)`` of a well-formed token, else None."""
    m = _TOKEN.fullmatch(token)
    return None if m is None else (m.group(1), m.group(2))


def verify(stored: StoredKey | None, secret: str) -> ApiKey | None:
    """The key if ``secret`` is its secret and it is not revoked (constant-time compare)."""
    if stored is None:
        hmac.compare_digest(hash_secret(secret), bytes(32))  # same work for unknown ids
        return None
    if not hmac.compare_digest(hash_secret(secret), stored.secret_hash):
        return None
    return None if stored.key.revoked_at is not None else stored.key


def scoped_key(idempotency_key: str | None, key: ApiKey) -> str | None:
    """An Idempotency-Key within one API key's space (two keys' equal idempotency keys are
    different orders); within the idempotency key's 128 characters."""
    if idempotency_key is None:
        return None
    return f"{key.key_id}:{hashlib.sha256(idempotency_key.encode()).hexdigest()}"


class ApiKeyStore(Protocol):
    """Where keys and the orders each key submitted are kept.

    Every method raises :class:`ingress.ports.StoreUnavailable` when it cannot answer.
    """

    async def find(self, key_id: str) -> StoredKey | None: ...

    async def create(self, new: NewKey) -> None:
        """Store the key; :class:`InvalidOrder` ``key_name_taken`` if its name is in use by a
        key that is not revoked."""
        ...

    async def list_keys(self) -> list[ApiKey]: ...

    async def revoke(self, name_or_id: str) -> ApiKey | None:
        """Revoke the key (by name or keyId); None if there is no such live key."""
        ...

    async def record_order(self, order_id: str, key_id: str) -> None:
        """``key_id`` submitted ``order_id`` (idempotent)."""
        ...

    async def owned(self, key_id: str, order_ids: Sequence[str]) -> set[str]:
        """Which of ``order_ids`` this key submitted."""
        ...
