"""The market API's errors in Jupiter's shape, and the request values it parses."""

from __future__ import annotations

from typing import Any

from solders.pubkey import Pubkey

U64_MAX = 2**64 - 1


class MarketError(Exception):
    """An API error in Jupiter's shape: HTTP status, ``error`` text, ``errorCode``."""

    def __init__(self, status: int, error: str, error_code: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.error_code = error_code

    def to_json(self) -> dict[str, str]:
        return {"error": self.error, "errorCode": self.error_code}


def no_route(detail: str = "Could not find any route") -> MarketError:
    return MarketError(400, detail, "COULD_NOT_FIND_ANY_ROUTE")


def slippage() -> MarketError:
    # Jupiter's program error 6001 (0x1771) SlippageToleranceExceeded.
    return MarketError(422, "Slippage tolerance exceeded", "6001")


def bad_request(detail: str) -> MarketError:
    return MarketError(400, detail, "INVALID_REQUEST")


def parse_pubkey(value: Any, name: str) -> Pubkey:
    if not isinstance(value, str):
        raise bad_request(f"{name} must be a base58 public key")
    try:
        return Pubkey.from_string(value)
    except ValueError:
        raise bad_request(f"{name} {value!r} is not a valid public key") from None


def parse_amount(value: Any, name: str, *, allow_zero: bool = False) -> int:
    """A raw token amount: a decimal-digit string (Jupiter's form) or a JSON integer."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise bad_request(f"{name} must be an integer amount")
    text = str(value)
    if not text.isdigit() or not text.isascii():
        raise bad_request(f"{name} {value!r} is not a non-negative integer")
    number = int(text)
    if number > U64_MAX or (number == 0 and not allow_zero):
        raise bad_request(f"{name} must be in {0 if allow_zero else 1}..{U64_MAX}")
    return number
