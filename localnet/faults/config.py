"""Fault switch configuration: what a section may say, as frozen values (manual: docs/faults.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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
    def section_keys(self) -> tuple[str, ...]:
        """The top-level keys of this target's section."""
        return ("seed", "latency", "errors", *(("drop", "landLate") if self.send_rules else ()))

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

