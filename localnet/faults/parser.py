"""Parsing of fault switch sections (``ORDERFLOW_FAULTS``, ``/admin/faults`` bodies): strict,
every error names its field. The format is described in docs/faults.md."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import orjson

from localnet.faults.config import (
    MAX_COUNT,
    MAX_HOLD_MS,
    MAX_LATE_SLOTS,
    MAX_LATENCY_MS,
    MAX_RETRY_AFTER_S,
    MAX_SLOTS_BEHIND,
    RPC,
    VENUE,
    Delay,
    ErrorRule,
    FaultConfig,
    FaultConfigError,
    Json,
    Latency,
    SendRule,
    Target,
    Trigger,
)


class Reader:
    """Strict reading of one JSON object: known keys only, typed values, a path for errors."""

    def __init__(self, doc: Json, path: str, allowed: Iterable[str]) -> None:
        if not isinstance(doc, dict):
            raise FaultConfigError(path, "must be a JSON object")
        allowed = tuple(allowed)
        unknown = sorted(set(doc) - set(allowed))
        if unknown:
            raise FaultConfigError(
                join_path(path, unknown[0]),
                f"unknown field (expected one of: {', '.join(allowed)})")
        self.doc: dict[str, Json] = doc
        self.path = path

    def at(self, key: str) -> str:
        return join_path(self.path, key)

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


def join_path(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


_TRIGGER_KEYS = ("rate", "next", "after")


def _trigger(r: Reader) -> Trigger:
    rate = r.rate("rate")
    nxt = r.opt_int("next", 0, MAX_COUNT)
    if (rate is None) == (nxt is None):
        raise FaultConfigError(r.path, 'needs exactly one of "rate" or "next"')
    return Trigger(rate=rate, next=nxt, after=r.integer("after", 0, 0, MAX_COUNT))


def _names(r: Reader, target: Target) -> frozenset[str] | None:
    key = target.names_key
    raw = r.doc.get(key)
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw:
        raise FaultConfigError(r.at(key), "must be a non-empty array of names (or null: all)")
    for i, name in enumerate(raw):
        if not isinstance(name, str) or name not in target.names:
            raise FaultConfigError(
                join_path(r.at(key), i),
                f"{name!r} is not a known {'method' if target.send_rules else 'endpoint'}"
                + ("" if target.send_rules else f" ({', '.join(sorted(target.names))})"))
    return frozenset(raw)


def _delay(r: Reader) -> Delay:
    return Delay(r.integer("ms", 0, 0, MAX_LATENCY_MS), r.integer("jitterMs", 0, 0, MAX_LATENCY_MS))


def _latency(doc: Json, path: str, target: Target) -> Latency | None:
    if doc is None:
        return None
    r = Reader(doc, path, ("ms", "jitterMs", target.names_key))
    by_name: dict[str, Delay] = {}
    raw = r.doc.get(target.names_key)
    if raw is not None:
        per = r.at(target.names_key)
        if not isinstance(raw, dict):
            raise FaultConfigError(per, "must be an object of name -> {ms, jitterMs}")
        for name, entry in raw.items():
            if name not in target.names:
                raise FaultConfigError(join_path(per, name), "is not a known name")
            by_name[name] = _delay(Reader(entry, join_path(per, name), ("ms", "jitterMs")))
    latency = Latency(_delay(r), by_name)
    if latency.default == Delay() and all(d == Delay() for d in by_name.values()):
        return None  # all zero: off
    return latency


def _error_rule(doc: Json, path: str, target: Target) -> ErrorRule:
    kind = doc.get("kind") if isinstance(doc, dict) else None
    if kind not in target.kinds:
        raise FaultConfigError(join_path(path, "kind"),
                               f"must be one of: {', '.join(target.kinds)}")
    extra = {"http429": ("retryAfterS",), "nodeBehind": ("slotsBehind",),
             "timeout": ("holdMs",)}.get(kind, ())
    r = Reader(doc, path, ("kind", target.names_key, *_TRIGGER_KEYS, "afterExecute", *extra))
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
    r = Reader(doc, path, (*_TRIGGER_KEYS, "sticky", *(("slots",) if late else ())))
    if late and not r.has("slots"):
        raise FaultConfigError(r.at("slots"), "is required (1..10000)")
    return SendRule(_trigger(r), r.boolean("sticky", False),
                    r.integer("slots", 0, 1, MAX_LATE_SLOTS) if late else 0)


def parse_config(doc: Json, target: Target, path: str = "") -> FaultConfig:
    """Validate one section (``rpc`` or ``venue``); raises :class:`FaultConfigError`."""
    if doc is None:
        return FaultConfig()
    r = Reader(doc, path, target.section_keys)
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
        errors=tuple(_error_rule(e, join_path(r.at("errors"), i), target)
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
    r = Reader(doc, "", ("rpc", "venue"))
    return parse_config(r.doc.get("rpc"), RPC, "rpc"), parse_config(r.doc.get("venue"), VENUE,
                                                                     "venue")

