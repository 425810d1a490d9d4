"""Fault switches for the localnet JSON-RPC server and the local market: real faults, on the wire.

Everything is off by default. A fault is produced at the protocol level, so a client sees
exactly what a misbehaving node or API would send: an HTTP 429 with ``Retry-After``, an
HTTP 5xx page, a JSON-RPC ``-32005``/``-32603`` error, a response that comes late or never,
a ``sendTransaction`` that returns the signature and then never lands (or lands K slots
later). Nothing in the engine is mocked.

Configuration
=============

At start, from the environment (``orderflow localnet`` / ``orderflow up``)::

    ORDERFLOW_FAULTS='{"rpc": {...}, "venue": {...}}'     # inline JSON
    ORDERFLOW_FAULTS=@/path/to/faults.json                 # or a file holding that JSON

At runtime, on each server (localnet only; the market's is at its root, not under
``/swap/v1``)::

    GET    /admin/faults    -> the state document below
    POST   /admin/faults    body: a section; each top-level key given replaces that key
                            (merge), keys not given are kept with their state
    PUT    /admin/faults    body: a section; replaces the whole configuration
    DELETE /admin/faults    everything off, counters zeroed, RNG re-seeded with the same seed

A bad body is refused with ``400 {"error": "<path>: <reason>", "field": "<path>"}`` and
changes nothing. Unknown keys are refused (a typo must not silently disable a fault).

The RPC section (``"rpc"``)::

    {
      "seed": 7,                                   # RNG for rates and jitter; random if unset
      "latency": {"ms": 20, "jitterMs": 10,        # every request; per method, the entry
                  "methods": {"sendTransaction": {"ms": 300, "jitterMs": 0}}},  # replaces it
      "errors": [                                  # tried in order, first that fires wins
        {"kind": "http429", "methods": ["getSignatureStatuses"], "next": 2, "retryAfterS": 1},
        {"kind": "http503", "rate": 0.05},
        {"kind": "nodeBehind", "methods": ["sendTransaction"], "next": 1, "slotsBehind": 100},
        {"kind": "internalError", "rate": 0.01, "after": 10},
        {"kind": "timeout", "methods": ["sendTransaction"], "next": 1, "holdMs": null,
         "afterExecute": true}
      ],
      "drop":     {"next": 1, "sticky": true},     # sendTransaction accepted, never lands
      "landLate": {"rate": 0.2, "slots": 30}       # accepted, executed 30 slots later
    }

The venue section (``"venue"``) has ``seed``, ``latency`` (with ``"endpoints"`` instead of
``"methods"``) and ``errors`` (with ``"endpoints": ["quote", "swap"]``); no send rules.

Triggers. Every rule (error, drop, landLate) has exactly one of ``"next": N`` (fires on the
next N matching calls, then is spent: deterministic, for tests) or ``"rate": p`` (fires with
probability p in [0, 1], drawn from the server's seeded RNG), and optionally ``"after": K``
(the first K matching calls pass untouched before the trigger is armed). ``methods`` /
``endpoints`` absent or null means every method/endpoint; names are checked (Solana's
JSON-RPC method names; ``quote``/``swap``).

Error kinds (both servers unless noted):

``http429``        HTTP 429, ``Retry-After: <retryAfterS>`` (default 1). RPC body: the
                   JSON-RPC error object public RPC providers send (code 429); venue body:
                   ``{"code": 429, "message": "Rate limit exceeded"}``.
``http500``        HTTP 500, ``text/plain`` "Internal Server Error".
``http502/503/504`` HTTP 502/503/504, an HTML page like a load balancer's.
``timeout``        The response is held ``holdMs`` ms, then the call runs and answers
                   (default ``null`` = never: the request is held until the client gives
                   up and disconnects, or the server shuts down, and is not executed).
``nodeBehind``     RPC only: JSON-RPC error ``-32005`` "Node is behind by <slotsBehind>
                   slots", ``data: {"numSlotsBehind": N}`` (Agave's NodeUnhealthy).
``internalError``  RPC only: JSON-RPC error ``-32603`` "Internal error".

``"afterExecute": false`` (default): the fault happens before the call runs -- an error
means the call was not executed; a finite ``timeout`` delays it, then it runs and answers.
``"afterExecute": true``: the call runs first (a ``sendTransaction`` lands), then its answer
is replaced by the error or held (``timeout``) -- "it landed, but the client never heard".

JSON-RPC batches: latency is the largest of the calls'; rules are consulted once per call;
the first HTTP-level fault (``http*``/``timeout``) answers the whole batch; JSON-RPC-level
faults answer their own call only.

Send rules (RPC only), consulted by ``sendTransaction`` after preflight passed (a preflight
failure is answered as usual and consumes nothing), ``drop`` first, then ``landLate``;
a signature that already landed is never consulted:

``drop``      The signature is returned, the transaction is not executed: it is absent
              from ``getSignatureStatuses``, balances do not move, and its blockhash
              expires as on a real cluster. ``"sticky": true``: every later send of the
              same signature (a rebroadcast) is dropped too, until its blockhash expires;
              otherwise a rebroadcast is a new send and may land.
``landLate``  The signature is returned; the transaction executes ``slots`` (1..10000)
              slots later, under the rules of that slot (if its blockhash has expired by
              then, it never lands). ``"sticky": true``: rebroadcasts of a signature
              waiting to land are accepted and ignored; otherwise a rebroadcast may land it
              earlier (the late execution then finds it landed and does nothing).

Latency is applied to every request (faulted or not) before it runs; decisions are taken
when the request arrives, so "the next N calls" means the next N to arrive. One RNG per
server draws, per request, the jitter of each call that has some, then one number per
``rate`` rule consulted, in rule order. Only JSON-RPC (``POST /``) and the market's
``quote``/``swap`` are faulted: never ``GET /health``, ``/admin/*``, pools or the faucet.

Worth knowing when testing a client: solana-py's ``AsyncClient`` retries a request once
after a transport error, a read timeout included (``max_transport_retries=1`` by default).
So with ``{"kind": "timeout", "methods": ["sendTransaction"], "afterExecute": true}`` the
transaction lands, the first request times out, and the client's automatic retry is
answered ``-32002`` "This transaction has already been processed" -- as on a real node.

State document (``GET``, and the answer of ``POST``/``PUT``/``DELETE``)::

    {"config":   <the normalized section, every field spelled out>,
     "state":    {"errors": [{"fired": 1, "remaining": 1, "afterLeft": 0}, ...],
                  "drop": {...} | null, "landLate": {...} | null,      # RPC only
                  "pendingLate": 0, "stickyDropped": 0},               # RPC only
     "counters": {"latency": 0, "timeout": 0, "http429": 1, "http500": 0, "http502": 0,
                  "http503": 0, "http504": 0, "nodeBehind": 0, "internalError": 0,
                  "drop": 0, "landLate": 0, "lateLanded": 0, "lateExpired": 0,
                  "resendIgnored": 0}}

(``remaining`` is null for ``rate`` rules.) Every injected fault increments its counter and
is logged at INFO by ``localnet.faults``. Counters survive ``POST``/``PUT``; ``DELETE``
zeroes them. A late transaction already queued still lands after ``DELETE``.

Clock control (RPC server): ``GET /admin/clock`` -> ``{"slot", "blockHeight", "slotMs"}``;
``POST /admin/clock`` with ``{"slotMs": 20}`` (10..60000, the slot time from now on) and/or
``{"advance": 151}`` (0..10000 slots ticked at once, e.g. to expire every blockhash
issued so far) answers the same document.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import random
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from solders.hash import Hash
from solders.transaction import VersionedTransaction

from localnet.chain import Chain, ChainError

log = logging.getLogger(__name__)

Json = Any

MAX_LATENCY_MS = 600_000
MAX_HOLD_MS = 3_600_000
MAX_RETRY_AFTER_S = 3_600
MAX_SLOTS_BEHIND = 1_000_000
MAX_LATE_SLOTS = 10_000
MAX_COUNT = 1_000_000_000
MAX_ADVANCE = 10_000
MIN_SLOT_MS, MAX_SLOT_MS = 10, 60_000
MAX_STICKY = 100_000
_POLL_S = 0.05  # how often a withheld request checks whether its client is still there

SOLANA_RPC_METHODS = frozenset({
    "getAccountInfo", "getBalance", "getBlock", "getBlockCommitment", "getBlockHeight",
    "getBlockProduction", "getBlockTime", "getBlocks", "getBlocksWithLimit", "getClusterNodes",
    "getEpochInfo", "getEpochSchedule", "getFeeForMessage", "getFirstAvailableBlock",
    "getGenesisHash", "getHealth", "getHighestSnapshotSlot", "getIdentity",
    "getInflationGovernor", "getInflationRate", "getInflationReward", "getLargestAccounts",
    "getLatestBlockhash", "getLeaderSchedule", "getMaxRetransmitSlot", "getMaxShredInsertSlot",
    "getMinimumBalanceForRentExemption", "getMultipleAccounts", "getProgramAccounts",
    "getRecentPerformanceSamples", "getRecentPrioritizationFees", "getSignatureStatuses",
    "getSignaturesForAddress", "getSlot", "getSlotLeader", "getSlotLeaders",
    "getStakeMinimumDelegation", "getSupply", "getTokenAccountBalance",
    "getTokenAccountsByDelegate", "getTokenAccountsByOwner", "getTokenLargestAccounts",
    "getTokenSupply", "getTransaction", "getTransactionCount", "getVersion", "getVoteAccounts",
    "isBlockhashValid", "minimumLedgerSlot", "requestAirdrop", "sendTransaction",
    "simulateTransaction",
    # deprecated, still sent by old clients
    "getConfirmedBlock", "getConfirmedSignaturesForAddress2", "getConfirmedTransaction",
    "getFeeCalculatorForBlockhash", "getFees", "getRecentBlockhash", "getSnapshotSlot",
    "getStakeActivation",
})
"""Agave's HTTP JSON-RPC methods: the names an RPC fault rule may target."""

VENUE_ENDPOINTS = frozenset({"quote", "swap"})

HTTP_KINDS = ("http429", "http500", "http502", "http503", "http504")
_HTTP_STATUS = {"http429": 429, "http500": 500, "http502": 502, "http503": 503, "http504": 504}
_REASON = {429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
           503: "Service Unavailable", 504: "Gateway Timeout"}
RPC_ONLY_KINDS = ("nodeBehind", "internalError")
SEND_COUNTERS = ("drop", "landLate", "lateLanded", "lateExpired", "resendIgnored")

NODE_UNHEALTHY = -32005
INTERNAL_ERROR = -32603


class FaultConfigError(ValueError):
    """A fault configuration that cannot be used; ``path`` names the offending field."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.reason = message
        super().__init__(f"{path}: {message}" if path else message)


# ---------------------------------------------------------------------------------------------
# configuration


@dataclass(frozen=True, slots=True)
class Target:
    """What a section may name: the RPC server's methods or the market's endpoints."""

    name: str  # "rpc" | "venue"
    names_key: str  # "methods" | "endpoints"
    names: frozenset[str]
    kinds: tuple[str, ...]
    send_rules: bool

    @property
    def counter_names(self) -> tuple[str, ...]:
        return ("latency", *self.kinds, *(SEND_COUNTERS if self.send_rules else ()))


RPC = Target("rpc", "methods", SOLANA_RPC_METHODS, ("timeout", *HTTP_KINDS, *RPC_ONLY_KINDS),
             True)
VENUE = Target("venue", "endpoints", VENUE_ENDPOINTS, ("timeout", *HTTP_KINDS), False)


@dataclass(frozen=True, slots=True)
class Trigger:
    """Fires on the next ``next`` consultations, or with probability ``rate``; after ``after``."""

    rate: float | None = None
    next: int | None = None
    after: int = 0

    def to_json(self) -> dict[str, Json]:
        return {"rate": self.rate, "next": self.next, "after": self.after}


@dataclass(frozen=True, slots=True)
class Delay:
    ms: int = 0
    jitter_ms: int = 0

    def to_json(self) -> dict[str, Json]:
        return {"ms": self.ms, "jitterMs": self.jitter_ms}


@dataclass(frozen=True, slots=True)
class Latency:
    default: Delay = Delay()
    by_name: Mapping[str, Delay] = field(default_factory=dict)

    def delay_for(self, name: str) -> Delay:
        return self.by_name.get(name, self.default)

    def to_json(self, names_key: str) -> dict[str, Json]:
        return {**self.default.to_json(),
                names_key: {k: v.to_json() for k, v in sorted(self.by_name.items())}}


@dataclass(frozen=True, slots=True)
class ErrorRule:
    kind: str
    trigger: Trigger
    names: frozenset[str] | None = None  # None: every method / endpoint
    after_execute: bool = False
    retry_after_s: int = 1  # http429
    slots_behind: int = 100  # nodeBehind
    hold_ms: int | None = None  # timeout; None = never answer

    @property
    def http_level(self) -> bool:
        """Answers the whole HTTP request (``http*``, ``timeout``), not one JSON-RPC call."""
        return self.kind not in RPC_ONLY_KINDS

    def matches(self, name: str) -> bool:
        return self.names is None or name in self.names

    def to_json(self, names_key: str) -> dict[str, Json]:
        out: dict[str, Json] = {
            "kind": self.kind,
            names_key: None if self.names is None else sorted(self.names),
            **self.trigger.to_json(),
            "afterExecute": self.after_execute,
        }
        if self.kind == "http429":
            out["retryAfterS"] = self.retry_after_s
        elif self.kind == "nodeBehind":
            out["slotsBehind"] = self.slots_behind
        elif self.kind == "timeout":
            out["holdMs"] = self.hold_ms
        return out


@dataclass(frozen=True, slots=True)
class SendRule:
    trigger: Trigger
    sticky: bool = False
    slots: int = 0  # landLate only

    def to_json(self, late: bool) -> dict[str, Json]:
        out = {**self.trigger.to_json(), "sticky": self.sticky}
        if late:
            out["slots"] = self.slots
        return out


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """One server's section. The default is everything off."""

    seed: int | None = None
    latency: Latency | None = None
    errors: tuple[ErrorRule, ...] = ()
    drop: SendRule | None = None
    land_late: SendRule | None = None

    @property
    def active(self) -> bool:
        return bool(self.latency or self.errors or self.drop or self.land_late)

    def to_json(self, target: Target) -> dict[str, Json]:
        out: dict[str, Json] = {
            "seed": self.seed,
            "latency": None if self.latency is None else self.latency.to_json(target.names_key),
            "errors": [r.to_json(target.names_key) for r in self.errors],
        }
        if target.send_rules:
            out["drop"] = None if self.drop is None else self.drop.to_json(False)
            out["landLate"] = None if self.land_late is None else self.land_late.to_json(True)
        return out


def _keys(target: Target) -> tuple[str, ...]:
    return ("seed", "latency", "errors", *(("drop", "landLate") if target.send_rules else ()))


class _Reader:
    """Strict reading of one JSON object: known keys only, typed values, a path for errors."""

    def __init__(self, doc: Json, path: str, allowed: Iterable[str]) -> None:
        if not isinstance(doc, dict):
            raise FaultConfigError(path, "must be a JSON object")
        allowed = tuple(allowed)
        unknown = sorted(set(doc) - set(allowed))
        if unknown:
            raise FaultConfigError(
                _join(path, unknown[0]),
                f"unknown field (expected one of: {', '.join(allowed)})")
        self.doc: dict[str, Json] = doc
        self.path = path

    def at(self, key: str) -> str:
        return _join(self.path, key)

    def has(self, key: str) -> bool:
        return self.doc.get(key) is not None

    def integer(self, key: str, default: int, lo: int, hi: int) -> int:
        value = self.doc.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise FaultConfigError(self.at(key), "must be an integer")
        if not lo <= value <= hi:
            raise FaultConfigError(self.at(key), f"must be in {lo}..{hi}")
        return value

    def opt_int(self, key: str, lo: int, hi: int) -> int | None:
        return None if self.doc.get(key) is None else self.integer(key, 0, lo, hi)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.doc.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise FaultConfigError(self.at(key), "must be true or false")
        return value

    def rate(self, key: str) -> float | None:
        value = self.doc.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FaultConfigError(self.at(key), "must be a number")
        if not 0.0 <= value <= 1.0:
            raise FaultConfigError(self.at(key), "must be in [0, 1]")
        return float(value)


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


_TRIGGER_KEYS = ("rate", "next", "after")


def _trigger(r: _Reader) -> Trigger:
    rate = r.rate("rate")
    nxt = r.opt_int("next", 0, MAX_COUNT)
    if (rate is None) == (nxt is None):
        raise FaultConfigError(r.path, 'needs exactly one of "rate" or "next"')
    return Trigger(rate=rate, next=nxt, after=r.integer("after", 0, 0, MAX_COUNT))


def _names(r: _Reader, target: Target) -> frozenset[str] | None:
    key = target.names_key
    raw = r.doc.get(key)
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw:
        raise FaultConfigError(r.at(key), "must be a non-empty array of names (or null: all)")
    for i, name in enumerate(raw):
        if not isinstance(name, str) or name not in target.names:
            raise FaultConfigError(
                _join(r.at(key), i),
                f"{name!r} is not a known {'method' if target.send_rules else 'endpoint'}"
                + ("" if target.send_rules else f" ({', '.join(sorted(target.names))})"))
    return frozenset(raw)


def _delay(r: _Reader) -> Delay:
    return Delay(r.integer("ms", 0, 0, MAX_LATENCY_MS), r.integer("jitterMs", 0, 0, MAX_LATENCY_MS))


def _latency(doc: Json, path: str, target: Target) -> Latency | None:
    if doc is None:
        return None
    r = _Reader(doc, path, ("ms", "jitterMs", target.names_key))
    by_name: dict[str, Delay] = {}
    raw = r.doc.get(target.names_key)
    if raw is not None:
        per = r.at(target.names_key)
        if not isinstance(raw, dict):
            raise FaultConfigError(per, "must be an object of name -> {ms, jitterMs}")
        for name, entry in raw.items():
            if name not in target.names:
                raise FaultConfigError(_join(per, name), "is not a known name")
            by_name[name] = _delay(_Reader(entry, _join(per, name), ("ms", "jitterMs")))
    latency = Latency(_delay(r), by_name)
    if latency.default == Delay() and all(d == Delay() for d in by_name.values()):
        return None  # all zero: off
    return latency


def _error_rule(doc: Json, path: str, target: Target) -> ErrorRule:
    kind = doc.get("kind") if isinstance(doc, dict) else None
    if kind not in target.kinds:
        raise FaultConfigError(_join(path, "kind"),
                               f"must be one of: {', '.join(target.kinds)}")
    extra = {"http429": ("retryAfterS",), "nodeBehind": ("slotsBehind",),
             "timeout": ("holdMs",)}.get(kind, ())
    r = _Reader(doc, path, ("kind", target.names_key, *_TRIGGER_KEYS, "afterExecute", *extra))
    return ErrorRule(
        kind=kind,
        trigger=_trigger(r),
        names=_names(r, target),
        after_execute=r.boolean("afterExecute", False),
        retry_after_s=r.integer("retryAfterS", 1, 0, MAX_RETRY_AFTER_S),
        slots_behind=r.integer("slotsBehind", 100, 1, MAX_SLOTS_BEHIND),
        hold_ms=r.opt_int("holdMs", 1, MAX_HOLD_MS),
    )


def _send_rule(doc: Json, path: str, late: bool) -> SendRule | None:
    if doc is None:
        return None
    r = _Reader(doc, path, (*_TRIGGER_KEYS, "sticky", *(("slots",) if late else ())))
    if late and not r.has("slots"):
        raise FaultConfigError(r.at("slots"), "is required (1..10000)")
    return SendRule(_trigger(r), r.boolean("sticky", False),
                    r.integer("slots", 0, 1, MAX_LATE_SLOTS) if late else 0)


def parse_config(doc: Json, target: Target, path: str = "") -> FaultConfig:
    """Validate one section (``rpc`` or ``venue``); raises :class:`FaultConfigError`."""
    if doc is None:
        return FaultConfig()
    r = _Reader(doc, path, _keys(target))
    raw_errors = r.doc.get("errors")
    if raw_errors is None:
        raw_errors = []
    if not isinstance(raw_errors, list):
        raise FaultConfigError(r.at("errors"), "must be an array of rules")
    seed = r.doc.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise FaultConfigError(r.at("seed"), "must be an integer")
    return FaultConfig(
        seed=seed,
        latency=_latency(r.doc.get("latency"), r.at("latency"), target),
        errors=tuple(_error_rule(e, _join(r.at("errors"), i), target)
                     for i, e in enumerate(raw_errors)),
        drop=_send_rule(r.doc.get("drop"), r.at("drop"), False) if target.send_rules else None,
        land_late=_send_rule(r.doc.get("landLate"), r.at("landLate"), True)
        if target.send_rules else None,
    )


def parse_env(text: str | None) -> tuple[FaultConfig, FaultConfig]:
    """``ORDERFLOW_FAULTS``: inline JSON or ``@path``; returns the (rpc, venue) sections."""
    if text is None or not text.strip():
        return FaultConfig(), FaultConfig()
    text = text.strip()
    where = "ORDERFLOW_FAULTS"
    if text.startswith("@"):
        file = Path(text[1:]).expanduser()
        try:
            text = file.read_text()
        except OSError as exc:
            raise FaultConfigError(where, f"cannot read {file}: {exc.strerror}") from None
        where = str(file)
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise FaultConfigError(where, f"not valid JSON: {exc}") from None
    r = _Reader(doc, "", ("rpc", "venue"))
    return parse_config(r.doc.get("rpc"), RPC, "rpc"), parse_config(r.doc.get("venue"), VENUE,
                                                                     "venue")


# ---------------------------------------------------------------------------------------------
# runtime state


@dataclass(slots=True)
class RuleState:
    """How much of a rule's trigger is used: ``after`` left to pass, ``next`` left to fire."""

    trigger: Trigger
    after_left: int = 0
    remaining: int | None = None
    fired: int = 0

    @classmethod
    def of(cls, trigger: Trigger) -> RuleState:
        return cls(trigger, trigger.after, trigger.next)

    def consult(self, rng: random.Random) -> bool:
        """One matching call: does the rule fire on it?"""
        if self.after_left > 0:
            self.after_left -= 1
            return False
        if self.remaining is not None:
            if self.remaining <= 0:
                return False
            self.remaining -= 1
            fire = True
        else:
            assert self.trigger.rate is not None
            fire = rng.random() < self.trigger.rate
        if fire:
            self.fired += 1
        return fire

    def to_json(self) -> dict[str, Json]:
        return {"fired": self.fired, "remaining": self.remaining, "afterLeft": self.after_left}


@dataclass(frozen=True, slots=True)
class Plan:
    """What the faults decided for one HTTP request, at its arrival."""

    delay_s: float = 0.0
    http: ErrorRule | None = None  # answers the whole request
    calls: tuple[ErrorRule | None, ...] = ()  # JSON-RPC-level, per call (RPC only)

    @property
    def empty(self) -> bool:
        return self.delay_s <= 0 and self.http is None and all(c is None for c in self.calls)


NO_PLAN = Plan()


class FaultController:
    """One server's switches, counters and RNG. Single-threaded: use from the event loop."""

    def __init__(self, target: Target, config: FaultConfig | None = None) -> None:
        self.target = target
        self.rng = random.Random()
        self.counters: dict[str, int] = dict.fromkeys(target.counter_names, 0)
        self.closing = asyncio.Event()
        self.config = FaultConfig()
        self._seed = 0
        self._error_states: list[RuleState] = []
        self._apply(config or FaultConfig(), _keys(target))

    # -- configuration -------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self.config.active

    @property
    def seed(self) -> int:
        return self._seed

    def _apply(self, config: FaultConfig, changed: Iterable[str]) -> None:
        changed = set(changed)
        if "seed" in changed:
            self._seed = config.seed if config.seed is not None else secrets.randbits(32)
            self.rng.seed(self._seed)
        config = replace(config, seed=self._seed)
        if "errors" in changed:
            self._error_states = [RuleState.of(r.trigger) for r in config.errors]
        self._apply_send(config, changed)
        was_active, self.config = self.config.active, config
        if config.active:
            log.info("%s faults set: %s", self.target.name,
                     orjson.dumps(config.to_json(self.target)).decode())
        elif was_active:
            log.info("%s faults all off", self.target.name)

    def _apply_send(self, config: FaultConfig, changed: set[str]) -> None:
        """Send-rule state (the RPC server's)."""

    def replace_config(self, doc: Json) -> dict[str, Json]:
        """``PUT``: the whole section."""
        config = parse_config(doc, self.target)
        self._apply(config, _keys(self.target) if config.seed is not None
                    else set(_keys(self.target)) - {"seed"})
        return self.snapshot()

    def merge_config(self, doc: Json) -> dict[str, Json]:
        """``POST``: each top-level key given replaces that key; others keep their state."""
        r = _Reader(doc, "", _keys(self.target))
        merged = {**self.config.to_json(self.target), **r.doc}
        config = parse_config(merged, self.target)
        self._apply(config, r.doc.keys())
        return self.snapshot()

    def reset(self) -> dict[str, Json]:
        """``DELETE``: off, counters zeroed, RNG re-seeded with the same seed."""
        self.counters = dict.fromkeys(self.target.counter_names, 0)
        self.rng.seed(self._seed)
        self._apply(FaultConfig(seed=self._seed), set(_keys(self.target)) - {"seed"})
        log.info("%s faults reset: all off, counters zeroed", self.target.name)
        return self.snapshot()

    def snapshot(self) -> dict[str, Json]:
        return {
            "config": self.config.to_json(self.target),
            "state": self._state_json(),
            "counters": dict(self.counters),
        }

    def _state_json(self) -> dict[str, Json]:
        return {"errors": [s.to_json() for s in self._error_states]}

    # -- decisions -----------------------------------------------------------------------------

    def count(self, kind: str, detail: str) -> None:
        self.counters[kind] += 1
        log.info("fault %s %s: %s", self.target.name, kind, detail)

    def decide(self, name: str) -> ErrorRule | None:
        """Consult the error rules for one call of ``name``; count and log the one that fires."""
        for index, (rule, state) in enumerate(
                zip(self.config.errors, self._error_states, strict=True)):
            if rule.matches(name) and state.consult(self.rng):
                when = " after execution" if rule.after_execute else ""
                self.count(rule.kind, f"{name} (rule {index}){when}")
                return rule
        return None

    def plan(self, names: Sequence[str]) -> Plan:
        """Latency and error decisions for a request carrying ``names`` (one per call)."""
        if not self.config.active or not names:
            return NO_PLAN
        delay_ms = 0.0
        latency = self.config.latency
        if latency is not None:
            for name in names:
                d = latency.delay_for(name)
                ms = d.ms + (self.rng.random() * d.jitter_ms if d.jitter_ms else 0.0)
                delay_ms = max(delay_ms, ms)
            if delay_ms > 0:
                self.count("latency", f"{delay_ms:.0f} ms on {', '.join(names)}")
        http: ErrorRule | None = None
        calls: list[ErrorRule | None] = []
        for name in names:
            rule = self.decide(name)
            if rule is not None and rule.http_level:
                http = http or rule
                rule = None
            calls.append(rule)
        return Plan(delay_ms / 1000, http, tuple(calls))

    # -- producing the faults ------------------------------------------------------------------

    async def sleep(self, seconds: float) -> bool:
        """Sleep; ``False`` if the server began shutting down meanwhile."""
        if seconds <= 0:
            return True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.closing.wait()
                return False
        return True

    async def _client_gone(self, request: web.BaseRequest) -> None:
        while not self.closing.is_set():
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            await asyncio.sleep(_POLL_S)

    async def _hold(self, request: web.BaseRequest, hold_ms: int | None) -> bool:
        """Hold a response: ``True`` to answer after ``hold_ms``, ``False`` never to answer."""
        if hold_ms is not None:
            return await self.sleep(hold_ms / 1000)
        await self._client_gone(request)
        return False

    @staticmethod
    def _abandon(request: web.BaseRequest) -> web.StreamResponse:
        """No answer: close the connection (the client has gone, or we are shutting down)."""
        transport = request.transport
        if transport is not None:
            transport.close()
        return web.Response(status=204)

    async def run(
        self,
        request: web.BaseRequest,
        plan: Plan,
        execute: Callable[[], Awaitable[web.StreamResponse]],
        rpc_id: Json = None,
    ) -> web.StreamResponse:
        """Apply ``plan`` around ``execute`` (which runs the call and builds its answer)."""
        if not await self.sleep(plan.delay_s):
            return self._abandon(request)
        rule = plan.http
        if rule is None:
            return await execute()
        if not rule.after_execute:
            if rule.kind == "timeout":
                if not await self._hold(request, rule.hold_ms):
                    return self._abandon(request)
                return await execute()
            return self.error_response(rule, rpc_id)
        response = await execute()
        if rule.kind == "timeout":
            if not await self._hold(request, rule.hold_ms):
                return self._abandon(request)
            return response
        return self.error_response(rule, rpc_id)

    def error_response(self, rule: ErrorRule, rpc_id: Json = None) -> web.Response:
        status = _HTTP_STATUS[rule.kind]
        reason = _REASON[status]
        if status == 429:
            headers = {"Retry-After": str(rule.retry_after_s)}
            if self.target.send_rules:  # what public RPC providers send with their 429
                body: Json = {"jsonrpc": "2.0", "error": {
                    "code": 429, "message": "Too many requests for a specific RPC call, "
                    "contact your app developer or support@rpcpool.com."}, "id": rpc_id}
            else:
                body = {"code": 429, "message": "Rate limit exceeded"}
            return web.Response(status=429, body=orjson.dumps(body), headers=headers,
                                content_type="application/json")
        if status == 500:
            return web.Response(status=500, text=reason)
        page = (f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
                f"<center><h1>{status} {reason}</h1></center>\r\n</body>\r\n</html>\r\n")
        return web.Response(status=status, text=page, content_type="text/html")


def rpc_error_of(rule: ErrorRule) -> tuple[int, str, Json]:
    """(code, message, data) of a JSON-RPC-level fault, as Agave sends it."""
    if rule.kind == "nodeBehind":
        return (NODE_UNHEALTHY, f"Node is behind by {rule.slots_behind} slots",
                {"numSlotsBehind": rule.slots_behind})
    return INTERNAL_ERROR, "Internal error", None


class RpcFaults(FaultController):
    """The RPC server's switches, plus what happens to accepted transactions (drop, land late)."""

    def __init__(self, chain: Chain, config: FaultConfig | None = None) -> None:
        self.chain = chain
        self._drop_state: RuleState | None = None
        self._late_state: RuleState | None = None
        self._sticky: dict[str, Hash] = {}  # dropped for good: signature -> its blockhash
        self._late: list[tuple[int, int, str]] = []  # heap of (due slot, seq, signature)
        self._late_txs: dict[str, tuple[VersionedTransaction, bool]] = {}
        self._late_seq = 0
        super().__init__(RPC, config)
        chain.add_slot_listener(self._on_slot)

    def close(self) -> None:
        self.closing.set()
        with contextlib.suppress(ValueError):
            self.chain.remove_slot_listener(self._on_slot)

    def _apply_send(self, config: FaultConfig, changed: set[str]) -> None:
        if "drop" in changed:
            self._drop_state = None if config.drop is None else RuleState.of(config.drop.trigger)
            if config.drop is None:
                self._sticky.clear()
        if "landLate" in changed:
            self._late_state = (None if config.land_late is None
                                else RuleState.of(config.land_late.trigger))

    def _state_json(self) -> dict[str, Json]:
        return {
            **super()._state_json(),
            "drop": None if self._drop_state is None else self._drop_state.to_json(),
            "landLate": None if self._late_state is None else self._late_state.to_json(),
            "pendingLate": len(self._late_txs),
            "stickyDropped": len(self._sticky),
        }

    def on_send(self, tx: VersionedTransaction) -> bool:
        """``sendTransaction`` accepted ``tx``: ``True`` to execute it now, ``False`` if a
        fault took it (dropped, or queued to land late)."""
        if (not self._sticky and not self._late_txs and self._drop_state is None
                and self._late_state is None):
            return True
        sig = str(tx.signatures[0])
        if self.chain.transaction(sig) is not None:
            return True  # landed already: the chain ignores it, no fault to spend on it
        if sig in self._sticky:
            self.count("drop", f"sendTransaction {sig} (sticky: dropped before)")
            return False
        pending = self._late_txs.get(sig)
        if pending is not None and pending[1]:
            self.count("resendIgnored", f"sendTransaction {sig} (sticky: waiting to land late)")
            return False
        drop, late = self.config.drop, self.config.land_late
        if drop is not None and self._drop_state is not None and self._drop_state.consult(
                self.rng):
            if drop.sticky:
                if len(self._sticky) >= MAX_STICKY:
                    del self._sticky[next(iter(self._sticky))]
                self._sticky[sig] = tx.message.recent_blockhash
            self.count("drop", f"sendTransaction {sig}{' (sticky)' if drop.sticky else ''}")
            return False
        if late is not None and self._late_state is not None and self._late_state.consult(
                self.rng):
            due = self.chain.slot + late.slots
            if sig not in self._late_txs:
                self._late_seq += 1
                heapq.heappush(self._late, (due, self._late_seq, sig))
                self._late_txs[sig] = (tx, late.sticky)
            self.count("landLate", f"sendTransaction {sig}: executes at slot {due}")
            return False
        return True

    def _on_slot(self, slot: int, block_height: int) -> None:
        late = self._late
        while late and late[0][0] <= slot:
            _, _, sig = heapq.heappop(late)
            entry = self._late_txs.pop(sig, None)
            if entry is None:
                continue
            if self.chain.transaction(sig) is not None:
                log.info("fault rpc late %s: a rebroadcast already landed it", sig)
                continue
            try:
                self.chain.send(entry[0])
            except ChainError as exc:
                self.count("lateExpired", f"{sig} did not land at slot {slot}: {exc}")
            else:
                self.count("lateLanded", f"{sig} landed at slot {slot}")
        sticky = self._sticky
        while sticky:  # forget sticky drops whose blockhash expired: they can never land
            first = next(iter(sticky))
            if self.chain.is_blockhash_valid(sticky[first]):
                break
            del sticky[first]


class VenueFaults(FaultController):
    """The market's switches (``quote`` / ``swap``)."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        super().__init__(VENUE, config)

    def close(self) -> None:
        self.closing.set()


# ---------------------------------------------------------------------------------------------
# admin endpoints


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
            r = _Reader(await _read_json(request), "", ("slotMs", "advance"))
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


__all__ = [
    "RPC",
    "SOLANA_RPC_METHODS",
    "VENUE",
    "VENUE_ENDPOINTS",
    "Delay",
    "ErrorRule",
    "FaultConfig",
    "FaultConfigError",
    "FaultController",
    "Latency",
    "Plan",
    "RpcFaults",
    "RuleState",
    "SendRule",
    "Target",
    "Trigger",
    "VenueFaults",
    "add_admin_routes",
    "add_clock_routes",
    "parse_config",
    "parse_env",
    "rpc_error_of",
]
