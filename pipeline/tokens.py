"""Token registry and exact UI <-> base-unit conversion.

Mints are the mainnet addresses; the localnet creates its mints at the same
addresses so that one registry serves localnet, devnet and mainnet.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from pipeline.errors import InvalidOrder


@dataclass(frozen=True, slots=True)
class Token:
    symbol: str
    mint: str
    decimals: int


WSOL_MINT = "So11111111111111111111111111111111111111112"

SOL = Token("SOL", WSOL_MINT, 9)
USDC = Token("USDC", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", 6)
USDT = Token("USDT", "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB", 6)

KNOWN_TOKENS: tuple[Token, ...] = (SOL, USDC, USDT)
_BY_SYMBOL = {t.symbol: t for t in KNOWN_TOKENS}
_BY_MINT = {t.mint: t for t in KNOWN_TOKENS}
_LEARNT: dict[str, Token] = {}  # read from their mint accounts (pipeline/mint_decimals.py)

U64_MAX = 2**64 - 1


def resolve_token(symbol_or_mint: str, *, field: str = "token") -> Token:
    """Find a token by symbol (case-insensitive) or by mint address."""
    if not isinstance(symbol_or_mint, str) or not symbol_or_mint:
        raise InvalidOrder("unknown_token", f"{field} must be a token symbol or mint", field=field)
    symbol = symbol_or_mint.upper() if symbol_or_mint.isascii() else None
    token = (_BY_SYMBOL.get(symbol) if symbol else None) or _BY_MINT.get(symbol_or_mint)
    if token is None:
        raise InvalidOrder(
            "unknown_token",
            f"{field} {symbol_or_mint!r} is not a supported token "
            f"(supported: {', '.join(sorted(_BY_SYMBOL))})",
            field=field,
        )
    return token


def token_by_mint(mint: str) -> Token | None:
    return _BY_MINT.get(mint) or _LEARNT.get(mint)


def learn_token(mint: str, decimals: int) -> Token:
    """A token known from its mint account on chain (the new token a sniper order buys):
    from now on this process knows its decimals for amounts and prices, under a symbol that
    is its shortened mint. It is never resolved by :func:`resolve_token`: a market or limit
    order still names a listed token."""
    token = _BY_MINT.get(mint) or _LEARNT.get(mint)
    if token is None:
        token = _LEARNT[mint] = Token(f"{mint[:4]}..{mint[-4:]}", mint, decimals)
    return token


def parse_tokens(raw: str | None, name: str = "ORDERFLOW_TOKENS") -> tuple[Token, ...]:
    """``SYMBOL=MINT:DECIMALS,...``: tokens beyond SOL/USDC/USDT (a devnet market's test
    mints; ``orderflow market create`` writes the line). ``ValueError`` names the item."""
    out: list[Token] = []
    for item in filter(None, (part.strip() for part in (raw or "").split(","))):
        symbol, _, rest = item.partition("=")
        mint, _, decimals = rest.partition(":")
        if not (symbol.isascii() and symbol.isalnum() and 32 <= len(mint) <= 44
                and mint.isalnum() and decimals.isdigit() and int(decimals) <= 18):
            raise ValueError(f"{name}: {item!r} is not SYMBOL=MINT:DECIMALS")
        out.append(Token(symbol.upper(), mint, int(decimals)))
    return tuple(out)


def register_tokens(tokens: tuple[Token, ...]) -> None:
    """Make ``tokens`` tradable in this process (called once at start by the ``orderflow``
    command, before any order is read). A symbol or mint that already names a different
    token is refused: an order must never resolve to another mint than it did before."""
    for token in tokens:
        for index, key in ((_BY_SYMBOL, token.symbol), (_BY_MINT, token.mint)):
            known = index.get(key)
            if known is not None and known != token:
                raise ValueError(f"token {token.symbol} {token.mint}: {key} is already "
                                 f"{known.symbol} {known.mint}")
    for token in tokens:
        _BY_SYMBOL[token.symbol] = token
        _BY_MINT[token.mint] = token


def to_base_units(amount: str, decimals: int, *, field: str = "amount") -> int:
    """Convert a decimal string in UI units to an integer in base units, exactly.

    Refuses floats, exponents, signs, more fractional digits than the mint has,
    zero, and anything that does not fit in a u64.
    """
    if not isinstance(amount, str):
        raise InvalidOrder(
            "invalid_amount", "amount must be a decimal string such as \"1.5\"", field=field
        )
    text = amount.strip()
    if not text or any(c not in "0123456789." for c in text) or text.count(".") > 1:
        raise InvalidOrder(
            "invalid_amount", f"amount {amount!r} is not a plain decimal number", field=field
        )
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InvalidOrder(
            "invalid_amount", f"amount {amount!r} is not a decimal number", field=field
        ) from None
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    if "." in text and len(text.split(".", 1)[1].rstrip("0")) > decimals:
        raise InvalidOrder(
            "invalid_amount",
            f"amount {amount!r} has more than {decimals} decimal places",
            field=field,
        )
    base = int(value.scaleb(decimals))
    if base <= 0:
        raise InvalidOrder("invalid_amount", "amount must be greater than zero", field=field)
    if base > U64_MAX:
        raise InvalidOrder("invalid_amount", "amount is too large", field=field)
    return base


def to_ui(amount: int, decimals: int) -> str:
    """Render base units as a UI decimal string without trailing zeros."""
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**decimals)
    if decimals == 0 or frac == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{str(frac).rjust(decimals, '0').rstrip('0')}"


def describe_amount(amount: int, mint: str) -> str:
    """``5000 SOL`` for a person; an unknown mint is shown in base units with its address."""
    token = token_by_mint(mint)
    if token is None:
        return f"{amount} base units of {mint}"
    return f"{to_ui(amount, token.decimals)} {token.symbol}"
