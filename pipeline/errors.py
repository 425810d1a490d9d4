"""Every error the engine raises, and whether trying again can help.

    OrderflowError                       (retriable: see subclass)
    ├── ConfigError                      not retriable: bad settings, refuse to start
    ├── InvalidTransition                not retriable: a lifecycle edge that does not exist (a bug)
    ├── PermanentError                   not retriable: the order fails at once
    │   ├── InvalidOrder                 bad input (HTTP body or Kafka message)
    │   ├── NoRoute                      no venue can quote the pair / size
    │   ├── SlippageExceeded             pool moved past the order's tolerance (Jupiter 6001)
    │   ├── InsufficientFunds            the wallet cannot pay for the swap
    │   ├── PriceImpactTooHigh           the quote moves the price more than the order allows
    │   ├── QuoteDeviation               the quote's price is far from the other venues' or
    │   │                                the pair's recent executed price (a broken pool)
    │   └── TransactionFailed            the transaction landed with an error
    └── TransientError                   retriable: a later attempt may succeed
        ├── RpcUnavailable               RPC timeout, 429, 5xx, connection refused
        ├── VenueUnavailable             venue timeout or 5xx
        └── TransactionExpired           blockhash expired before the transaction landed
    ├── LeaseLost                        another worker owns the order now: stop touching it
    ├── BroadcastConflict                an earlier transaction may still land: send nothing
    ├── AlreadyProcessed                 the cluster has this exact transaction: follow it
    EngineUnavailable                    the engine's own infrastructure is down: the order is
    ├── JournalUnavailable               held (not acked) and run again when it is back; it
    └── BrokerUnavailable                never ends an order, and never counts as an attempt

Errors that come over a wire as codes (a program's custom error in a transaction, a
venue's ``errorCode``) are mapped to this tree in one table, :data:`PROGRAM_ERRORS`,
through :func:`chain_error` (psycopg's ``errors.py`` is the model).

Each class carries a stable ``code`` that is written to status events and the
database, so dashboards and post-mortems key on codes, not on message text.
"""

from __future__ import annotations

import re


class OrderflowError(Exception):
    """Base of every engine error."""

    retriable: bool = False
    default_code: str = "internal_error"

    def __init__(self, code: str | None = None, message: str = "", *, field: str | None = None):
        self.code = code or self.default_code
        self.message = message or self.code
        self.field = field
        super().__init__(f"{self.code}: {self.message}")

    def as_dict(self) -> dict[str, str]:
        out = {"code": self.code, "message": self.message}
        if self.field:
            out["field"] = self.field
        return out


class ConfigError(OrderflowError):
    default_code = "config_error"


class InvalidTransition(OrderflowError):
    default_code = "invalid_transition"


class PermanentError(OrderflowError):
    retriable = False
    default_code = "permanent_error"


class InvalidOrder(PermanentError):
    default_code = "invalid_order"


class NoRoute(PermanentError):
    default_code = "no_route"


class SlippageExceeded(PermanentError):
    default_code = "slippage_exceeded"


class InsufficientFunds(PermanentError):
    default_code = "insufficient_funds"


class TransactionFailed(PermanentError):
    default_code = "transaction_failed"


class PriceImpactTooHigh(PermanentError):
    """Permanent: retrying in a few seconds finds the same pool depth (see pipeline/guards.py)."""

    default_code = "price_impact_too_high"


class QuoteDeviation(PermanentError):
    """Permanent: a price this far off is a broken or manipulated pool, not a passing glitch;
    the trader re-submits once the market looks sane (see pipeline/guards.py)."""

    default_code = "quote_deviation"


class TransientError(OrderflowError):
    retriable = True
    default_code = "transient_error"


class RpcUnavailable(TransientError):
    default_code = "rpc_unavailable"


class VenueUnavailable(TransientError):
    default_code = "venue_unavailable"


class TransactionExpired(TransientError):
    default_code = "transaction_expired"


class LeaseLost(OrderflowError):
    """Another worker owns the order now; stop touching it (not retriable here)."""

    default_code = "lease_lost"


class BroadcastConflict(OrderflowError):
    """An earlier transaction of this order may still land; a new one must not be sent."""

    default_code = "broadcast_conflict"


class AlreadyProcessed(OrderflowError):
    """The cluster has this exact transaction already: follow its signature."""

    default_code = "already_processed"


class EngineUnavailable(OrderflowError):
    """The journal or the broker cannot be reached: nothing about the order is known to be
    wrong, and nothing can be recorded durably either. The order is held, not acknowledged,
    and run again (from the journal) once the infrastructure answers."""

    default_code = "engine_unavailable"


class JournalUnavailable(EngineUnavailable):
    default_code = "journal_unavailable"


class BrokerUnavailable(EngineUnavailable):
    default_code = "broker_unavailable"


# ---- codes from the wire ----

PROGRAM_ERRORS: dict[int, type[PermanentError]] = {
    1: InsufficientFunds,  # SPL Token: InsufficientFunds
    6001: SlippageExceeded,  # Jupiter: SlippageToleranceExceeded
}
"""Custom program error codes (``InstructionError(i, Custom(n))``) the engine understands.
Venue adapters add their programs' codes here, next to each other, not in their modules."""

_CUSTOM = re.compile(r"custom\s*\(\s*(\d+)\s*\)|custom program error:\s*0x([0-9a-f]+)")


def custom_program_error(text: str) -> int | None:
    """The ``Custom(n)`` code in a transaction error's text (either rendering), if any."""
    m = _CUSTOM.search(text.lower())
    if m is None:
        return None
    return int(m.group(1)) if m.group(1) else int(m.group(2), 16)


def chain_error(text: str, message: str | None = None) -> PermanentError:
    """The error a failed transaction (its ``err`` text) means for the order."""
    code = custom_program_error(text)
    kind = PROGRAM_ERRORS.get(code, TransactionFailed) if code is not None else TransactionFailed
    return kind(message=f"{message}: {text}" if message else text)
