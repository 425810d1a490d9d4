"""Every error the engine raises, and whether trying again can help.

    OrderflowError                       (retriable: see subclass)
    ├── ConfigError                      not retriable: bad settings, refuse to start
    ├── InvalidTransition                not retriable: a lifecycle edge that does not exist (a bug)
    ├── PermanentError                   not retriable: the order fails at once
    │   ├── InvalidOrder                 bad input (HTTP body or Kafka message)
    │   ├── NoRoute                      no venue can quote the pair / size
    │   ├── SlippageExceeded             pool moved past the order's min out (the program refused)
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

Errors that come over a wire as codes are mapped to this tree in tables, psycopg's
``errors.py`` being the model: a program's custom error in a transaction in
:data:`PROGRAM_ERRORS` (through :func:`chain_error`), an aggregator API's HTTP status and
``errorCode`` in :data:`VENUE_API_ERRORS` (through :func:`venue_api_error`).

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

# Program ids whose custom error codes the table below knows (base58). Custom codes are
# per program (Anchor numbers every program's own errors from 6000), so they collide:
# Jupiter's 6001 is SlippageToleranceExceeded, Raydium CP-Swap's 6001 is InvalidOwner.
JUPITER_V6 = "JUP6LkbZbjS1jKKwapdHNy74zcZ3tLUZoi5QNyVTaV4"
RAYDIUM_CP_MAINNET = "CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C"
RAYDIUM_CP_DEVNET = "DRaycpLY18LhpbydsBWbVJtxpNv9oXPgjRSfpF2bWpYb"
METEORA_DLMM = "LBUZKhRxPF3XUpBCjp4YzTKgLccjZhTSDM9YuVaPwxo"  # same id on mainnet and devnet

ANY_PROGRAM = None
"""Key for a code that means the same whichever instruction failed: SPL Token's errors
surface as the *calling* program's ``Custom(n)`` when they fail inside a CPI."""

PROGRAM_ERRORS: dict[tuple[str | None, int], type[PermanentError]] = {
    (ANY_PROGRAM, 1): InsufficientFunds,  # SPL Token: InsufficientFunds (also via CPI)
    (JUPITER_V6, 6001): SlippageExceeded,  # Jupiter v6: SlippageToleranceExceeded
    # Raydium CP-Swap (raydium-io/raydium-cp-swap, error.rs): ExceededSlippage
    (RAYDIUM_CP_MAINNET, 6005): SlippageExceeded,
    (RAYDIUM_CP_DEVNET, 6005): SlippageExceeded,
    # Meteora DLMM (dlmm-sdk idls/dlmm.json 0.12.0): ExceededAmountSlippageTolerance
    (METEORA_DLMM, 6003): SlippageExceeded,
}
"""Custom program error codes (``InstructionError(i, Custom(n))``) the engine understands,
keyed by (program id, code); ``ANY_PROGRAM`` entries apply to every program. Venue adapters
add their programs' codes here, next to each other, not in their modules."""


def program_error(code: int, program_id: str | None = None) -> type[PermanentError] | None:
    """The error class of ``Custom(code)`` raised by ``program_id``, if the table knows it.

    With the program known, only its own entries and the ``ANY_PROGRAM`` ones apply (a
    Raydium 6001 is not Jupiter's slippage). Without it (a venue's HTTP ``errorCode``, or an
    error text with no instruction context), a code resolves only when every program that
    defines it agrees on its meaning; an ambiguous code is not guessed.
    """
    if program_id is not None:
        return PROGRAM_ERRORS.get((program_id, code)) or PROGRAM_ERRORS.get((ANY_PROGRAM, code))
    if (ANY_PROGRAM, code) in PROGRAM_ERRORS:
        return PROGRAM_ERRORS[(ANY_PROGRAM, code)]
    kinds = {kind for (_, c), kind in PROGRAM_ERRORS.items() if c == code}
    return kinds.pop() if len(kinds) == 1 else None


_CUSTOM = re.compile(
    r"custom\W{0,3}(\d+)|custom program error:\s*0x([0-9a-f]+)")  # Debug, JSON, or log text
_INSTRUCTION = re.compile(r"instructionerror\W*(\d+)")


def custom_program_error(text: str) -> int | None:
    """The ``Custom(n)`` code in a transaction error's text (``Custom(n)``, JSON
    ``{"Custom":n}`` or ``custom program error: 0x..``), if any."""
    m = _CUSTOM.search(text.lower())
    if m is None:
        return None
    return int(m.group(1)) if m.group(1) else int(m.group(2), 16)


def failed_instruction(text: str) -> int | None:
    """The index ``i`` of ``InstructionError(i, ...)`` in an error's text (Debug or JSON
    rendering), so a caller holding the transaction can name the failing program."""
    m = _INSTRUCTION.search(text.lower())
    return int(m.group(1)) if m else None


def chain_error(text: str, message: str | None = None, *,
                program_id: str | None = None) -> PermanentError:
    """The error a failed transaction (its ``err`` text) means for the order; pass the
    failing instruction's ``program_id`` when known, so colliding codes resolve exactly."""
    code = custom_program_error(text)
    kind = program_error(code, program_id) if code is not None else None
    return (kind or TransactionFailed)(message=f"{message}: {text}" if message else text)


# ---- codes from venue HTTP APIs ----

JUPITER_API = "jupiter-api"
"""Jupiter's Swap API (v1 ``/quote`` + ``/swap-instructions``, v2 ``/build``); the local
market answers in the same shape."""

VENUE_API_ERRORS: dict[tuple[str, str], tuple[type[OrderflowError], str | None]] = {
    # errorCode in the JSON body (dev.jup.ag; the codes real responses carry)
    (JUPITER_API, "COULD_NOT_FIND_ANY_ROUTE"): (NoRoute, None),
    (JUPITER_API, "NO_ROUTES_FOUND"): (NoRoute, None),
    (JUPITER_API, "ROUTE_PLAN_DOES_NOT_CONSUME_ALL_THE_AMOUNT"): (NoRoute, None),
    (JUPITER_API, "MARKET_NOT_FOUND"): (NoRoute, None),
    (JUPITER_API, "TOKEN_NOT_TRADABLE"): (NoRoute, "token_not_tradable"),
    (JUPITER_API, "CIRCULAR_ARBITRAGE_IS_DISABLED"): (InvalidOrder, None),
    (JUPITER_API, "INVALID_REQUEST"): (InvalidOrder, None),
    (JUPITER_API, "INSUFFICIENT_FUNDS"): (InsufficientFunds, None),  # v2 /build
    # HTTP statuses, when the body names no known code (dev.jup.ag/portal/responses)
    (JUPITER_API, "HTTP 401"): (ConfigError, "venue_unauthorized"),  # API key missing/wrong
    (JUPITER_API, "HTTP 403"): (ConfigError, "venue_unauthorized"),
    (JUPITER_API, "HTTP 404"): (ConfigError, "venue_not_found"),  # a wrong base URL
    (JUPITER_API, "HTTP 408"): (VenueUnavailable, "venue_timeout"),
    (JUPITER_API, "HTTP 429"): (VenueUnavailable, "venue_rate_limited"),
    (JUPITER_API, "HTTP 4xx"): (NoRoute, None),
    (JUPITER_API, "HTTP 5xx"): (VenueUnavailable, None),
}
"""A venue API's error, keyed by (API, ``errorCode`` or ``"HTTP <status>"``), to the error
class and the code it carries (``None``: the class's own). On a 4xx the ``errorCode`` wins
over the status (a numeric one is a program's custom error: :data:`PROGRAM_ERRORS`, with
Jupiter's program for this API), then the exact status, then its class; on a 408, 429 or
5xx the status decides (the venue failed: a code in its body says nothing of the order).
Transient: rate limits, timeouts and server errors (another attempt may pass); a 401/403/404
is configuration (the API key or URL), never the order's fault, and no retry can fix it."""

_API_PROGRAMS = {JUPITER_API: JUPITER_V6}


def _venue_side(status: int) -> bool:
    return status in (408, 429) or status >= 500


def venue_api_error(api: str, status: int, error_code: str | None,
                    message: str) -> OrderflowError:
    """The error a venue API's failed answer means, from :data:`VENUE_API_ERRORS`."""
    code = (error_code or "").strip()
    if code and not _venue_side(status):
        entry = VENUE_API_ERRORS.get((api, code))
        if entry is not None:
            kind, our_code = entry
            return kind(our_code, f"{message} ({code})")
        if code.isdigit():
            program_kind = program_error(int(code), _API_PROGRAMS.get(api))
            if program_kind is not None:
                return program_kind(message=f"{message} ({code})")
    entry = (VENUE_API_ERRORS.get((api, f"HTTP {status}"))
             or VENUE_API_ERRORS.get((api, f"HTTP {status // 100}xx")))
    if entry is None:  # 1xx/3xx: not an answer this client can use
        entry = (VenueUnavailable, None)
    kind, our_code = entry
    suffix = f"{code}, HTTP {status}" if code else f"HTTP {status}"
    return kind(our_code, f"{message} ({suffix})")
