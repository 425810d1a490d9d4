"""Idempotency keys: one key with one request is one order, however often it is sent.

A client sends ``Idempotency-Key: <key>`` on ``POST /api/orders/execute`` (or
``"idempotencyKey"`` in the first message of ``WS /api/orders/execute``):

* the first request with a key reserves it for a new orderId and produces the order;
* a later request with the same key and the same validated request (same
  :func:`fingerprint`) gets the same orderId back and produces nothing;
* the same key with a different request is refused (422 ``idempotency_key_reused``);
* if producing failed (or the process died) after the key was reserved, the key
  still points at the reserved orderId, and a retry with the key produces
  *that* order (the engine de-duplicates by orderId), never a second one;
* concurrent requests with one key wait for each other: exactly one produces.

Keys are 1..128 printable ASCII characters, global (there are no accounts), and
remembered for :data:`KEY_TTL_S` (24 hours) from their first use.

:class:`IdempotencyStore` is the port; :class:`ingress.pg_idempotency.PostgresIdempotencyStore`
is the durable one (table ``idempotency_keys``, ``sinks/migrations/002_idempotency.sql``) and
:class:`InMemoryIdempotencyStore` serves tests and single-process use.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import orjson

from pipeline.errors import InvalidOrder, TransientError
from pipeline.wire import ExecuteOrder

IDEMPOTENCY_HEADER = "Idempotency-Key"
WS_KEY_FIELD = "idempotencyKey"
MAX_KEY_CHARS = 128
KEY_TTL_S = 24 * 3600
REPLAYED_HEADER = "Idempotent-Replayed"
_KEY = re.compile(r"[\x20-\x7e]{1,128}")  # 1..MAX_KEY_CHARS printable ASCII

Produce = Callable[[ExecuteOrder], Awaitable[object]]


class IdempotencyKeyReused(InvalidOrder):
    """The key was used before for a different request (HTTP 422)."""

    default_code = "idempotency_key_reused"


class IdempotencyKeyBusy(TransientError):
    """Another request with this key is still producing and did not finish in time (409)."""

    default_code = "idempotency_key_in_progress"


def parse_key(value: object, *, field: str) -> str:
    """A valid key, or :class:`InvalidOrder` ``invalid_idempotency_key`` naming ``field``."""
    if not isinstance(value, str) or not _KEY.fullmatch(value):
        raise InvalidOrder("invalid_idempotency_key",
                           f"{field} must be 1..{MAX_KEY_CHARS} printable ASCII characters",
                           field=field)
    return value


def key_from_headers(headers: Mapping[str, str]) -> str | None:
    """The request's ``Idempotency-Key``, None without one; exactly one header is allowed."""
    getall = getattr(headers, "getall", None)
    values: list[str] = (list(getall(IDEMPOTENCY_HEADER, [])) if getall is not None
                         else [v for v in [headers.get(IDEMPOTENCY_HEADER)] if v is not None])
    if not values:
        return None
    if len(values) > 1:
        raise InvalidOrder("invalid_idempotency_key",
                           f"send at most one {IDEMPOTENCY_HEADER} header",
                           field=IDEMPOTENCY_HEADER)
    return parse_key(values[0], field=IDEMPOTENCY_HEADER)


def fingerprint(order: ExecuteOrder) -> str:
    """sha256 of the canonical JSON of the validated request.

    Validated means normalized: symbols are mints, the amount is in base units and
    an omitted slippage is the default, so ``"SOL"``/``"1.50"`` and the SOL mint/``"1.5"``
    are the same request. The orderId, the submission time and the transport (HTTP
    or WebSocket) are not part of it.
    """
    canonical = {"v": 1, "type": "market", "tokenIn": order.token_in,
                 "tokenOut": order.token_out, "amountIn": order.amount_in,
                 "slippageBps": order.slippage_bps, "clientRef": order.client_ref}
    if order.max_price_impact_bps is not None:  # absent: fingerprints from before it still match
        canonical["maxPriceImpactBps"] = order.max_price_impact_bps
    terms = order.terms
    if not terms.v1:  # type, expiry and terms; a plain market order's fingerprint is unchanged
        canonical.update(type=terms.order_type.value, **terms.to_json())
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True, slots=True)
class Claim:
    """What a key stands for after :meth:`IdempotencyStore.claim`."""

    order: ExecuteOrder  # the key's order: this request's, or the earlier request's
    replayed: bool  # the key was already reserved by an earlier request
    produced: bool  # this call produced the order to ``orders``


class IdempotencyStore(Protocol):
    async def claim(self, key: str, fingerprint: str, order: ExecuteOrder,
                    produce: Produce) -> Claim:
        """Reserve ``key`` for ``order`` (or find its earlier order) and make sure it is produced.

        ``produce`` is called at most once per call, with the key's order, and only
        while no other request with this key is producing. Raises
        :class:`IdempotencyKeyReused` for another fingerprint, :class:`IdempotencyKeyBusy`
        when the key stays locked too long, ``StoreUnavailable`` when the store cannot
        answer, and whatever ``produce`` raises (the key then stays reserved, unproduced,
        for a retry).
        """
        ...

    async def purge_expired(self) -> int:
        """Forget expired keys; return how many."""
        ...


@dataclass(slots=True)
class _Entry:
    fingerprint: str
    order: ExecuteOrder
    expires_at: float
    produced: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class InMemoryIdempotencyStore:
    """The same semantics in one process's memory (tests, and a single ingress without a DB)."""

    def __init__(self, *, ttl_s: float = KEY_TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._entries: dict[str, _Entry] = {}

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    async def claim(self, key: str, fingerprint: str, order: ExecuteOrder,
                    produce: Produce) -> Claim:
        while True:
            entry = self._entries.get(key)
            ours = entry is None or entry.expires_at <= self._clock()
            if entry is None or ours:
                entry = _Entry(fingerprint, order, self._clock() + self._ttl_s)
                self._entries[key] = entry
            if entry.fingerprint != fingerprint:
                raise key_reused()
            async with entry.lock:
                if self._entries.get(key) is not entry:  # replaced after expiry meanwhile
                    continue
                if entry.produced:
                    return Claim(entry.order, replayed=not ours, produced=False)
                await produce(entry.order)
                entry.produced = True
                return Claim(entry.order, replayed=not ours, produced=True)

    async def purge_expired(self) -> int:
        now = self._clock()
        expired = [k for k, e in self._entries.items() if e.expires_at <= now]
        for k in expired:
            del self._entries[k]
        return len(expired)


def key_reused() -> IdempotencyKeyReused:
    return IdempotencyKeyReused(
        message="this idempotency key was already used for a different request; "
        "use a new key for a new order", field=IDEMPOTENCY_HEADER)
