"""One server's fault switches at runtime: rule state, counters, the seeded RNG, and how a
request is delayed, held or answered with an error (manual: docs/faults.md)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace

import orjson
from aiohttp import web

from localnet.faults.config import (
    INTERNAL_ERROR,
    NODE_UNHEALTHY,
    VENUE,
    ErrorRule,
    FaultConfig,
    Json,
    Target,
    Trigger,
)
from localnet.faults.parser import Reader, parse_config

log = logging.getLogger(__name__)

_POLL_S = 0.05  # how often a withheld request checks whether its client is still there
_HTTP_STATUS = {"http429": 429, "http500": 500, "http502": 502, "http503": 503, "http504": 504}
_REASON = {429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
           503: "Service Unavailable", 504: "Gateway Timeout"}

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
        self._apply(config or FaultConfig(), target.section_keys)

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
        self._apply(config, self.target.section_keys if config.seed is not None
                    else set(self.target.section_keys) - {"seed"})
        return self.snapshot()

    def merge_config(self, doc: Json) -> dict[str, Json]:
        """``POST``: each top-level key given replaces that key; others keep their state."""
        r = Reader(doc, "", self.target.section_keys)
        merged = {**self.config.to_json(self.target), **r.doc}
        config = parse_config(merged, self.target)
        self._apply(config, r.doc.keys())
        return self.snapshot()

    def reset(self) -> dict[str, Json]:
        """``DELETE``: off, counters zeroed, RNG re-seeded with the same seed."""
        self.counters = dict.fromkeys(self.target.counter_names, 0)
        self.rng.seed(self._seed)
        self._apply(FaultConfig(seed=self._seed), set(self.target.section_keys) - {"seed"})
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


class VenueFaults(FaultController):
    """The market's switches (``quote`` / ``swap``)."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        super().__init__(VENUE, config)

    def close(self) -> None:
        self.closing.set()
